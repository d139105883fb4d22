"""The training loop: train an epoch, validate, keep the best model, checkpoint; resume where it stopped.

Speed switches (autocast, channels_last, torch.compile) live in ``TrainingRuntime``;
on a CPU the same loop runs without them. Early stopping watches the validation
file-level leak F1 computed by ``scoring``, the function evaluation uses.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from leak_detection.decisions.inference import predict_segments
from leak_detection.decisions.scoring import long_segment_scores, sweep_thresholds
from leak_detection.features.segment_batches import SegmentSource
from leak_detection.training.checkpoints import CheckpointFolder, checkpoint_compatibility
from leak_detection.training.config import TrainerConfig
from leak_detection.training.epoch import train_one_epoch
from leak_detection.training.loss import LeakLoss
from leak_detection.training.runtime import TrainingRuntime
from leak_detection.training.schedule import optimiser_and_schedule
from leak_detection.training.state import TrainingState

logger = logging.getLogger(__name__)

EPOCH_LOG = (
    "%sepoch %d/%d  train loss %.4f acc %.3f | val loss %.4f file leak F1 %.3f P %.3f R %.3f (thr %.2f)"
    " | lr %.2e | %.1f s, %.0f samples/s%s"
)
EPOCH_LOG_KEYS = (
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_file_leak_f1",
    "val_file_leak_precision",
    "val_file_leak_recall",
    "val_threshold",
    "learning_rate",
    "seconds",
    "samples_per_second",
)
"""The history row's numbers in ``EPOCH_LOG``'s order."""


@dataclass
class FitResult:
    best_state: dict[str, torch.Tensor]
    best_epoch: int
    best_file_leak_f1: float
    best_threshold: float
    epochs_run: int
    stopped_early: bool
    history: list[dict[str, float]]
    train_seconds: float
    samples_per_second: float
    device: str
    resumed_from_epoch: int

    @classmethod
    def of(cls, state: TrainingState, patience: int, device: torch.device, resumed_from_epoch: int) -> FitResult:
        if state.best.state is None:
            raise RuntimeError("training ran no epoch: nothing to save")
        return cls(
            best_state=copy.deepcopy(state.best.state),
            best_epoch=int(state.best.epoch),
            best_file_leak_f1=float(state.best.f1),
            best_threshold=float(state.best.threshold),
            epochs_run=len(state.history),
            stopped_early=state.out_of_patience(patience),
            history=state.history,
            train_seconds=state.train_seconds,
            samples_per_second=float(np.mean([h["samples_per_second"] for h in state.history])),
            device=str(device),
            resumed_from_epoch=resumed_from_epoch,
        )


def _log_epoch(label: str, row: dict[str, float], epochs: int, improved: bool) -> None:
    numbers = (row[key] for key in EPOCH_LOG_KEYS)
    logger.info(EPOCH_LOG, label, row["epoch"], epochs, *numbers, "  *best*" if improved else "")


def validation_file_f1(
    model: nn.Module, validation: SegmentSource, leak_output_idx: int, loss_fn: nn.Module, **predict_kwargs
) -> dict[str, float]:
    """Validation loss and file-level leak F1/P/R at the best swept threshold."""
    predictions = predict_segments(
        model, validation.ordered_blocks(), leak_output_idx, loss_fn=loss_fn, **predict_kwargs
    )
    long_scores = long_segment_scores(predictions.leak_probability, validation.n_short)
    threshold, curve = sweep_thresholds(long_scores, validation.local_offsets, validation.file_is_leak)
    best = next(row for row in curve if row["threshold"] == threshold)
    return {
        "val_loss": predictions.mean_loss,
        "val_accuracy": predictions.accuracy,
        "val_file_leak_f1": best["f1"],
        "val_file_leak_precision": best["precision"],
        "val_file_leak_recall": best["recall"],
        "val_threshold": threshold,
    }


def fit(
    model: nn.Module,
    train: SegmentSource,
    validation: SegmentSource,
    loss_fn: LeakLoss,
    leak_output_idx: int,
    config: TrainerConfig,
    data_fingerprint: str,
    label: str = "",
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
) -> FitResult:
    """Train ``model`` until ``config.stopping.epochs`` or its patience runs out, resuming a compatible checkpoint.

    ``on_epoch(epoch, history_row)`` is called after each epoch is checkpointed (experiment tracking, trial
    pruning); what it raises stops the run there, with the epoch kept. ``data_fingerprint`` names the data;
    a checkpoint made for other data, another model or another trajectory is set aside, not continued.
    """
    runtime = TrainingRuntime.build(config.runtime, config.trajectory.amp)
    step_model = runtime.prepare(model, loss_fn)
    stopping = config.stopping
    steps_per_epoch = math.ceil(train.n_samples / config.trajectory.batch_size)
    optimizer, scheduler = optimiser_and_schedule(model, config.trajectory, steps_per_epoch, stopping.epochs)
    parts = (model, optimizer, scheduler, runtime.scaler)
    checkpoints = CheckpointFolder(stopping.checkpoint_dir, stopping.keep_checkpoints)
    fingerprint = checkpoint_compatibility(model, data_fingerprint, config.trajectory, steps_per_epoch)
    checkpoint = checkpoints.resume_point(fingerprint, model.state_dict(), stopping.fresh_start, label)
    state = TrainingState(*parts) if checkpoint is None else TrainingState.from_checkpoint(checkpoint, *parts)
    resumed_from_epoch = state.epoch
    while state.epoch < stopping.epochs and not state.out_of_patience(stopping.patience):
        stats = train_one_epoch(step_model, state, train, loss_fn, runtime, config, label)
        metrics = validation_file_f1(model, validation, leak_output_idx, loss_fn, **runtime.predict_kwargs())
        row = stats.history_row(metrics)
        _log_epoch(label, row, stopping.epochs, improved=state.record_epoch(row, stats.train_seconds))
        checkpoints.save(state.to_checkpoint(fingerprint))
        if on_epoch is not None:
            on_epoch(state.epoch, row)
        if state.out_of_patience(stopping.patience):
            logger.info(
                "%sno improvement for %d epochs: stopping early after epoch %d (best epoch %d)",
                label,
                stopping.patience,
                state.epoch,
                state.best.epoch,
            )
    return FitResult.of(state, stopping.patience, runtime.device, resumed_from_epoch)
