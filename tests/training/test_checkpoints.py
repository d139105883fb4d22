"""The checkpoint folder: rolling files, fall-back to the newest intact one, the reason for not resuming."""

import logging

import torch

from leak_detection.training.checkpoints import CheckpointFolder
from leak_detection.training.state import CHECKPOINT_KEYS

COMPATIBILITY = {"model": "LeakCNNMulti(n_classes=2, aux=False)", "data_fingerprint": "d", "steps_per_epoch": 3}


def checkpoint(epoch: int, **changes) -> dict:
    saved = {key: {} for key in CHECKPOINT_KEYS}
    saved.update(epoch=epoch, model={"w": torch.full((2,), float(epoch))}, compatibility=COMPATIBILITY)
    return {**saved, **changes}


def test_the_newest_k_epoch_files_are_kept_beside_last(tmp_path):
    folder = CheckpointFolder(tmp_path, keep=2)
    for epoch in range(1, 5):
        folder.save(checkpoint(epoch))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_003.pth", "epoch_004.pth", "last.pth"]
    assert folder.load_compatible(COMPATIBILITY)["epoch"] == 4


def test_a_truncated_last_falls_back_to_the_newest_intact_epoch_file(tmp_path, caplog):
    folder = CheckpointFolder(tmp_path, keep=3)
    for epoch in (1, 2):
        folder.save(checkpoint(epoch))
    (tmp_path / "last.pth").write_bytes((tmp_path / "last.pth").read_bytes()[:100])
    (tmp_path / "epoch_002.pth").write_bytes(b"")
    with caplog.at_level(logging.INFO):
        resumed = folder.load_compatible(COMPATIBILITY, {"w": torch.zeros(2)})
    assert resumed["epoch"] == 1
    assert "last.pth is unreadable" in caplog.text and "epoch_002.pth is unreadable" in caplog.text


def test_a_checkpoint_that_does_not_fit_the_model_is_skipped(tmp_path, caplog):
    folder = CheckpointFolder(tmp_path, keep=3)
    folder.save(checkpoint(1))
    folder.save(checkpoint(2, model={"w": torch.zeros(3)}))
    with caplog.at_level(logging.WARNING):
        assert folder.load_compatible(COMPATIBILITY, {"w": torch.zeros(2)})["epoch"] == 1
    assert "have other shapes" in caplog.text


def test_a_checkpoint_for_other_settings_is_not_resumed_and_the_reason_is_logged(tmp_path, caplog):
    folder = CheckpointFolder(tmp_path, keep=3)
    folder.save(checkpoint(1))
    with caplog.at_level(logging.INFO):
        assert folder.resume_point({**COMPATIBILITY, "steps_per_epoch": 4}, {"w": torch.zeros(2)}, False) is None
    assert "made for a different steps_per_epoch; starting fresh" in caplog.text
    assert sorted(p.name for p in (tmp_path / "superseded").iterdir()) == ["epoch_001.pth", "last.pth"]
    assert not (tmp_path / "last.pth").exists()


def test_fresh_start_sets_a_compatible_checkpoint_aside(tmp_path, caplog):
    folder = CheckpointFolder(tmp_path, keep=3)
    folder.save(checkpoint(1))
    with caplog.at_level(logging.INFO):
        assert folder.resume_point(COMPATIBILITY, {"w": torch.zeros(2)}, True, label="binary: ") is None
    assert "binary: training.fresh_start is set: not resuming" in caplog.text
    assert (tmp_path / "superseded/last.pth").exists()
