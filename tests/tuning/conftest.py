"""A stand-in for training: it reports chosen validation F1s epoch by epoch and makes a checkpoint folder."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import optuna
import pytest

from leak_detection.tuning.objective import TrialObjective
from leak_detection.tuning.settings import TuningSettings
from leak_detection.tuning.tracking import TrialTracking

SPACE = {"dropout": {"low": 0.0, "high": 0.5}}


class FakeTraining:
    """Trains for ``epochs``; epoch e of a trial with dropout d scores (1 - d) * e / epochs."""

    def __init__(self, epochs: int = 3) -> None:
        self.epochs = epochs
        self.blocks: list[dict[str, Any]] = []
        self.epochs_seen: list[int] = []

    def __call__(self, block: dict[str, Any], on_epoch) -> dict[str, Any]:
        self.blocks.append(block)
        Path(block["checkpoint_dir"]).mkdir(parents=True)
        (Path(block["checkpoint_dir"]) / "last.pth").write_bytes(b"checkpoint")
        for epoch in range(1, self.epochs + 1):
            self.epochs_seen.append(epoch)
            on_epoch(epoch, {"epoch": epoch, "val_file_leak_f1": (1 - block["dropout"]) * epoch / self.epochs})
        score = 1 - block["dropout"]
        return {"best_file_leak_f1": score, "best_epoch": self.epochs, "epochs_run": self.epochs, "threshold": 0.5}


def make_objective(tmp_path, train, tracking=None, **tuning) -> TrialObjective:
    settings = TuningSettings.from_params({"search_space": SPACE, **tuning})
    return TrialObjective(
        train, {"epochs": 3}, settings, PurePosixPath(tmp_path) / "trials", tracking or TrialTracking()
    )


def study_with(*dropouts: float, n_startup_trials: int = 2) -> optuna.Study:
    """A study whose next trials take these dropouts, pruned by the median rule from the first epoch."""
    study = optuna.create_study(
        direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=n_startup_trials, n_warmup_steps=0)
    )
    for dropout in dropouts:
        study.enqueue_trial({"dropout": dropout})
    return study


@pytest.fixture
def fake_training():
    return FakeTraining()
