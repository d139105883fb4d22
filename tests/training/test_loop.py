"""``fit``: an interrupted run resumes to the uninterrupted one; only a compatible checkpoint is continued."""

import logging

import pytest
import torch

from leak_detection.training.checkpoints import CheckpointFolder
from tests.training.conftest import tiny_run, without_timing


def interrupt_after(monkeypatch, epoch: int) -> None:
    original_save = CheckpointFolder.save

    def save_then_stop(self, checkpoint):
        original_save(self, checkpoint)
        if checkpoint["epoch"] == epoch:
            raise KeyboardInterrupt(f"simulated interruption after epoch {epoch}")

    monkeypatch.setattr(CheckpointFolder, "save", save_then_stop)


def test_a_run_interrupted_and_resumed_equals_an_uninterrupted_one(tmp_path, monkeypatch):
    params = {"epochs": 2, "augment_gain_db": 3.0, "label_smoothing": 0.1}
    uninterrupted = tiny_run(tmp_path / "a", "multiclass", **params).fit()
    with monkeypatch.context() as patch:
        interrupt_after(patch, 1)
        with pytest.raises(KeyboardInterrupt):
            tiny_run(tmp_path / "b", "multiclass", **params).fit()
    resumed = tiny_run(tmp_path / "b", "multiclass", **params).fit()

    assert (resumed.resumed_from_epoch, resumed.epochs_run) == (1, 2)
    assert without_timing(resumed.history) == without_timing(uninterrupted.history)
    assert (resumed.best_epoch, resumed.best_threshold) == (uninterrupted.best_epoch, uninterrupted.best_threshold)
    for key, value in uninterrupted.best_state.items():
        assert torch.equal(value, resumed.best_state[key]), key


def test_more_epochs_and_more_patience_continue_a_finished_run(make_run):
    first = make_run(epochs=1, patience=1).fit()
    assert first.epochs_run == 1
    longer = make_run(epochs=2, patience=2).fit()
    assert longer.resumed_from_epoch == 1
    assert [row["epoch"] for row in longer.history] == [1, 2]


def test_a_run_out_of_patience_stops_and_a_resumed_one_stays_stopped(make_run):
    # A learning rate too small to change anything: validation F1 cannot improve.
    stopped = make_run(epochs=3, patience=1, learning_rate=1e-12).fit()
    assert stopped.stopped_early and stopped.epochs_run == 2 and stopped.best_epoch == 1
    again = make_run(epochs=3, patience=1, learning_rate=1e-12).fit()
    assert again.stopped_early and again.resumed_from_epoch == 2 and again.epochs_run == 2


def test_a_checkpoint_of_another_trajectory_is_not_resumed_and_the_reason_is_logged(make_run, tmp_path, caplog):
    make_run(epochs=1).fit()
    with caplog.at_level(logging.INFO):
        result = make_run(epochs=1, learning_rate=2e-3).fit()
    assert result.resumed_from_epoch == 0 and result.epochs_run == 1
    assert "made for a different trajectory; starting fresh" in caplog.text
    assert (tmp_path / "checkpoints/superseded/epoch_001.pth").exists()


def test_a_nan_epoch_is_neither_checkpointed_nor_kept(make_run, tmp_path):
    run = make_run()
    with torch.no_grad():
        run.model.head.bias.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match=r"tiny: epoch 1: the training loss became NaN"):
        run.fit()
    assert not list((tmp_path / "checkpoints").glob("*.pth"))


def test_each_epoch_is_logged_in_one_line_with_the_best_marked(make_run, caplog):
    with caplog.at_level(logging.INFO, logger="leak_detection.training.loop"):
        result = make_run(epochs=2).fit()
    lines = [r.getMessage() for r in caplog.records if "train loss" in r.getMessage()]
    assert len(lines) == 2 and lines[0].startswith("tiny: epoch 1/2  train loss ")
    assert ("*best*" in lines[1]) == (result.best_epoch == 2)
