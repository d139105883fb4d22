"""The learning-rate schedule: warm-up from the very first step, then cosine."""

import pytest
import torch

from leak_detection.training.config import TrajectoryConfig
from leak_detection.training.schedule import optimiser_and_schedule, warmup_cosine


def test_warm_up_takes_effect_from_the_first_step():
    factor = warmup_cosine(warmup_steps=10, total_steps=100, min_lr_ratio=0.0)
    assert factor(0) == pytest.approx(0.1)
    assert factor(9) == pytest.approx(1.0)
    assert factor(100) == pytest.approx(0.0)
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)  # the rate of the very first update


def test_the_schedule_spans_every_epoch_and_ends_at_the_minimum_rate():
    model = torch.nn.Linear(2, 1)
    trajectory = TrajectoryConfig(learning_rate=1e-2, warmup_epochs=0.5, min_lr_ratio=0.1)
    optimizer, scheduler = optimiser_and_schedule(model, trajectory, steps_per_epoch=4, epochs=3)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-2 / 2)
    for _ in range(12):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)
