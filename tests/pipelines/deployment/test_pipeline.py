"""The deployment template: ONNX export and model card, called directly and run on an in-memory catalog."""

import pytest
import torch
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from leak_detection.model.network import LeakCNNMulti, state_dict_sha256
from leak_detection.model.onnx_export import onnx_session
from leak_detection.pipelines.data_indexing.nodes import file_targets, summarise_classes
from leak_detection.pipelines.deployment.nodes import export_onnx_model
from leak_detection.pipelines.deployment.pipeline import create_pipeline
from tests.conftest import synthetic_store
from tests.pipelines.deployment.test_model_card import metrics

DEPLOYMENT = {"parity_segments": 500, "parity_tolerance": 1.0e-4}


@pytest.fixture(scope="module")
def store_and_model():
    store, index = synthetic_store()
    targets = file_targets(index, "multiclass")
    torch.manual_seed(5)
    model = LeakCNNMulti(n_classes=5)
    model.set_normalisation(torch.full((32,), -38.0), torch.full((32,), 4.0))
    state = model.state_dict()
    meta = {
        "model_type": "LeakCNNMulti",
        "state_dict_sha256": state_dict_sha256(state),
        "mode": "multiclass",
        "num_classes": 5,
        "class_names": ["LEAK", "NORMAL", "QUIET", "RANDOM", "MECHANICAL"],
        "leak_output_idx": 0,
        "threshold": 0.4,
        "feature_config": store.feature_config,
        "front_end_problem": "its front end is not this project's",
        "param_count": 618758,
        "dataset_fingerprint": "fp",
        "split_files": {"train": 20, "validation": 10, "test": 5},
        "split_sha256": "split",
        "best_epoch": 2,
        "epochs_run": 4,
        "training_seconds": 10.0,
        "device": "cpu",
        "model_version": "V2",
    }
    return store, targets, state, meta


def test_the_export_is_kept_only_when_it_computes_what_pytorch_does(store_and_model):
    store, targets, state, meta = store_and_model
    onnx_bytes, report = export_onnx_model(state, meta, store, targets, DEPLOYMENT)
    assert onnx_session(onnx_bytes).get_inputs()[0].name == "log_mel"
    n_test_segments = int((targets["split"] == "test").sum()) * 6 * 3
    assert report["passed"] and report["samples_compared"] == min(500, n_test_segments)
    assert report["state_dict_sha256"] == meta["state_dict_sha256"]
    with pytest.raises(ValueError, match="the export is not kept"):
        export_onnx_model(state, meta, store, targets, {**DEPLOYMENT, "parity_tolerance": 0.0})


def test_the_pipeline_exports_and_describes_the_model_from_an_in_memory_catalog(store_and_model):
    store, targets, state, meta = store_and_model
    catalog = DataCatalog(
        {
            "model": MemoryDataset(state),
            "model_meta": MemoryDataset(meta),
            "mel_features": MemoryDataset(store, copy_mode="assign"),
            "file_targets": MemoryDataset(targets),
            "params:deployment": MemoryDataset(DEPLOYMENT),
            "evaluation_metrics": MemoryDataset(metrics(sha=meta["state_dict_sha256"])),
            "class_summary": MemoryDataset(summarise_classes(targets, "multiclass")),
        }
    )
    outputs = SequentialRunner().run(create_pipeline(), catalog)
    assert set(outputs) == {"onnx_model", "model_card"}
    assert outputs["onnx_model"].load()[:4]  # ONNX bytes
    card = outputs["model_card"].load()
    assert card.startswith("# Model card: LeakCNNMulti, multiclass mode")
    assert f"weights SHA-256 `{meta['state_dict_sha256']}`" in card and "LEAK is output 0" in card
    assert "matches PyTorch on 90 real test segments" in card
    assert "`leak-detect predict` cannot serve this model" in card
