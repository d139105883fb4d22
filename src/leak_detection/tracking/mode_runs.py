"""One nested MLflow run per mode under the Kedro run's MLflow run, filled from the datasets the run saves.

``train_both`` trains, evaluates and exports both modes in one Kedro run. kedro-mlflow
opens one run for it (named after the pipeline, holding every parameter); each mode then
gets a child run (named ``binary`` or ``multiclass``) so the two models' learning curves,
test metrics and artifacts can be compared side by side, as runs of a tuner would be.
The child runs are written through ``MlflowClient`` with explicit run ids, never as the
active run, so kedro-mlflow's own run stays the active one for its parameters.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, RunStatus
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from leak_detection.tracking.records import epoch_metrics, evaluation_scores, mode_params, model_tags

METRIC_BATCH, PARAM_BATCH = 1000, 100  # the most MLflow takes in one log_batch call


def _log_metrics(client: MlflowClient, run_id: str, metrics: list[Metric]) -> None:
    for start in range(0, len(metrics), METRIC_BATCH):
        client.log_batch(run_id, metrics=metrics[start : start + METRIC_BATCH])


def _log_training_history(client: MlflowClient, run_id: str, history) -> None:
    _log_metrics(client, run_id, epoch_metrics(history))


def _log_adaptation_history(client: MlflowClient, run_id: str, history) -> None:
    _log_metrics(client, run_id, epoch_metrics(history, prefix="adaptation.", step_column=None))


def _log_evaluation(client: MlflowClient, run_id: str, metrics: Mapping[str, Any]) -> None:
    now = int(time.time() * 1000)
    _log_metrics(client, run_id, [Metric(key, value, now, 0) for key, value in evaluation_scores(metrics).items()])
    for key, value in model_tags(metrics).items():
        client.set_tag(run_id, key, value)
    client.log_dict(run_id, dict(metrics), "metrics.json")


def _log_plots(client: MlflowClient, run_id: str, figures) -> None:
    for name, figure in figures.items() if isinstance(figures, Mapping) else {"evaluation.png": figures}.items():
        client.log_figure(run_id, figure, f"plots/{name}")


def _log_model_card(client: MlflowClient, run_id: str, card: str) -> None:
    client.log_text(run_id, card, "model_card.md")


def _log_onnx(client: MlflowClient, run_id: str, onnx_bytes: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.onnx"
        path.write_bytes(onnx_bytes)
        client.log_artifact(run_id, str(path))


def _log_model_meta(client: MlflowClient, run_id: str, meta: Mapping[str, Any]) -> None:
    for key, value in model_tags(meta).items():
        client.set_tag(run_id, key, value)
    client.log_dict(run_id, dict(meta), "model_meta.json")


SAVED: dict[str, Callable[[MlflowClient, str, Any], None]] = {
    "training_history": _log_training_history,
    "adaptation_history": _log_adaptation_history,
    "evaluation_metrics": _log_evaluation,
    "evaluation_plots": _log_plots,
    "model_card": _log_model_card,
    "onnx_model": _log_onnx,
    "model_meta": _log_model_meta,
    "adapted_model_meta": _log_model_meta,
}
"""What each per-mode dataset adds to its mode's run when the run saves it (``<mode>.<name>``)."""


def mode_and_name(dataset_name: str) -> tuple[str, str]:
    """``binary.training_history`` as ``("binary", "training_history")``: the namespace is the mode."""
    mode, _, name = dataset_name.partition(".")
    return mode, name


class ModeRuns:
    """The child runs of one Kedro run, made when a mode first saves something they record."""

    def __init__(self, client: MlflowClient, parent_run_id: str, parameters: Mapping[str, Any]) -> None:
        self._client = client
        self._parent = client.get_run(parent_run_id).info
        self._parameters = parameters
        self._runs: dict[str, str] = {}
        self._named: set[str] = set()  # modes whose run is tagged with its model already

    def run_id(self, mode: str) -> str:
        if mode not in self._runs:
            tags = {MLFLOW_PARENT_RUN_ID: self._parent.run_id, "mode": mode}
            run = self._client.create_run(self._parent.experiment_id, tags=tags, run_name=mode)
            params = mode_params(self._parameters.get(mode) or {})
            for start in range(0, len(params), PARAM_BATCH):
                self._client.log_batch(run.info.run_id, params=params[start : start + PARAM_BATCH])
            self._runs[mode] = run.info.run_id
        return self._runs[mode]

    def saved(self, dataset_name: str, data: Any) -> None:
        mode, name = mode_and_name(dataset_name)
        if name in SAVED:
            SAVED[name](self._client, self.run_id(mode), data)
            if name.endswith("model_meta"):
                self._named.add(mode)

    def loaded(self, dataset_name: str, data: Any) -> None:
        """A model evaluated or exported without being trained in this run is named by the meta it loads first.

        A meta the run saves later (an adapted model) names it again.
        """
        mode, name = mode_and_name(dataset_name)
        if name.endswith("model_meta") and name in SAVED and mode not in self._named:
            _log_model_meta(self._client, self.run_id(mode), data)
            self._named.add(mode)

    def finish(self, status: str = RunStatus.to_string(RunStatus.FINISHED)) -> None:
        for run_id in self._runs.values():
            self._client.set_terminated(run_id, status)
        self._runs.clear()
