"""Tests for ``TorchModelDataset``: round trips, versions, refusal of corrupted and
malicious files, atomic saves and the Kedro catalog entry shared with model_meta."""

from __future__ import annotations

import os
import pickle

import pytest
import torch
from kedro.io import DataCatalog
from kedro.io.core import DatasetError, Version

from leak_detection.datasets import TorchModelDataset

OLDER = "2026-01-01T00.00.00.000Z"
NEWER = "2026-01-02T00.00.00.000Z"


class _Model(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.norm = torch.nn.BatchNorm2d(4)
        self.head = torch.nn.Linear(4, 2)
        self.register_buffer("mel_mean", torch.arange(8, dtype=torch.float32))


def _model(seed: int) -> _Model:
    torch.manual_seed(seed)
    model = _Model()
    model.norm.running_mean.normal_()
    return model


def _assert_same_state(loaded: dict, expected: dict) -> None:
    assert list(loaded) == list(expected)
    for key, tensor in expected.items():
        assert loaded[key].dtype == tensor.dtype, key
        assert torch.equal(loaded[key], tensor), key


class _Payload:
    """Pickles to a call of ``os.system``: what a malicious model file does."""

    def __init__(self, marker) -> None:
        self.command = f"echo pwned > '{marker}'"

    def __reduce__(self):
        return (os.system, (self.command,))


def _leftovers(directory) -> list[str]:
    return sorted(p.name for p in directory.rglob("*") if ".tmp-" in p.name)


def test_round_trip_of_a_module_state_dict(tmp_path):
    model = _model(0)
    dataset = TorchModelDataset(filepath=tmp_path / "06_models" / "best.pth")
    assert not dataset.exists()
    dataset.save(model.state_dict())
    assert dataset.exists()

    loaded = dataset.load()
    _assert_same_state(loaded, model.state_dict())
    # Module versions survive, so load_state_dict can upgrade old layouts.
    assert loaded._metadata == model.state_dict()._metadata
    fresh = _Model()
    fresh.load_state_dict(loaded, strict=True)
    _assert_same_state(fresh.state_dict(), model.state_dict())
    assert _leftovers(tmp_path) == []


def test_tensors_are_saved_contiguous(tmp_path):
    weight = torch.arange(12.0).reshape(3, 4).t()
    assert not weight.is_contiguous()
    dataset = TorchModelDataset(filepath=tmp_path / "best.pth")
    dataset.save({"weight": weight})
    loaded = dataset.load()["weight"]
    assert loaded.is_contiguous()
    assert torch.equal(loaded, weight)


def test_versioned_load_of_an_older_version(tmp_path):
    path = tmp_path / "best.pth"
    old, new = _model(1), _model(2)
    TorchModelDataset(filepath=path, version=Version(None, OLDER)).save(old.state_dict())
    TorchModelDataset(filepath=path, version=Version(None, NEWER)).save(new.state_dict())
    assert (path / OLDER / "best.pth").is_file()
    assert (path / NEWER / "best.pth").is_file()

    _assert_same_state(TorchModelDataset(filepath=path, version=Version(OLDER, None)).load(), old.state_dict())
    # Unpinned: the newest.
    _assert_same_state(TorchModelDataset(filepath=path, version=Version(None, None)).load(), new.state_dict())


def test_missing_version_lists_the_existing_ones(tmp_path):
    path = tmp_path / "best.pth"
    for version in (OLDER, NEWER):
        TorchModelDataset(filepath=path, version=Version(None, version)).save(_model(0).state_dict())

    missing = "2025-06-30T00.00.00.000Z"
    with pytest.raises(DatasetError) as excinfo:
        TorchModelDataset(filepath=path, version=Version(missing, None)).load()
    message = str(excinfo.value)
    assert missing in message
    assert str(path) in message
    assert f"{NEWER}, {OLDER}" in message  # newest first


def test_no_version_saved_yet(tmp_path):
    dataset = TorchModelDataset(filepath=tmp_path / "best.pth", version=Version(None, None))
    assert not dataset.exists()
    with pytest.raises(DatasetError, match="No version .* has been saved yet"):
        dataset.load()


def test_unversioned_missing_file(tmp_path):
    path = tmp_path / "best.pth"
    with pytest.raises(DatasetError, match="no model state_dict") as excinfo:
        TorchModelDataset(filepath=path).load()
    assert str(path) in str(excinfo.value)


def test_truncated_file_is_refused(tmp_path):
    path = tmp_path / "best.pth"
    dataset = TorchModelDataset(filepath=path)
    dataset.save(_model(0).state_dict())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])

    with pytest.raises(DatasetError, match="corrupted or not a plain state_dict") as excinfo:
        dataset.load()
    assert str(path) in str(excinfo.value)


# torch warns that it reads pickle protocol 4 with a protocol 2 unpickler; it still refuses.
@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("write", ["pickle_protocol_2", "pickle_default", "torch_save"])
def test_malicious_pickle_is_refused_and_not_run(tmp_path, write):
    path = tmp_path / "best.pth"
    marker = tmp_path / "pwned.txt"
    with open(path, "wb") as f:
        if write == "torch_save":
            torch.save({"weight": _Payload(marker)}, f)
        elif write == "pickle_protocol_2":
            pickle.dump(_Payload(marker), f, protocol=2)
        else:
            pickle.dump(_Payload(marker), f)

    with pytest.raises(DatasetError, match="weights_only=True refused it") as excinfo:
        TorchModelDataset(filepath=path).load()
    message = str(excinfo.value)
    assert str(path) in message
    assert "corrupted or not a plain state_dict" in message
    assert not marker.exists()


def test_the_malicious_payload_is_live(tmp_path):
    """Control for the test above: an unsafe load really would run the payload."""
    path = tmp_path / "payload.pkl"
    marker = tmp_path / "pwned.txt"
    with open(path, "wb") as f:
        pickle.dump(_Payload(marker), f, protocol=2)
    with open(path, "rb") as f:
        pickle.load(f)  # noqa: S301 - deliberately unsafe, on our own file
    assert marker.read_text().strip() == "pwned"


def test_a_plain_container_that_is_not_a_state_dict_is_refused(tmp_path):
    path = tmp_path / "best.pth"
    torch.save({"model": {"w": torch.zeros(2)}, "epoch": 3}, path)
    with pytest.raises(DatasetError, match="not a plain state_dict") as excinfo:
        TorchModelDataset(filepath=path).load()
    assert "'model' holds a dict" in str(excinfo.value)
    assert "'epoch' holds a int" in str(excinfo.value)


@pytest.mark.parametrize(
    "data, match",
    [
        ([torch.zeros(2)], "got a list, not a dict"),
        (torch.zeros(2), "got a Tensor, not a dict"),
        ({"w": [1.0, 2.0]}, "'w' holds a list"),
        ({0: torch.zeros(2)}, "keys must be strings"),
    ],
)
def test_saving_anything_but_a_state_dict_is_refused(tmp_path, data, match):
    path = tmp_path / "best.pth"
    with pytest.raises(DatasetError, match=match) as excinfo:
        TorchModelDataset(filepath=path).save(data)
    assert str(path) in str(excinfo.value)
    assert list(tmp_path.iterdir()) == []


def _failing_torch_save(monkeypatch):
    real_save = torch.save

    def failing_save(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a model")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", failing_save)
    return real_save


def test_failure_during_save_leaves_no_file(tmp_path, monkeypatch):
    path = tmp_path / "best.pth"
    _failing_torch_save(monkeypatch)
    with pytest.raises(DatasetError, match="disk full") as excinfo:
        TorchModelDataset(filepath=path).save(_model(0).state_dict())
    assert str(path) in str(excinfo.value)
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_failure_during_versioned_save_leaves_no_version(tmp_path, monkeypatch):
    path = tmp_path / "best.pth"
    _failing_torch_save(monkeypatch)
    dataset = TorchModelDataset(filepath=path, version=Version(None, OLDER))
    with pytest.raises(DatasetError, match="disk full"):
        dataset.save(_model(0).state_dict())
    assert not (path / OLDER / "best.pth").exists()
    assert _leftovers(tmp_path) == []
    monkeypatch.undo()
    assert not TorchModelDataset(filepath=path, version=Version(None, None)).exists()


def test_failed_overwrite_keeps_the_previous_model(tmp_path, monkeypatch):
    path = tmp_path / "best.pth"
    dataset = TorchModelDataset(filepath=path)
    old = _model(1)
    dataset.save(old.state_dict())
    _failing_torch_save(monkeypatch)
    with pytest.raises(DatasetError, match="disk full"):
        dataset.save(_model(2).state_dict())
    monkeypatch.undo()
    _assert_same_state(dataset.load(), old.state_dict())
    assert _leftovers(tmp_path) == []


def test_remote_protocol_writes_through_fsspec(monkeypatch):
    dataset = TorchModelDataset(filepath="memory:///leak-detection-test/best.pth")
    fs = dataset._fs
    model = _model(3)
    try:
        dataset.save(model.state_dict())
        assert fs.ls("/leak-detection-test", detail=False) == ["/leak-detection-test/best.pth"]
        _assert_same_state(dataset.load(), model.state_dict())

        fs.rm("/leak-detection-test", recursive=True)
        _failing_torch_save(monkeypatch)
        with pytest.raises(DatasetError, match="disk full"):
            dataset.save(model.state_dict())
        assert not fs.exists("/leak-detection-test/best.pth")
    finally:
        if fs.exists("/leak-detection-test"):
            fs.rm("/leak-detection-test", recursive=True)


def _refused(*args, **kwargs):
    raise ConnectionError("connection refused")


def test_a_store_out_of_reach_is_a_failure_naming_the_url_never_a_missing_model(monkeypatch):
    url = "memory:///leak-detection-outage/best.pth"
    fs = TorchModelDataset(filepath=url)._fs
    try:
        TorchModelDataset(filepath=url, version=Version(None, OLDER)).save(_model(0).state_dict())
        pinned = TorchModelDataset(filepath=url, version=Version(OLDER, None))
        monkeypatch.setattr(fs, "info", _refused)
        at_version = f"Cannot reach {url}/{OLDER}/best.pth: ConnectionError: connection refused"
        for ask in (pinned.exists, pinned.load):
            with pytest.raises(DatasetError, match=at_version) as caught:
                ask()
            assert "does not exist" not in str(caught.value) and "no model" not in str(caught.value)
        monkeypatch.undo()
        # A read that fails is the store's fault, not a corrupt file's.
        monkeypatch.setattr(fs, "_open", _refused)
        with pytest.raises(DatasetError) as caught:
            pinned.load()
        assert str(caught.value).startswith(at_version) and "corrupted" not in str(caught.value)
    finally:
        monkeypatch.undo()
        fs.rm("/leak-detection-outage", recursive=True)


def test_a_remote_save_is_one_upload_and_a_failed_one_leaves_nothing(monkeypatch):
    url = "memory:///leak-detection-upload/best.pth"
    dataset = TorchModelDataset(filepath=url, version=Version(None, OLDER))
    fs = dataset._fs
    try:
        # Not fs.open: its file object would flush what it holds on the way out of a failed write.
        monkeypatch.setattr(fs, "open", lambda *args, **kwargs: pytest.fail("saved through fs.open"))
        monkeypatch.setattr(fs, "pipe_file", lambda *args, **kwargs: _refused())
        with pytest.raises(DatasetError, match="connection refused"):
            dataset.save(_model(0).state_dict())
        monkeypatch.undo()
        assert not fs.exists(f"/leak-detection-upload/best.pth/{OLDER}/best.pth")
        dataset.save(_model(0).state_dict())
        _assert_same_state(TorchModelDataset(filepath=url, version=Version(None, None)).load(), _model(0).state_dict())
    finally:
        monkeypatch.undo()
        if fs.exists("/leak-detection-upload"):
            fs.rm("/leak-detection-upload", recursive=True)


def test_describe_names_the_file(tmp_path):
    dataset = TorchModelDataset(filepath=tmp_path / "best.pth", version=Version(None, OLDER))
    assert "best.pth" in repr(dataset)
    assert OLDER in repr(dataset)


def test_catalog_saves_model_and_meta_under_one_version(tmp_path):
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
    catalog = DataCatalog.from_config(config, save_version=OLDER)
    model = _model(4)
    catalog.save("binary.model", model.state_dict())
    catalog.save("binary.model_meta", {"binary_mode": True, "threshold": 0.45})

    assert isinstance(catalog["binary.model"], TorchModelDataset)
    model_versions = sorted(p.name for p in (tmp_path / "binary" / "best.pth").iterdir())
    meta_versions = sorted(p.name for p in (tmp_path / "binary" / "model_meta.json").iterdir())
    assert model_versions == meta_versions == [OLDER]
    assert (tmp_path / "binary" / "best.pth" / OLDER / "best.pth").is_file()
    assert (tmp_path / "binary" / "model_meta.json" / OLDER / "model_meta.json").is_file()

    _assert_same_state(catalog.load("binary.model"), model.state_dict())
    _assert_same_state(catalog.load("binary.model", version=OLDER), model.state_dict())
    assert catalog.load("binary.model_meta")["threshold"] == 0.45
    with pytest.raises(DatasetError, match=f"existing versions \\(newest first\\): {OLDER}"):
        catalog.load("binary.model", version=NEWER)
