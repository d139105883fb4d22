"""One trial: train with the trial's settings, prune on validation, score the best epoch's validation F1.

The score is validation file-level leak F1, never test: the test files stay unseen until the
tuned model is evaluated, so its test figure is not chosen by the search.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import optuna

from leak_detection.tuning.settings import TuningSettings
from leak_detection.tuning.tracking import TrialTracking

logger = logging.getLogger(__name__)

OnEpoch = Callable[[int, dict[str, float]], None]
TrainFunction = Callable[[dict[str, Any], OnEpoch], dict[str, Any]]
"""Trains with a ``training`` block, calling back after each epoch; returns the model's ``model_meta``."""

SCORE = "best_file_leak_f1"
TRIAL_FACTS = ("best_epoch", "epochs_run", "threshold", "training_seconds", "stopped_early")
"""What each finished trial records from its model's meta, besides its score."""


def pruning_callback(trial: optuna.Trial, tracking: TrialTracking) -> OnEpoch:
    """``on_epoch`` for training: report the best validation F1 so far, and stop a trial the pruner rejects.

    The best so far, not the epoch's own F1: a trial is scored by its best epoch, and one noisy
    epoch of a good trial must not stop it.
    """
    best = float("-inf")

    def on_epoch(epoch: int, row: dict[str, float]) -> None:
        nonlocal best
        best = max(best, float(row["val_file_leak_f1"]))
        trial.report(best, epoch)
        tracking.log_epoch(epoch, row)
        if trial.should_prune():
            raise optuna.TrialPruned(f"best validation F1 {best:.3f} after epoch {epoch} is below the median")

    return on_epoch


@dataclass
class TrialObjective:
    """What ``study.optimize`` calls for each trial."""

    train: TrainFunction
    training: dict[str, Any]
    settings: TuningSettings
    folder: PurePosixPath
    tracking: TrialTracking

    def __call__(self, trial: optuna.Trial) -> float:
        searched = self.settings.search_space.suggest(trial)
        folder = self.folder / f"trial_{trial.number:04d}"
        block = self.settings.trial_training(self.training, searched, str(folder))
        logger.info("trial %d: %s", trial.number, ", ".join(f"{k}={v:.4g}" for k, v in searched.items()))
        with self.tracking.trial_run(trial.number, searched):
            try:
                meta = self.train(block, pruning_callback(trial, self.tracking))
            finally:
                # The study keeps the trial's result; the tuned model is trained again from its settings.
                if not self.settings.keep_trial_checkpoints:
                    shutil.rmtree(folder, ignore_errors=True)
            score = float(meta[SCORE])
            self.tracking.log_result({"objective_val_file_leak_f1": score})
        for key in TRIAL_FACTS:
            if key in meta:
                trial.set_user_attr(key, meta[key])
        return score
