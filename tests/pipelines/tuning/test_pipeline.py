"""The tune pipeline on a tiny store: a study that stores its trials, resumes, and becomes a parameters file."""

import contextlib
import json
import shutil

import optuna
import pytest
import yaml
from kedro.config import OmegaConfigLoader
from kedro.framework.session import KedroSession
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from leak_detection.datasets import AtomicTextDataset, MelFeatureStoreDataset, OptunaStorageDataset
from leak_detection.pipeline_registry import register_pipelines
from leak_detection.pipelines.data_indexing.nodes import file_targets, summarise_classes
from leak_detection.run_lock_hook import writes_only_tuning
from leak_detection.runs.run_lock import acquire_run_lock, lock_path
from leak_detection.tuning.study import DEFAULT_SETTINGS_ATTR, journal_storage
from tests.conftest import PROJECT, synthetic_store

TINY_TRAINING = {"epochs": 1, "batch_size": 16, "patience": 5, "eval_batch_size": 64, "device": "cpu"}


def project_tuning(mode: str, **overrides) -> dict:
    conf = yaml.safe_load((PROJECT / "conf/base/parameters_tuning.yml").read_text())[mode]["tuning"]
    space = {**conf["search_space"], "batch_size": {"choices": [8, 16]}}  # a tiny store has ~40 segments a split
    return {**conf, "search_space": space, **overrides}


@pytest.fixture(scope="module")
def tiny_inputs():
    store, index = synthetic_store(files_per_class=4, n_long=2)
    targets = file_targets(index, "binary")
    return store, targets, summarise_classes(targets, "binary")


def run_tune(tmp_path, tiny_inputs, n_trials: int) -> dict:
    store, targets, summary = tiny_inputs
    training = {**TINY_TRAINING, "checkpoint_dir": str(tmp_path / "binary/checkpoints")}
    catalog = DataCatalog(
        {
            "mel_features": MemoryDataset(store),
            "binary.file_targets": MemoryDataset(targets),
            "binary.class_summary": MemoryDataset(summary),
            "binary.tuning_storage": OptunaStorageDataset(filepath=str(tmp_path / "binary/tuning/study.journal")),
            "binary.tuning_study": MemoryDataset(copy_mode="assign"),
            "binary.tuned_parameters": AtomicTextDataset(
                filepath=str(tmp_path / "conf/tuned/parameters_tuned_binary.yml")
            ),
            "params:binary.training": MemoryDataset(training),
            "params:binary.tuning": MemoryDataset(project_tuning("binary", n_trials=n_trials)),
            "params:binary.mode": MemoryDataset("binary"),
        }
    )
    pipeline = register_pipelines()["tune"].only_nodes_with_namespaces(["binary"])
    SequentialRunner().run(pipeline, catalog)
    return {name: catalog.load(name) for name in ("binary.tuning_report", "binary.tuning_trials")}


def stored_trials(tmp_path) -> list[optuna.trial.FrozenTrial]:
    storage = journal_storage(tmp_path / "binary/tuning/study.journal")
    return optuna.load_study(study_name="binary", storage=storage).trials


def test_a_tiny_study_stores_its_trials_resumes_and_writes_the_best_parameters(tmp_path, tiny_inputs):
    first = run_tune(tmp_path, tiny_inputs, n_trials=2)
    assert [t.number for t in stored_trials(tmp_path)] == [0, 1]
    assert first["binary.tuning_report"]["trials"] == {"COMPLETE": 2}
    tuned = tmp_path / "conf/tuned/parameters_tuned_binary.yml"
    best = first["binary.tuning_report"]["best_trial"]
    assert yaml.safe_load(tuned.read_text()) == {"binary": {"training": best["params"]}}

    resumed = run_tune(tmp_path, tiny_inputs, n_trials=1)
    trials = stored_trials(tmp_path)
    assert [t.number for t in trials] == [0, 1, 2]
    assert len(resumed["binary.tuning_trials"]) == 3
    assert [DEFAULT_SETTINGS_ATTR in t.user_attrs for t in trials] == [True, False, False]
    assert trials[0].params["learning_rate"] == 1e-3 and trials[0].params["batch_size"] == 16
    assert len({t.params["learning_rate"] for t in trials}) == 3
    assert not any((tmp_path / "binary/tuning/binary").iterdir()), "each trial's checkpoints are removed"


def test_both_modes_tuned_files_are_read_by_the_tuned_env_over_base(tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(PROJECT / "conf/base", conf / "base")
    (conf / "tuned").mkdir()
    for mode, rate in (("binary", 3e-3), ("multiclass", 4e-4)):
        text = f"# from a study\n{mode}:\n  training:\n    learning_rate: {rate}\n    dropout: 0.1\n"
        (conf / f"tuned/parameters_tuned_{mode}.yml").write_text(text)
    loader = OmegaConfigLoader(
        str(conf), base_env="base", default_run_env="tuned", merge_strategy={"parameters": "soft"}
    )
    params = loader["parameters"]
    assert params["binary"]["training"]["learning_rate"] == 3e-3
    assert params["multiclass"]["training"]["learning_rate"] == 4e-4
    assert params["multiclass"]["training"]["dropout"] == 0.1
    assert params["binary"]["training"]["epochs"] == 12, "settings a study did not tune come from base"
    assert params["binary"]["mode"] == "binary" and "tuning" in params["multiclass"]


def test_tune_is_registered_per_mode_and_is_the_only_pipeline_that_may_skip_the_run_lock_for_tuning():
    pipelines = register_pipelines()
    assert sorted(name for name, p in pipelines.items() if writes_only_tuning(p)) == ["tune"]
    binary = pipelines["tune"].only_nodes_with_namespaces(["binary"])
    assert {n.name for n in binary.nodes} == {"binary.tuning.run_study_node", "binary.tuning.study_outcome_node"}
    assert "binary.tuned_parameters" in binary.all_outputs() and "mel_features" in binary.inputs()


def trial_runs_in_mlflow(project) -> list[str]:
    """The names of the nested runs in the project's MLflow store (``conf/base/mlflow.yml``)."""
    import mlflow

    uri = yaml.safe_load((project / "conf/base/mlflow.yml").read_text())["server"]["mlflow_tracking_uri"]
    client = mlflow.MlflowClient(uri.replace("sqlite:///", f"sqlite:///{project}/", 1))
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return sorted(
        r.info.run_name for r in runs if "mlflow.parentRunId" in r.data.tags and r.info.run_name.startswith("trial")
    )


def test_tune_runs_add_to_one_study_while_another_run_holds_the_project_lock(project, tiny_inputs):
    store, targets, summary = tiny_inputs
    MelFeatureStoreDataset(filepath=str(project / "data/04_feature/mel_features.h5")).save(store)
    inputs = project / "data/05_model_input/binary"
    inputs.mkdir(parents=True, exist_ok=True)
    targets.to_csv(inputs / "file_targets.csv", index=False)
    (inputs / "class_summary.json").write_text(json.dumps(summary))
    tiny_space = {"search_space": {"batch_size": {"choices": [8, 16]}}}
    runtime = {"binary": {"training": TINY_TRAINING, "tuning": {"n_trials": 1, **tiny_space}}}
    training_run = acquire_run_lock(lock_path(project))
    try:
        for _ in range(2):
            with contextlib.chdir(project), KedroSession.create(project_path=project, runtime_params=runtime) as s:
                s.run(pipeline_names=["tune"], namespaces=["binary"])
    finally:
        training_run.release()
    report = json.loads((project / "data/08_reporting/binary/tuning/tuning.json").read_text())
    assert report["trials"] == {"COMPLETE": 2} and report["storage"] == "data/06_models/binary/tuning/study.journal"
    assert (project / "data/08_reporting/binary/tuning/plots/optimisation_history.png").stat().st_size > 0
    assert (project / "conf/tuned/parameters_tuned_binary.yml").exists()
    assert trial_runs_in_mlflow(project) == ["trial 0", "trial 1"]
