"""The training state and its checkpoint form: save and resume are one symmetric piece."""

import io

import pytest
import torch

from leak_detection.training.epoch import train_one_epoch
from leak_detection.training.state import CHECKPOINT_KEYS, BestModel, TrainingState


def one_epoch(run, runtime, step_model, state):
    stats = train_one_epoch(step_model, state, run.train, run.loss_fn, runtime, run.config)
    state.record_epoch(stats.history_row({"val_file_leak_f1": 0.5, "val_threshold": 0.4}), stats.train_seconds)
    return stats


def through_a_file(checkpoint):
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def assert_equal_nested(a, b, where="checkpoint"):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_equal_nested(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_equal_nested(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def test_a_state_restored_from_its_checkpoint_equals_it_and_trains_on_identically(make_run):
    run = make_run("multiclass")
    runtime, step_model, state = run.fresh_state()
    one_epoch(run, runtime, step_model, state)
    checkpoint = state.to_checkpoint({"data_fingerprint": "tiny"})
    assert tuple(checkpoint) == CHECKPOINT_KEYS

    other = make_run("multiclass")
    other_runtime, other_step_model, fresh = other.fresh_state()
    restored = TrainingState.from_checkpoint(
        through_a_file(checkpoint), other.model, fresh.optimizer, fresh.scheduler, fresh.scaler
    )
    assert_equal_nested(restored.to_checkpoint({"data_fingerprint": "tiny"}), checkpoint)
    assert (restored.epoch, restored.best.epoch, restored.epochs_without_improvement) == (1, 1, 0)

    stats = one_epoch(run, runtime, step_model, state)
    restored_stats = one_epoch(other, other_runtime, other_step_model, restored)
    assert (stats.epoch, stats.train_loss, stats.train_accuracy, stats.learning_rate) == (
        restored_stats.epoch,
        restored_stats.train_loss,
        restored_stats.train_accuracy,
        restored_stats.learning_rate,
    )
    for key, value in run.model.state_dict().items():
        assert torch.equal(value, other.model.state_dict()[key]), key


def test_an_equal_f1_is_no_improvement_and_counts_towards_patience(make_run):
    _, _, state = make_run().fresh_state()
    assert state.record_epoch({"epoch": 1, "val_file_leak_f1": 0.8, "val_threshold": 0.3}, 1.0)
    assert not state.record_epoch({"epoch": 2, "val_file_leak_f1": 0.8 + 1e-12, "val_threshold": 0.6}, 1.0)
    assert not state.record_epoch({"epoch": 3, "val_file_leak_f1": 0.7, "val_threshold": 0.6}, 1.0)
    assert (state.best.epoch, state.best.threshold, state.epochs_without_improvement) == (1, 0.3, 2)
    assert state.out_of_patience(2) and not state.out_of_patience(3)
    assert state.train_seconds == pytest.approx(3.0) and state.epoch == 3


def test_the_best_model_keeps_the_checkpoint_layout_of_earlier_versions():
    saved = {"f1": 0.9, "epoch": 4, "threshold": 0.35, "state": {"w": torch.ones(2)}}
    assert BestModel.from_dict(saved).to_dict() == saved
