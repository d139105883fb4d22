"""Saved models are never overwritten, and weights are never paired with another version's meta."""

import pytest
import torch
from kedro.io import DataCatalog, DatasetError

from leak_detection.model.network import LeakCNNMulti, model_from_state, state_dict_sha256

V1, V2 = "2026-01-01T00.00.00.000Z", "2026-02-01T00.00.00.000Z"


def catalog(tmp_path, save_version=None, load_versions=None):
    config = {
        "{mode}.model": {
            "type": "leak_detection.datasets.TorchModelDataset",
            "filepath": str(tmp_path / "{mode}" / "best.pth"),
            "versioned": True,
        },
        "{mode}.model_meta": {
            "type": "json.JSONDataset",
            "filepath": str(tmp_path / "{mode}" / "model_meta.json"),
            "versioned": True,
        },
    }
    return DataCatalog.from_config(config, save_version=save_version, load_versions=load_versions)


def save_model(tmp_path, version, seed):
    torch.manual_seed(seed)
    state = LeakCNNMulti(n_classes=2).state_dict()
    meta = {
        "model_type": "LeakCNNMulti",
        "num_classes": 2,
        "state_dict_sha256": state_dict_sha256(state),
        "feature_config": {"n_mels": 32},
        "mode": "binary",
        "class_names": ["NOLEAK", "LEAK"],
        "leak_output_idx": 1,
        "threshold": 0.5,
    }
    cat = catalog(tmp_path, save_version=version)
    cat.save("binary.model", state)
    cat.save("binary.model_meta", meta)
    return state


def test_a_saved_version_is_never_overwritten(tmp_path):
    save_model(tmp_path, V1, seed=1)
    before = (tmp_path / "binary/best.pth" / V1 / "best.pth").read_bytes()
    with pytest.raises(DatasetError, match="must not exist"):
        save_model(tmp_path, V1, seed=2)
    assert (tmp_path / "binary/best.pth" / V1 / "best.pth").read_bytes() == before


def test_asking_for_a_missing_version_lists_the_existing_ones(tmp_path):
    save_model(tmp_path, V1, seed=1)
    save_model(tmp_path, V2, seed=2)
    with pytest.raises(DatasetError) as err:
        catalog(tmp_path, load_versions={"binary.model": "2030-01-01T00.00.00.000Z"}).load("binary.model")
    assert V1 in str(err.value) and V2 in str(err.value)


def test_a_model_and_a_meta_of_different_versions_are_refused(tmp_path):
    save_model(tmp_path, V1, seed=1)
    save_model(tmp_path, V2, seed=2)
    cat = catalog(tmp_path, load_versions={"binary.model": V1, "binary.model_meta": V2})
    with pytest.raises(ValueError, match="different versions"):
        model_from_state(cat.load("binary.model"), cat.load("binary.model_meta"))
    same = catalog(tmp_path, load_versions={"binary.model": V1, "binary.model_meta": V1})
    assert model_from_state(same.load("binary.model"), same.load("binary.model_meta")).n_classes == 2
