"""Each tuning trial as a nested MLflow run of the run that is active (the one kedro-mlflow opens).

Tracking must never fail a trial: the first error is logged as a warning, and the rest of
the study goes on untracked. Without MLflow, or without an active run, nothing is tracked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import optuna

logger = logging.getLogger(__name__)


def _active_mlflow() -> Any:
    """The ``mlflow`` module when a run is active, else None."""
    try:
        import mlflow  # optional: tuning works without it
    except ImportError:
        return None
    try:
        return mlflow if mlflow.active_run() is not None else None
    except Exception:  # noqa: BLE001 - an unreadable tracking set-up means no tracking, never a failed study
        return None


class TrialTracking:
    """Logs a trial's parameters, its per-epoch validation metrics and its score to a nested run."""

    def __init__(self, mlflow: Any = None) -> None:
        self._mlflow = mlflow if mlflow is not None else _active_mlflow()
        self._stopped = False

    @property
    def active(self) -> bool:
        return self._mlflow is not None and not self._stopped

    def _guarded(self, action: Callable[[], Any]) -> bool:
        """Run one tracking call; on its first failure warn once and stop tracking. True when it ran."""
        if not self.active:
            return False
        try:
            action()
        except Exception as exc:  # noqa: BLE001 - whatever the tracking store raises, the study goes on
            self._stopped = True
            logger.warning(
                "MLflow tracking of the tuning trials stopped (%s: %s); the study goes on untracked",
                type(exc).__name__,
                exc,
            )
            return False
        return True

    @contextmanager
    def trial_run(self, number: int, params: dict[str, Any]) -> Iterator[None]:
        """A nested run around one trial, ended as finished, killed (pruned) or failed."""
        started = self._guarded(
            lambda: self._mlflow.start_run(run_name=f"trial {number}", nested=True, tags={"tuning_trial": str(number)})
        )
        self._guarded(lambda: self._mlflow.log_params(params))
        status = "FAILED"
        try:
            yield
            status = "FINISHED"
        except optuna.TrialPruned:
            status = "KILLED"
            raise
        finally:
            if started:
                self._end(status)

    def _end(self, status: str) -> None:
        # Also after a failure: a nested run left open would receive the parent run's later logs.
        try:
            self._mlflow.end_run(status=status)
        except Exception as exc:  # noqa: BLE001
            if not self._stopped:
                logger.warning("MLflow: could not end a tuning trial's run (%s); tracking stops", exc)
            self._stopped = True

    def log_epoch(self, epoch: int, row: dict[str, float]) -> None:
        numbers = {k: float(v) for k, v in row.items() if k != "epoch" and isinstance(v, int | float)}
        self._guarded(lambda: self._mlflow.log_metrics(numbers, step=epoch))

    def log_result(self, metrics: dict[str, float]) -> None:
        self._guarded(lambda: self._mlflow.log_metrics(metrics))
