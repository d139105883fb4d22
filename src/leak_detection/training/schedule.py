"""The optimiser and its learning-rate schedule: AdamW, linear warm-up, then cosine decay."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from leak_detection.training.config import TrajectoryConfig


def warmup_cosine(warmup_steps: int, total_steps: int, min_lr_ratio: float) -> Callable[[int], float]:
    """LR factor per optimiser step: linear warm-up from the very first step, then cosine.

    LambdaLR applies the factor of step 0 at construction, so the first update
    already uses the warm-up rate (the replaced system started warm-up an epoch late: docs/architecture.md, D7).
    """

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def optimiser_and_schedule(
    model: nn.Module, trajectory: TrajectoryConfig, steps_per_epoch: int, epochs: int
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over the model's weights and its per-step schedule over ``epochs`` epochs."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=trajectory.learning_rate, weight_decay=trajectory.weight_decay)
    warmup_steps = round(trajectory.warmup_epochs * steps_per_epoch)
    schedule = warmup_cosine(warmup_steps, steps_per_epoch * epochs, trajectory.min_lr_ratio)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
