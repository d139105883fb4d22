"""Everything a run carries from one epoch to the next, and its checkpoint form.

``to_checkpoint`` and ``from_checkpoint`` are the one place that knows what a
checkpoint holds: a plain dict of tensors and numbers (``CHECKPOINT_KEYS``) that
``torch.load(weights_only=True)`` reads back. Resuming is loading that dict and
continuing from ``epoch + 1``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

CHECKPOINT_KEYS = (
    "epoch",
    "model",
    "optimizer",
    "scheduler",
    "scaler",
    "best",
    "epochs_without_improvement",
    "history",
    "train_seconds",
    "rng",
    "compatibility",
)
"""What one checkpoint holds; resuming reads every one of them."""


@dataclass
class BestModel:
    """The best epoch so far by validation file-level leak F1, and a copy of its weights."""

    f1: float = -1.0
    epoch: int = 0
    threshold: float = 0.5
    state: dict[str, torch.Tensor] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"f1": self.f1, "epoch": self.epoch, "threshold": self.threshold, "state": self.state}

    @classmethod
    def from_dict(cls, saved: dict[str, Any]) -> BestModel:
        return cls(f1=saved["f1"], epoch=saved["epoch"], threshold=saved["threshold"], state=saved["state"])


@dataclass
class TrainingState:
    """The model and its optimiser, schedule and scaler, with the run's progress after ``epoch`` epochs."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    epoch: int = 0
    best: BestModel = field(default_factory=BestModel)
    epochs_without_improvement: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    train_seconds: float = 0.0

    def to_checkpoint(self, compatibility: dict[str, Any]) -> dict[str, Any]:
        """The checkpoint of this state, with the fingerprint a resuming run must match."""
        return {
            "epoch": self.epoch,
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "best": self.best.to_dict(),
            "epochs_without_improvement": self.epochs_without_improvement,
            "history": self.history,
            "train_seconds": self.train_seconds,
            "rng": {"torch": torch.get_rng_state()},
            "compatibility": compatibility,
        }

    @classmethod
    def from_checkpoint(
        cls,
        checkpoint: dict[str, Any],
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        scaler: torch.amp.GradScaler,
    ) -> TrainingState:
        """The state ``checkpoint`` was made from, loaded into these (freshly built) objects."""
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        scaler.load_state_dict(checkpoint["scaler"])
        torch.set_rng_state(checkpoint["rng"]["torch"])
        return cls(
            model,
            optimizer,
            scheduler,
            scaler,
            epoch=int(checkpoint["epoch"]),
            best=BestModel.from_dict(checkpoint["best"]),
            epochs_without_improvement=int(checkpoint["epochs_without_improvement"]),
            history=list(checkpoint["history"]),
            train_seconds=float(checkpoint["train_seconds"]),
        )

    def record_epoch(self, row: dict[str, float], train_seconds: float) -> bool:
        """Count one more epoch with its history row; whether it is the new best model."""
        self.epoch = int(row["epoch"])
        self.history.append(row)
        self.train_seconds += train_seconds
        # Equal F1 up to rounding is no improvement: keep the earlier, cheaper model.
        improved = row["val_file_leak_f1"] > self.best.f1 + 1e-9
        if improved:
            weights = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
            self.best = BestModel(row["val_file_leak_f1"], self.epoch, row["val_threshold"], weights)
            self.epochs_without_improvement = 0
        else:
            self.epochs_without_improvement += 1
        return improved

    def out_of_patience(self, patience: int) -> bool:
        return self.epochs_without_improvement >= patience
