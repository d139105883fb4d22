"""Stores as field users bring them: a class missing, a thin feature_config, labels that are not classes."""

import json
from dataclasses import asdict

import numpy as np
import pytest
from kedro.framework.session import KedroSession

from leak_detection.audio.front_end import FrontEndConfig
from leak_detection.datasets import MelFeatureStoreDataset
from leak_detection.features.store import MelFeatureStore
from leak_detection.features.store_contract import StoreContractError, check_store, front_end_problem
from tests.conftest import synthetic_store

QUICK = {"epochs": 2, "batch_size": 64, "patience": 2, "fresh_start": True}


def store_without(store, label):
    """The same store with every file of ``label`` removed and its groups widened to sites."""
    keep = [i for i, lab in enumerate(store.labels) if store.label_names[lab] != label]
    segments = np.concatenate([store.file_segments(i) for i in keep])
    lengths = [store.file_offsets[i + 1] - store.file_offsets[i] for i in keep]
    return MelFeatureStore(
        segments_mel=segments,
        file_offsets=np.concatenate([[0], np.cumsum(lengths)]),
        labels=store.labels[keep],
        file_ids=[store.file_ids[i] for i in keep],
        groups=[f"site{i % 12}" for i in range(len(keep))],
        label_names=store.label_names,
        feature_config={"log": True, "mel": 32, "source": "vendor spectra"},
        source_fingerprint="field-like",
    )


@pytest.fixture(scope="module")
def field_store(tmp_path_factory):
    store, _ = synthetic_store(files_per_class=12, n_long=4)
    path = tmp_path_factory.mktemp("field") / "field spectra.h5"
    MelFeatureStoreDataset(filepath=str(path)).save(store_without(store, "QUIET"))
    return path


def test_a_store_without_quiet_and_with_a_thin_config_trains_and_evaluates_both_modes(project, field_store):
    runtime = {"feature_store": str(field_store), **{m: {"training": QUICK} for m in ("binary", "multiclass")}}
    with KedroSession.create(project_path=project, runtime_params=runtime) as session:
        session.run(pipeline_names=["train_from_store"])
    meta_dir = project / "data/06_models/multiclass/model_meta.json"
    version = sorted(p.name for p in meta_dir.iterdir())[-1]
    meta = json.loads((meta_dir / version / "model_meta.json").read_text())
    assert meta["class_names"] == ["LEAK", "NORMAL", "RANDOM", "MECHANICAL"]
    assert "not this project's" in meta["front_end_problem"]
    for mode in ("binary", "multiclass"):
        card = (project / f"data/06_models/{mode}/model_card.md" / version / "model_card.md").read_text()
        assert "cannot compute from audio" in card
        assert (project / f"data/08_reporting/{mode}/plots/file_timelines.png").exists()
    assert json.loads((project / "data/08_reporting/mode_comparison.json").read_text())["test_files"] > 0


def test_predict_explains_that_a_model_of_such_a_store_needs_its_front_end(project, tmp_path, make_wav):
    make_wav(tmp_path / "new.wav", seconds=2.0)
    with pytest.raises(ValueError, match="cannot reproduce from audio.*needs features made by that same front end"):
        with KedroSession.create(project_path=project, runtime_params={"inbox_dir": str(tmp_path)}) as session:
            session.run(pipeline_names=["predict"], namespaces=["multiclass"])


def test_a_store_with_labels_that_are_not_classes_is_refused_before_any_node_runs(project, tmp_path):
    store, _ = synthetic_store()
    store.label_names = ["LEAK", "NORMAL", "HISS", "RANDOM", "MECHANICAL"]
    path = tmp_path / "odd.h5"
    MelFeatureStoreDataset(filepath=str(path)).save(store)
    index = project / "data/03_primary/recordings_index.csv"
    before = index.read_bytes() if index.exists() else None
    with pytest.raises(StoreContractError, match="HISS"):
        with KedroSession.create(project_path=project, runtime_params={"feature_store": str(path)}) as session:
            session.run(pipeline_names=["train_from_store"])
    assert (index.read_bytes() if index.exists() else None) == before


def test_the_contract_names_what_each_use_lacks():
    store, _ = synthetic_store()
    uses = check_store(store, "s.h5")
    assert not uses.training_problems and uses.has_time_axis
    assert "does not record" in uses.front_end_problem
    store.feature_config = {}
    assert check_store(store, "s.h5").missing_time_keys == ["sample_rate", "long_segment", "long_hop"]


def test_a_full_front_end_config_that_matches_the_shape_is_reproducible():
    config = asdict(FrontEndConfig())
    assert front_end_problem(config, (10, 3, 32, 1)) is None
    assert "shape" in front_end_problem(config, (10, 3, 64, 1))


def test_store_label_names_go_through_label_mapping(project, tmp_path):
    from leak_detection.pipelines.feature_extraction.nodes import index_recordings

    store, _ = synthetic_store()
    store.label_names = ["LEAK", "NORMAL", "HISS", "RANDOM", "MECHANICAL"]
    assert not check_store(store, "s.h5", {"HISS": "QUIET"}).training_problems
    splits = {"ratios": {"train": 0.6, "validation": 0.2, "test": 0.2}, "seed": 1}
    index = index_recordings(store, splits, {"HISS": "QUIET"})
    assert "QUIET" in set(index["label"]) and "HISS" not in set(index["label"])
