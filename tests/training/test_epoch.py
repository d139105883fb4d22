"""One training epoch: finite statistics, moved weights, a clear stop on NaN."""

import math

import pytest
import torch

from leak_detection.training.epoch import augment_levels, train_one_epoch


def test_one_epoch_returns_finite_statistics_and_changes_the_weights(make_run):
    run = make_run()
    runtime, step_model, state = run.fresh_state()
    before = {k: v.clone() for k, v in run.model.state_dict().items()}
    stats = train_one_epoch(step_model, state, run.train, run.loss_fn, runtime, run.config)
    assert stats.epoch == 1 and stats.samples == run.train.n_samples == 60
    assert math.isfinite(stats.train_loss) and 0 <= stats.train_accuracy <= 1
    assert stats.train_seconds > 0 and 0 < stats.learning_rate <= run.config.trajectory.learning_rate
    assert not torch.equal(before["head.weight"], run.model.state_dict()["head.weight"])
    assert torch.equal(before["input_mean"], run.model.state_dict()["input_mean"])  # a buffer, not a weight
    row = stats.history_row({"val_loss": 0.1})
    assert list(row) == ["epoch", "train_loss", "train_accuracy", "val_loss", "learning_rate", "seconds"] + [
        "samples_per_second"
    ]
    assert state.epoch == 0  # the state counts an epoch only when it is recorded


def test_a_nan_loss_stops_the_epoch_with_the_settings_to_try(make_run):
    run = make_run(learning_rate=0.5)
    runtime, step_model, state = run.fresh_state()
    with torch.no_grad():
        run.model.head.weight.fill_(math.nan)
    with pytest.raises(FloatingPointError, match=r"epoch 1: the training loss .* training.learning_rate \(now 0.5\)"):
        train_one_epoch(step_model, state, run.train, run.loss_fn, runtime, run.config)


def test_level_augmentation_shifts_each_segment_by_a_gain_and_a_tilt_within_bounds():
    x = torch.zeros(500, 1, 32, 1)
    out = augment_levels(x, 20.0, 6.0, torch.Generator().manual_seed(1))
    again = augment_levels(x, 20.0, 6.0, torch.Generator().manual_seed(1))
    assert torch.equal(out, again)
    mean_shift = out.mean(dim=(1, 2, 3))
    assert mean_shift.abs().max() <= 20.0 and mean_shift.std() > 5.0
    tilt = out[:, 0, -1, 0] - out[:, 0, 0, 0]
    assert tilt.abs().max() <= 6.0 + 1e-5 and tilt.std() > 1.0
    assert augment_levels(x, 0.0, 0.0, torch.Generator()) is x
