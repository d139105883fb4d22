"""One training epoch: forward, loss, backward, clip, step, schedule, over shuffled batches."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import nn

from leak_detection.features.segment_batches import SegmentSource
from leak_detection.runs.progress import progress
from leak_detection.training.config import TrainerConfig, TrajectoryConfig
from leak_detection.training.runtime import TrainingRuntime
from leak_detection.training.state import TrainingState


@dataclass(frozen=True)
class EpochStats:
    """What one epoch of training measured, before validation."""

    epoch: int
    train_loss: float
    train_accuracy: float
    samples: int
    train_seconds: float
    learning_rate: float
    started: float
    """``time.perf_counter()`` at the start of the epoch."""

    def history_row(self, validation: dict[str, float]) -> dict[str, float]:
        """The epoch's row of the training log, with the validation numbers and the time so far."""
        return {
            "epoch": self.epoch,
            "train_loss": self.train_loss,
            "train_accuracy": self.train_accuracy,
            **validation,
            "learning_rate": self.learning_rate,
            "seconds": time.perf_counter() - self.started,
            "samples_per_second": self.samples / self.train_seconds,
        }


def augment_levels(x: torch.Tensor, gain_db: float, tilt_db: float, generator: torch.Generator) -> torch.Tensor:
    """Each segment as another sensor would have heard it: a gain and a spectral tilt.

    Field sensors differ by tens of dB of gain and by their response's slope; drawing
    both per training segment (uniform in +-gain_db, and +-tilt_db from the lowest to
    the highest mel band) teaches the model that neither says anything about a leak.
    """
    if gain_db == 0 and tilt_db == 0:
        return x
    n, n_mels = x.shape[0], x.shape[2]
    draws = torch.rand(n, 2, generator=generator) * 2 - 1
    slope = torch.linspace(-0.5, 0.5, n_mels)
    offset = draws[:, :1] * gain_db + draws[:, 1:] * tilt_db * slope
    return x + offset.reshape(n, 1, n_mels, 1).to(x.device, x.dtype)


def train_one_epoch(
    step_model: nn.Module,
    state: TrainingState,
    train: SegmentSource,
    loss_fn: nn.Module,
    runtime: TrainingRuntime,
    config: TrainerConfig,
    label: str = "",
) -> EpochStats:
    """Train ``state``'s model for epoch ``state.epoch + 1``; raises ``FloatingPointError`` on a NaN.

    ``step_model`` is ``state.model`` itself or its compiled form; ``label`` starts every message.
    """
    epoch, trajectory = state.epoch + 1, config.trajectory
    # Dropout and shuffling depend on the epoch alone, so a resumed run repeats
    # exactly what an uninterrupted one would have done.
    torch.manual_seed(trajectory.seed * 100_003 + epoch)
    shuffle = torch.Generator().manual_seed(trajectory.seed * 100_019 + epoch)
    augment = torch.Generator().manual_seed(trajectory.seed * 100_043 + epoch)
    state.model.train()
    started = time.perf_counter()
    # Running sums stay on the device: reading them every step would make a GPU
    # wait for each batch to finish before the next one is queued.
    loss_sum = torch.zeros((), device=runtime.device, dtype=torch.float64)
    correct = torch.zeros((), device=runtime.device, dtype=torch.int64)
    seen = 0
    bar = progress(
        total=train.n_samples,
        desc=f"{label}epoch {epoch}/{config.stopping.epochs}",
        unit="seg",
        unit_scale=True,
        leave=False,
        mininterval=1.0,
    )
    for x, y, leak in train.shuffled_batches(trajectory.batch_size, shuffle):
        x = augment_levels(x, trajectory.augment_gain_db, trajectory.augment_tilt_db, augment)
        x, y, leak = runtime.batch(x, y, leak)
        with runtime.autocast():
            logits, aux = step_model(x)
            loss = loss_fn(logits, aux, y, leak)
        _optimiser_step(state, runtime.scaler, loss, trajectory.grad_clip)
        loss_sum += loss.detach() * y.shape[0]
        correct += (logits.argmax(dim=1) == y).sum()
        seen += y.shape[0]
        bar.update(y.shape[0])
    bar.close()
    runtime.synchronize()
    train_seconds = time.perf_counter() - started
    _stop_if_not_finite(state.model, loss_sum, label, epoch, trajectory)
    learning_rate = state.optimizer.param_groups[0]["lr"]
    return EpochStats(epoch, float(loss_sum) / seen, int(correct) / seen, seen, train_seconds, learning_rate, started)


def _optimiser_step(state: TrainingState, scaler: torch.amp.GradScaler, loss: torch.Tensor, grad_clip: float) -> None:
    state.optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    # Unscaled first, so that the clip sees the true gradient norm under fp16.
    scaler.unscale_(state.optimizer)
    torch.nn.utils.clip_grad_norm_(state.model.parameters(), grad_clip)
    scaler.step(state.optimizer)
    scaler.update()
    state.scheduler.step()


def _stop_if_not_finite(
    model: nn.Module, loss_sum: torch.Tensor, label: str, epoch: int, trajectory: TrajectoryConfig
) -> None:
    """Stop before a NaN epoch is checkpointed or can become the best model.

    One NaN feature or one overflowing step makes every later loss NaN; the run used to
    go on, log F1 0.000 and save all-NaN weights that ``predict`` then used.
    """
    loss_finite = math.isfinite(float(loss_sum))
    weights_finite = bool(torch.stack([torch.isfinite(p).all() for p in model.parameters()]).all())
    if loss_finite and weights_finite:
        return
    what = "the training loss" if not loss_finite else "the weights"
    raise FloatingPointError(
        f"{label}epoch {epoch}: {what} became NaN or infinite, so training stops here; "
        f"nothing of epoch {epoch} is saved (checkpoints hold the epochs before it). Check the feature store for "
        "NaN features (loading it names the files), then try a lower training.learning_rate "
        f"(now {trajectory.learning_rate:g}), training.grad_clip (now {trajectory.grad_clip:g}) or training.amp=off"
    )
