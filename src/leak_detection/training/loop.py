"""The training loop: forward, loss, backward, clip, step, schedule; then validate and checkpoint.

Speed switches (autocast, channels_last, torch.compile) are set once around the
loop from the configuration; on a CPU the same loop runs without them. Early
stopping watches the validation file-level leak F1 computed by ``scoring``, the
function evaluation uses.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from leak_detection.decisions.inference import autocast_context, predict_segments
from leak_detection.decisions.scoring import long_segment_scores, sweep_thresholds
from leak_detection.features.segment_batches import SegmentSource
from leak_detection.params_config import ParamsConfig
from leak_detection.runs.cpu_allocator import keep_freed_memory
from leak_detection.training.checkpoints import CheckpointFolder

logger = logging.getLogger(__name__)

AMP_CHOICES = ("auto", "off", "bf16", "fp16")


NUMBER_RANGES: dict[str, tuple[float, float, bool]] = {
    # AdamW multiplies the weights by (1 - learning_rate * weight_decay) every step: past
    # 1 it flips their sign. Rates and decays in use are 1e-5..1e-2 and 1e-4..0.1.
    "learning_rate": (0.0, 1.0, False),
    "weight_decay": (0.0, 1.0, True),
    "memory_budget_mb": (0.0, 1e9, False),
    "warmup_epochs": (0.0, 1e6, True),
    "grad_clip": (0.0, 1e6, True),
    "leak_aux_weight": (0.0, 1e3, True),
    # Beyond 60 dB the augmented levels leave the range any recording has.
    "augment_gain_db": (0.0, 60.0, True),
    "augment_tilt_db": (0.0, 60.0, True),
}
"""Each number of ``TrainerConfig``: lowest and highest allowed value, and whether the lowest
itself is allowed. Infinities and NaN are never allowed."""


@dataclass(frozen=True)
class TrainerConfig(ParamsConfig):
    """The ``training`` parameters; ``NUMBER_RANGES`` lists the allowed range of each number."""

    SECTION = "training"

    epochs: int = 30
    batch_size: int = 1024
    learning_rate: float = 1e-3
    weight_decay: float = 1e-2
    warmup_epochs: float = 1.0
    min_lr_ratio: float = 0.01
    grad_clip: float = 1.0
    patience: int = 6
    leak_aux_weight: float = 0.5
    dropout: float = 0.25
    seed: int = 42
    device: str = "auto"
    amp: str = "auto"
    channels_last: bool = True
    compile: bool = False
    memory_budget_mb: float = 2048
    eval_batch_size: int = 8192
    checkpoint_dir: str = "data/06_models/checkpoints"
    keep_checkpoints: int = 3
    fresh_start: bool = False
    augment_gain_db: float = 0.0
    augment_tilt_db: float = 0.0
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        def bad(key: str, allowed: str) -> ValueError:
            return ValueError(f"training.{key} = {getattr(self, key)!r}: must be {allowed}")

        for key in ("epochs", "batch_size", "eval_batch_size", "keep_checkpoints", "patience"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise bad(key, "an integer >= 1")
        for key, (low, high, low_allowed) in NUMBER_RANGES.items():
            value = getattr(self, key)
            number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            if not (number and (low <= value if low_allowed else low < value) and value <= high):
                raise bad(key, f"a finite number in {'[' if low_allowed else '('}{low:g}, {high:g}]")
        if not 0 <= self.min_lr_ratio <= 1:
            raise bad("min_lr_ratio", "in [0, 1]")
        if not 0 <= self.dropout < 1:
            raise bad("dropout", "in [0, 1)")
        if not 0 <= self.label_smoothing < 1:
            raise bad("label_smoothing", "in [0, 1)")
        if self.amp not in AMP_CHOICES:
            raise bad("amp", f"one of {list(AMP_CHOICES)}")
        if self.device != "auto":
            try:
                torch.device(self.device)
            except RuntimeError as exc:
                raise bad("device", "'auto', 'cpu', 'cuda' or 'cuda:N'") from exc

    def trajectory(self) -> dict[str, Any]:
        """The settings that shape the optimisation path: a checkpoint made under
        other values cannot be continued (epochs and patience may change)."""
        keep = (
            "batch_size",
            "learning_rate",
            "weight_decay",
            "warmup_epochs",
            "min_lr_ratio",
            "grad_clip",
            "leak_aux_weight",
            "dropout",
            "seed",
            "amp",
            "augment_gain_db",
            "augment_tilt_db",
            "label_smoothing",
        )
        return {k: getattr(self, k) for k in keep}


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


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"training.device = {name!r} but CUDA is not available here; use 'auto' or 'cpu'")
    return device


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype: bf16 where the GPU has it, else fp16 (with a GradScaler); none on CPU."""
    if device.type != "cuda" or amp == "off":
        return None
    if amp == "fp16" or (amp == "auto" and not torch.cuda.is_bf16_supported()):
        return torch.float16
    return torch.bfloat16


class LeakLoss(nn.Module):
    """Class-weighted cross-entropy, plus the leak-vs-rest BCE when the model has that head.

    The auxiliary target is "this segment's recording is a LEAK", taken from the
    class name; the replaced system compared labels with LEAK's 5-class index, which
    in binary mode was never true (docs/architecture.md, D1).
    """

    def __init__(
        self,
        class_weights: list[float],
        leak_aux_weight: float = 0.5,
        leak_pos_weight: float = 1.0,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        self.label_smoothing = label_smoothing
        self.register_buffer("class_weights", torch.tensor(class_weights, dtype=torch.float32))
        self.register_buffer("leak_pos_weight", torch.tensor([leak_pos_weight], dtype=torch.float32))
        self.leak_aux_weight = leak_aux_weight

    def forward(self, logits, aux, targets, is_leak) -> torch.Tensor:
        loss = F.cross_entropy(logits.float(), targets, weight=self.class_weights, label_smoothing=self.label_smoothing)
        if aux is not None:
            loss = loss + self.leak_aux_weight * F.binary_cross_entropy_with_logits(
                aux.float(), is_leak.float(), pos_weight=self.leak_pos_weight
            )
        return loss


def warmup_cosine(warmup_steps: int, total_steps: int, min_lr_ratio: float):
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


def _stop_if_not_finite(
    model: nn.Module, loss_sum: torch.Tensor, epoch: int, label: str, config: TrainerConfig
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
        f"(now {config.learning_rate:g}), training.grad_clip (now {config.grad_clip:g}) or training.amp=off"
    )


def fit(  # noqa: PLR0915 - the loop is meant to be read in one place
    model: nn.Module,
    train: SegmentSource,
    validation: SegmentSource,
    loss_fn: LeakLoss,
    leak_output_idx: int,
    config: TrainerConfig,
    data_fingerprint: str,
    label: str = "",
) -> FitResult:
    device = resolve_device(config.device)
    amp_dtype = resolve_amp(config.amp, device)
    if device.type == "cpu":
        keep_freed_memory()
    model.to(device)
    loss_fn.to(device)
    channels_last = config.channels_last and device.type == "cuda"
    if channels_last:
        model.to(memory_format=torch.channels_last)
    step_model = torch.compile(model) if config.compile else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(train.n_samples / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(round(config.warmup_epochs * steps_per_epoch), total_steps, config.min_lr_ratio)
    )
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    predict_kwargs = {
        "batch_size": config.eval_batch_size,
        "device": device,
        "amp_dtype": amp_dtype,
        "channels_last": channels_last,
    }

    checkpoints = CheckpointFolder(config.checkpoint_dir, config.keep_checkpoints)
    compatibility = {
        "model": f"{type(model).__name__}(n_classes={model.n_classes}, aux={model.leak_aux is not None})",
        "data_fingerprint": data_fingerprint,
        "trajectory": config.trajectory(),
        "steps_per_epoch": steps_per_epoch,
    }
    checkpoint = None
    if config.fresh_start:
        logger.info("%straining.fresh_start is set: not resuming", label)
    else:
        checkpoint = checkpoints.load_compatible(compatibility, model.state_dict())
    if checkpoint is None:
        checkpoints.set_aside()
        start_epoch, history, best = 0, [], {"f1": -1.0, "epoch": 0, "threshold": 0.5, "state": None}
        stale, train_seconds = 0, 0.0
    else:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        scaler.load_state_dict(checkpoint["scaler"])
        torch.set_rng_state(checkpoint["rng"]["torch"])
        start_epoch, history = int(checkpoint["epoch"]), list(checkpoint["history"])
        best = dict(checkpoint["best"])
        stale, train_seconds = int(checkpoint["epochs_without_improvement"]), float(checkpoint["train_seconds"])

    stopped_early = stale >= config.patience
    epoch = start_epoch
    for epoch in range(start_epoch + 1, config.epochs + 1):
        if stopped_early:
            break
        # Dropout and shuffling depend on the epoch alone, so a resumed run repeats
        # exactly what an uninterrupted one would have done.
        torch.manual_seed(config.seed * 100_003 + epoch)
        generator = torch.Generator().manual_seed(config.seed * 100_019 + epoch)
        augment_generator = torch.Generator().manual_seed(config.seed * 100_043 + epoch)
        model.train()
        started = time.perf_counter()
        # Running sums stay on the device: reading them every step would make a GPU
        # wait for each batch to finish before the next one is queued.
        loss_sum = torch.zeros((), device=device, dtype=torch.float64)
        correct = torch.zeros((), device=device, dtype=torch.int64)
        seen = 0
        bar = tqdm(
            total=train.n_samples,
            desc=f"{label}epoch {epoch}/{config.epochs}",
            unit="seg",
            unit_scale=True,
            leave=False,
            mininterval=1.0,
        )
        for x, y, leak in train.shuffled_batches(config.batch_size, generator):
            x = augment_levels(x, config.augment_gain_db, config.augment_tilt_db, augment_generator)
            x, y, leak = x.to(device, non_blocking=True), y.to(device), leak.to(device)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast_context(device, amp_dtype):
                logits, aux = step_model(x)
                loss = loss_fn(logits, aux, y, leak)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            loss_sum += loss.detach() * y.shape[0]
            correct += (logits.argmax(dim=1) == y).sum()
            seen += y.shape[0]
            bar.update(y.shape[0])
        bar.close()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        train_time = time.perf_counter() - started
        train_seconds += train_time
        _stop_if_not_finite(model, loss_sum, epoch, label, config)
        metrics = validation_file_f1(model, validation, leak_output_idx, loss_fn, **predict_kwargs)
        record = {
            "epoch": epoch,
            "train_loss": float(loss_sum) / seen,
            "train_accuracy": int(correct) / seen,
            **metrics,
            "learning_rate": optimizer.param_groups[0]["lr"],
            "seconds": time.perf_counter() - started,
            "samples_per_second": seen / train_time,
        }
        history.append(record)
        # Equal F1 up to rounding is no improvement: keep the earlier, cheaper model.
        improved = record["val_file_leak_f1"] > best["f1"] + 1e-9
        if improved:
            best = {
                "f1": record["val_file_leak_f1"],
                "epoch": epoch,
                "threshold": record["val_threshold"],
                "state": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
            }
            stale = 0
        else:
            stale += 1
        logger.info(
            "%sepoch %d/%d  train loss %.4f acc %.3f | val loss %.4f file leak F1 %.3f P %.3f R %.3f (thr %.2f)"
            " | lr %.2e | %.1f s, %.0f samples/s%s",
            label,
            epoch,
            config.epochs,
            record["train_loss"],
            record["train_accuracy"],
            record["val_loss"],
            record["val_file_leak_f1"],
            record["val_file_leak_precision"],
            record["val_file_leak_recall"],
            record["val_threshold"],
            record["learning_rate"],
            record["seconds"],
            record["samples_per_second"],
            "  *best*" if improved else "",
        )
        stopped_early = stale >= config.patience
        checkpoints.save(
            {
                "epoch": epoch,
                "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "best": best,
                "epochs_without_improvement": stale,
                "history": history,
                "train_seconds": train_seconds,
                "rng": {"torch": torch.get_rng_state()},
                "compatibility": compatibility,
            }
        )
        if stopped_early:
            logger.info(
                "%sno improvement for %d epochs: stopping early after epoch %d (best epoch %d)",
                label,
                config.patience,
                epoch,
                best["epoch"],
            )
    if best["state"] is None:
        raise RuntimeError("training ran no epoch: nothing to save")
    return FitResult(
        best_state=copy.deepcopy(best["state"]),
        best_epoch=int(best["epoch"]),
        best_file_leak_f1=float(best["f1"]),
        best_threshold=float(best["threshold"]),
        epochs_run=len(history),
        stopped_early=stopped_early,
        history=history,
        train_seconds=train_seconds,
        samples_per_second=float(np.mean([h["samples_per_second"] for h in history])),
        device=str(device),
        resumed_from_epoch=start_epoch,
    )
