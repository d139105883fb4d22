"""Hooks that guard a run's writes: one writing run per project, and a safe predictions path."""

from __future__ import annotations

import logging
from collections.abc import Generator
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from leak_detection.runs.predictions_output import FORCE_PARAM, check_predictions_output, is_forced
from leak_detection.runs.run_lock import RunLock, acquire_run_lock, lock_path

logger = logging.getLogger(__name__)

PREDICTIONS_SUFFIX = "inbox_predictions"
TUNING_OUTPUTS = frozenset(
    ("tuning_study", "tuning_report", "tuning_report_md", "tuning_plots", "tuning_trials", "tuned_parameters")
)
"""The ``tune`` pipeline's outputs (per mode): no other pipeline writes them."""


def writes_only_predictions(pipeline) -> bool:
    """True for the ``predict`` pipeline: it may run beside training, which it only reads from."""
    return all(name.endswith(PREDICTIONS_SUFFIX) for name in pipeline.all_outputs())


def writes_only_tuning(pipeline) -> bool:
    """True for the ``tune`` pipeline: several of its runs share one study, so the run lock would stop them.

    Its study file takes its own lock for each write, each trial checkpoints in its own folder, and
    its reports and parameters file are each replaced whole (the last run to finish writes them). It
    reads the feature store: a run that rebuilds the store meanwhile makes its next trial stop with
    the store's "replaced since it was loaded" error, and the study resumes on the next run.
    """
    outputs = pipeline.all_outputs()
    return bool(outputs) and all(name.rsplit(".", 1)[-1] in TUNING_OUTPUTS for name in outputs)


class RunLockHook:
    """Hold the project's run lock (``leak_detection.runs.run_lock``) for a run that writes.

    The hooks are wrappers so that the lock is taken before every other project hook
    (the demo recordings are written in one) and released after every other one (the
    mode comparison is saved in one), also when one of them fails.
    """

    def __init__(self) -> None:
        self._lock: RunLock | None = None

    @hook_impl(wrapper=True)
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline) -> Generator[None, Any, Any]:
        self._release()  # left by a run of this process that was interrupted
        if not (writes_only_predictions(pipeline) or writes_only_tuning(pipeline)):
            self._lock = acquire_run_lock(lock_path(run_params["project_path"]))
        try:
            return (yield)
        except BaseException:
            self._release()
            raise

    @hook_impl(wrapper=True)
    def after_pipeline_run(self) -> Generator[None, Any, Any]:
        try:
            return (yield)
        finally:
            self._release()

    @hook_impl(wrapper=True)
    def on_pipeline_error(self) -> Generator[None, Any, Any]:
        try:
            return (yield)
        finally:
            self._release()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None


class PredictionsOutputHook:
    """Refuse a ``predictions_output`` that would overwrite a model, a recording or a foreign file."""

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline) -> None:
        runtime_params = run_params.get("runtime_params") or {}
        output = runtime_params.get("predictions_output")
        if output is None or not any(n.endswith(PREDICTIONS_SUFFIX) for n in pipeline.all_outputs()):
            return
        recordings = runtime_params.get("inbox_dir") or []
        check_predictions_output(
            Path(output),
            run_params["project_path"],
            force=is_forced(runtime_params.get(FORCE_PARAM, False)),
            recordings=[recordings] if isinstance(recordings, str) else recordings,
        )
