"""Files from elsewhere cannot run code, leave the data root, or pass for a valid store."""

import pickle
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
from kedro.io import DatasetError

from leak_detection.datasets import MelFeatureStoreDataset, RecordingsDataset, TorchModelDataset
from leak_detection.training.checkpoints import CheckpointFolder
from tests.conftest import PROJECT, synthetic_store


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_every_torch_load_in_the_code_uses_weights_only():
    calls = []
    for path in (PROJECT / "src").rglob("*.py"):
        for match in re.finditer(r"torch\.load\(([^)]*)\)", path.read_text()):
            calls.append((path.name, match.group(1)))
    assert calls, "no torch.load found: the check would prove nothing"
    assert all("weights_only=True" in args for _, args in calls), calls


def test_a_pickle_disguised_as_a_model_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    with open(tmp_path / "best.pth", "wb") as f:
        pickle.dump({"weight": Payload(str(marker))}, f)
    with pytest.raises(DatasetError, match="weights_only"):
        TorchModelDataset(filepath=str(tmp_path / "best.pth")).load()
    assert not marker.exists()


def test_a_pickle_disguised_as_a_checkpoint_is_skipped_and_never_runs(tmp_path, caplog):
    marker = tmp_path / "pwned"
    with open(tmp_path / "last.pth", "wb") as f:
        pickle.dump({"epoch": 3, "model": Payload(str(marker))}, f)
    assert CheckpointFolder(tmp_path, keep=3).load_compatible({}) is None
    assert "last.pth is unreadable" in caplog.text
    assert not marker.exists()


def test_manifest_paths_that_escape_the_recordings_folder_are_refused(tmp_path, make_wav):
    make_wav(tmp_path / "data" / "LEAK" / "a.wav")
    make_wav(tmp_path / "secret.wav")
    (tmp_path / "data" / "manifest.csv").write_text("path,label,group\n../secret.wav,LEAK,x\n")
    with pytest.raises(DatasetError, match="outside the recordings folder"):
        RecordingsDataset(path=tmp_path / "data").load()


@pytest.mark.parametrize(
    "tamper, message",
    [
        (lambda h5: h5["file_offsets"].__setitem__(-1, 7), "file_offsets ends at 7"),
        (lambda h5: h5["labels"].__setitem__(0, 9), "labels hold values outside"),
        (lambda h5: (h5.__delitem__("groups"), h5.create_dataset("groups", data=np.array([b"g"]))), "groups has 1"),
        (
            lambda h5: (
                h5.__delitem__("segments_mel"),
                h5.create_dataset("segments_mel", data=np.zeros((240, 3, 32), "f4")),
            ),
            "segments_mel has shape",
        ),
    ],
)
def test_a_feature_store_whose_parts_disagree_is_refused_saying_what_disagrees(tmp_path, tamper, message):
    path = tmp_path / "store.h5"
    store, _ = synthetic_store()
    MelFeatureStoreDataset(filepath=str(path)).save(store)
    with h5py.File(path, "a") as h5:
        tamper(h5)
    with pytest.raises(DatasetError, match=message) as err:
        MelFeatureStoreDataset(filepath=str(path)).load()
    assert str(path) in str(err.value)
