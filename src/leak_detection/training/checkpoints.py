"""Training checkpoints: where they go, and when a re-run resumes from one.

A checkpoint is one plain dict of tensors and numbers (loadable with
``weights_only=True``), written to a temporary file and renamed into place, so a
kill at any moment leaves either the previous checkpoint or the new one.
``last.pth`` is rewritten every epoch; ``epoch_NNN.pth`` keep the newest K.
A re-run resumes only from a checkpoint made for the same model, data and trajectory
(``checkpoint_compatibility``); what a checkpoint holds is ``TrainingState``'s business.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from leak_detection.model.network import non_finite_tensors
from leak_detection.runs.atomic_files import atomic_path
from leak_detection.training.config import TrajectoryConfig
from leak_detection.training.state import CHECKPOINT_KEYS

logger = logging.getLogger(__name__)

LAST = "last.pth"
EPOCH_PATTERN = re.compile(r"^epoch_(\d{3,})\.pth$")


def checkpoint_compatibility(
    model: nn.Module, data_fingerprint: str, trajectory: TrajectoryConfig, steps_per_epoch: int
) -> dict[str, Any]:
    """What a checkpoint must have been made for to be continued: model, data, trajectory, steps.

    The trajectory part is the whole ``TrajectoryConfig``, so a new setting that shapes the
    path cannot be forgotten here; epochs, patience and the runtime switches may change.
    """
    return {
        "model": f"{type(model).__name__}(n_classes={model.n_classes}, aux={model.leak_aux is not None})",
        "data_fingerprint": data_fingerprint,
        "trajectory": asdict(trajectory),
        "steps_per_epoch": steps_per_epoch,
    }


class CheckpointFolder:
    """The checkpoints of one training run (one mode)."""

    def __init__(self, folder: str | os.PathLike, keep: int) -> None:
        if keep < 1:
            raise ValueError(f"training.keep_checkpoints must be at least 1, got {keep}")
        self.folder = Path(folder)
        self.keep = keep

    def epoch_files(self) -> list[Path]:
        """Rolling checkpoints, newest first."""
        if not self.folder.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.folder.iterdir() if (m := EPOCH_PATTERN.match(p.name))]
        return [p for _, p in sorted(found, reverse=True)]

    def save(self, checkpoint: dict[str, Any]) -> None:
        epoch = int(checkpoint["epoch"])
        # last.pth first: whenever an epoch file exists, last.pth is at least as new.
        _save(checkpoint, self.folder / LAST)
        _save(checkpoint, self.folder / f"epoch_{epoch:03d}.pth")
        for old in self.epoch_files()[self.keep :]:
            old.unlink(missing_ok=True)

    def _read(self, path: Path) -> dict[str, Any]:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(checkpoint, dict) or "epoch" not in checkpoint:
            raise ValueError("not a training checkpoint (no epoch)")
        return checkpoint

    def resume_point(
        self,
        compatibility: dict[str, Any],
        model_state: dict[str, torch.Tensor],
        fresh_start: bool,
        label: str = "",
    ) -> dict[str, Any] | None:
        """The checkpoint to continue from, or ``None`` once earlier checkpoints are set aside."""
        checkpoint = None
        if fresh_start:
            logger.info("%straining.fresh_start is set: not resuming", label)
        else:
            checkpoint = self.load_compatible(compatibility, model_state)
        if checkpoint is None:
            self.set_aside()
        return checkpoint

    def load_compatible(
        self, compatibility: dict[str, Any], model_state: dict[str, torch.Tensor] | None = None
    ) -> dict[str, Any] | None:
        """The checkpoint to resume from, or ``None`` (with the reason in the log).

        ``last.pth`` first; if it is unreadable, lacks part of a checkpoint, or its
        weights do not fit ``model_state`` (the model about to resume: same keys and
        shapes, all finite), the newest intact ``epoch_NNN.pth``.
        """
        candidates = [self.folder / LAST, *self.epoch_files()]
        if not any(p.exists() for p in candidates):
            logger.info("No checkpoint in %s: starting fresh", self.folder)
            return None
        for path in candidates:
            if not path.exists():
                continue
            try:
                checkpoint = self._read(path)
            except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint is skipped the same way
                logger.warning(
                    "Checkpoint %s is unreadable (%s: %s); trying an older one", path, type(exc).__name__, exc
                )
                continue
            differences = _differences(checkpoint.get("compatibility", {}), compatibility)
            if differences:
                logger.info(
                    "Not resuming from %s: it was made for a different %s; starting fresh",
                    path,
                    ", ".join(differences),
                )
                return None
            misfit = _misfit(checkpoint, model_state)
            if misfit:
                # A last.pth with an extra weight crashed every re-run in load_state_dict.
                logger.warning("Checkpoint %s does not fit this model (%s); trying an older one", path, misfit)
                continue
            logger.info("Resuming from %s (epoch %d done)", path, checkpoint["epoch"])
            return checkpoint
        logger.warning("No intact checkpoint in %s: starting fresh", self.folder)
        return None

    def set_aside(self) -> None:
        """Move another run's checkpoints to ``superseded/`` before a fresh start.

        They are not deleted (they may be the only copy of a long run), but they must
        not mix with the new run's rolling checkpoints.
        """
        existing = [p for p in [self.folder / LAST, *self.epoch_files()] if p.exists()]
        if not existing:
            return
        aside = self.folder / "superseded"
        if aside.exists():
            for old in aside.iterdir():
                old.unlink()
        aside.mkdir(parents=True, exist_ok=True)
        for path in existing:
            os.replace(path, aside / path.name)
        logger.info("Moved %d checkpoints of an earlier run to %s", len(existing), aside)


def _save(checkpoint: dict[str, Any], path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)


def _misfit(checkpoint: dict[str, Any], model_state: dict[str, torch.Tensor] | None) -> str | None:
    """Why resuming from ``checkpoint`` would fail or resume NaN weights, or None."""
    missing = [key for key in CHECKPOINT_KEYS if key not in checkpoint]
    if missing:
        return f"it lacks {missing}"
    saved = checkpoint["model"]
    if not isinstance(saved, dict) or not all(isinstance(t, torch.Tensor) for t in saved.values()):
        return "its 'model' is not a state_dict"
    if model_state is not None:
        extra, absent = sorted(set(saved) - set(model_state)), sorted(set(model_state) - set(saved))
        if extra:
            return f"extra weights {extra[:3]}"
        if absent:
            return f"missing weights {absent[:3]}"
        reshaped = [k for k, t in model_state.items() if tuple(saved[k].shape) != tuple(t.shape)]
        if reshaped:
            return f"weights {reshaped[:3]} have other shapes"
    bad = non_finite_tensors(saved)
    return f"weights {bad[:3]} hold NaN or infinity" if bad else None


def _differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    keys = sorted(set(saved) | set(current))
    return [key for key in keys if saved.get(key) != current.get(key)]
