"""A key no pipeline reads stops the run; training refuses a store, split and summary of different runs."""

import logging
import tarfile

import pytest
from kedro.config import OmegaConfigLoader
from kedro.framework.session import KedroSession

from leak_detection.parameters import ParameterError, parameter_problems, parameters_read
from leak_detection.pipeline_registry import register_pipelines
from leak_detection.pipelines.data_indexing.nodes import file_targets, store_fingerprint, summarise_classes
from leak_detection.pipelines.feature_extraction.nodes import index_recordings
from leak_detection.pipelines.training.nodes import train_model
from tests.conftest import PROJECT, synthetic_store

SPLITS = {"ratios": {"train": 0.6, "validation": 0.2, "test": 0.2}, "seed": 1}
RUNTIME_PARAMS_READ_OUTSIDE_NODES = {
    "recordings_dir": "somewhere/recordings",
    "recordings_manifest": "somewhere/manifest.csv",
    "feature_store": "somewhere/mel_features.h5",
    "inbox_dir": ["somewhere/inbox"],
    "predictions_output": "somewhere/predictions.csv",
    "predictions_output_force": True,  # read by PredictionsOutputHook, passed by `leak-detect predict`
}


def load_context(project, runtime_params):
    with KedroSession.create(project_path=project, runtime_params=runtime_params) as session:
        return session.load_context()


def shipped_params(env):
    loader = OmegaConfigLoader(
        str(PROJECT / "conf"), base_env="base", default_run_env=env, merge_strategy={"parameters": "soft"}
    )
    return loader["parameters"]


@pytest.mark.parametrize(
    "runtime_params, unread",
    [
        ({"epochs": 1}, "epochs"),
        ({"training": {"epochs": 1}}, "training.epochs"),
        ({"foo": {"training": {"epochs": 1}}}, "foo.training.epochs"),
        ({"binary": {"trainig": {"epochs": 1}}}, "binary.trainig.epochs"),
    ],
)
def test_a_misplaced_epochs_key_stops_the_run_and_names_the_keys_it_was_meant_to_be(project, runtime_params, unread):
    with pytest.raises(ParameterError) as err:
        load_context(project, runtime_params)
    message = str(err.value)
    assert f"{unread}: no pipeline reads this key" in message
    assert "binary.training.epochs" in message.split(f"{unread}:")[1]
    if not unread.startswith("binary"):
        assert "multiclass.training.epochs" in message


def test_an_unread_key_in_a_parameters_file_stops_the_run(project):
    local = project / "conf" / "local" / "parameters.yml"
    local.write_text("front_end:\n  n_mels: 32\nfrontend:\n  n_mels: 64\n")
    try:
        with pytest.raises(ParameterError, match=r"frontend\.n_mels: no pipeline reads .* mean front_end\.n_mels"):
            load_context(project, {})
    finally:
        local.unlink()


def test_runtime_params_the_catalog_reads_are_accepted(project):
    context = load_context(project, RUNTIME_PARAMS_READ_OUTSIDE_NODES)
    assert context.params["recordings_dir"] == "somewhere/recordings"


@pytest.mark.parametrize("env", ["local", "reference"])
def test_every_shipped_parameter_is_read_by_some_pipeline(env):
    read = parameters_read(register_pipelines().values(), PROJECT / "conf")
    assert parameter_problems(shipped_params(env), read) == []


def test_the_runtime_params_of_a_packaged_conf_archive_are_found(tmp_path):
    archive = tmp_path / "conf-leak_detection.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(PROJECT / "conf", arcname="conf")
    read = parameters_read([], archive)
    assert set(RUNTIME_PARAMS_READ_OUTSIDE_NODES) - {"predictions_output_force"} <= read


TRAINING = {"epochs": 1, "batch_size": 64, "eval_batch_size": 512}


@pytest.fixture
def indexed():
    """An old data_indexing run's outputs, and a store extracted again from other recordings."""
    old_store, _ = synthetic_store(seed=0)
    new_store, _ = synthetic_store(seed=1)
    targets = file_targets(index_recordings(old_store, SPLITS), "multiclass")
    return old_store, new_store, targets, summarise_classes(targets, "multiclass")


def test_the_index_targets_and_summary_record_the_store_they_were_built_from(indexed):
    old_store, new_store, targets, summary = indexed
    assert set(targets["store_fingerprint"]) == {store_fingerprint(old_store)}
    assert summary["store_fingerprint"] == store_fingerprint(old_store) != store_fingerprint(new_store)


def test_training_refuses_a_new_store_beside_the_split_of_an_earlier_run(indexed, tmp_path):
    _, new_store, targets, summary = indexed
    with pytest.raises(ValueError, match="do not belong together") as err:
        train_model(new_store, targets, summary, {**TRAINING, "checkpoint_dir": str(tmp_path)}, "multiclass")
    message = str(err.value)
    assert "the feature store" in message and "multiclass/file_targets.csv" in message
    assert "kedro run --pipelines data_indexing" in message and "train_from_store" in message


def test_training_refuses_a_summary_left_from_an_earlier_run(indexed, tmp_path):
    _, new_store, _, old_summary = indexed
    new_targets = file_targets(index_recordings(new_store, SPLITS), "multiclass")
    with pytest.raises(ValueError, match="multiclass/class_summary.json"):
        train_model(new_store, new_targets, old_summary, {**TRAINING, "checkpoint_dir": str(tmp_path)}, "multiclass")


def test_training_refuses_a_summary_of_another_split_of_the_same_store(indexed, tmp_path):
    old_store, _, _, _ = indexed
    resplit = file_targets(index_recordings(old_store, {**SPLITS, "seed": 2}), "multiclass")
    summary = summarise_classes(file_targets(index_recordings(old_store, SPLITS), "multiclass"), "multiclass")
    with pytest.raises(ValueError, match="counts another split"):
        train_model(old_store, resplit, summary, {**TRAINING, "checkpoint_dir": str(tmp_path)}, "multiclass")


def test_an_index_written_before_fingerprints_still_trains_and_says_it_was_not_checked(tmp_path, caplog):
    store, index = synthetic_store()  # an index without the store_fingerprint column
    targets = file_targets(index, "binary")
    with caplog.at_level(logging.WARNING):
        summary = summarise_classes(targets, "binary")
        _, meta, _ = train_model(store, targets, summary, {**TRAINING, "checkpoint_dir": str(tmp_path)}, "binary")
    assert meta["epochs_run"] == 1
    assert "record no store fingerprint" in caplog.text
