"""The Kedro hook of experiment tracking: kedro-mlflow's hook, guarded, and one nested MLflow run per mode.

kedro-mlflow registers its hook by itself; ``settings.py`` turns that registration off
(``DISABLE_HOOKS_FOR_PLUGINS``) and registers ``TrackingHook``, which calls the plugin's
hook inside a guard, so that:

- the store is the project's embedded SQLite database unless a server is named
  (``tracking.store``), whatever folder ``kedro run`` starts from, and it is opened only
  when a tracked pipeline starts (``predict`` is not tracked);
- tracking never fails a run: an unreachable server is found with one quick request
  before MLflow's own retries (minutes), and the first failure of any tracking call is
  logged as one warning, after which tracking is off for the rest of the session and
  the run goes on, writing its outputs as usual;
- each mode's datasets fill that mode's child run (``tracking.mode_runs``), and the
  child run's id is written into the mode's ``metrics.json`` (``mlflow_run_id``);
- no run is left active in the process for a later session (a test, a notebook) to log into.

``LEAK_DETECTION_TRACKING=off`` switches tracking off for a process: no store is opened.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

import mlflow
from kedro.config import MissingConfigException
from kedro.framework.hooks import hook_impl
from kedro_mlflow.config.kedro_mlflow_config import KedroMlflowConfig
from kedro_mlflow.framework.hooks.mlflow_hook import MlflowHook
from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient

from leak_detection.tracking.mode_runs import ModeRuns, mode_and_name
from leak_detection.tracking.store import SWITCH, project_mlflow_conf, switched_off, unreachable_reason

logger = logging.getLogger(__name__)

RUN_ID_KEY = "mlflow_run_id"
"""The key of ``metrics.json`` that names the mode's MLflow run."""


@contextlib.contextmanager
def _no_http_retries() -> Iterator[None]:
    """Closing runs on a server that just failed: one short try instead of MLflow's minutes of retries."""
    names = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(names)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                del os.environ[name]
            else:
                os.environ[name] = value


def _end_active_runs() -> None:
    """Close this thread's active MLflow runs as failed, so none is left for the next session to log into."""
    with _no_http_retries():
        while mlflow.active_run() is not None:
            try:
                mlflow.end_run(RunStatus.to_string(RunStatus.FAILED))
            except Exception:  # the store is gone: MLflow keeps the run on its stack, stop trying
                break


PROCESS_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID")
"""Where MLflow keeps the store, registry and experiment it was last given, for the whole process."""


def _restore_process(saved: dict[str, str | None]) -> None:
    """Leave MLflow's process-wide settings as the run found them.

    kedro-mlflow sets the store and the experiment for the process, and MLflow copies them into
    environment variables: the next session in the process (a test, a notebook opening another
    project) took the first project's store for one the user had named, and a plain
    ``mlflow.start_run()`` asked another store for this one's experiment.
    """
    mlflow.set_tracking_uri(saved["MLFLOW_TRACKING_URI"])  # None unsets the variable too
    mlflow.set_registry_uri(saved["MLFLOW_REGISTRY_URI"])
    mlflow.tracking.fluent._active_experiment_id = None  # MLflow has no public way to forget it
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _pop_run(run_id: str) -> None:
    """Take what is left of ``run_id`` off this thread's stack of active runs.

    With ``run.nested: true`` kedro-mlflow restarts its run before every node, and MLflow 3
    then stacks the same run once more each time where it used to refuse; ending it once
    leaves it active, and the next session in the process (a test, a notebook) logged into it.
    """
    while (active := mlflow.active_run()) is not None and active.info.run_id == run_id:
        mlflow.end_run()


class TrackingHook:
    """kedro-mlflow's ``MlflowHook``, guarded, with one child run per mode (see the module docstring)."""

    def __init__(self) -> None:
        self._plugin = MlflowHook()
        self._mode_runs: ModeRuns | None = None
        self._own_run: str | None = None  # the run this hook started and has not closed yet
        self._off: str | None = None  # why tracking is off for this session
        self._context = None
        self._process: dict[str, str | None] | None = None  # MLflow's process settings before the run

    def _guarded(self, doing: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self._off is not None:
            return None
        try:
            return call(*args, **kwargs)
        except Exception as exc:  # tracking must never fail a run
            self._switch_off(f"{doing} failed: {type(exc).__name__}: {exc}")
            return None

    def _switch_off(self, reason: str) -> None:
        self._off = reason
        logger.warning(
            "Experiment tracking is off for the rest of this session: %s. The run goes on and writes its outputs.",
            reason,
        )
        with _no_http_retries(), contextlib.suppress(Exception):
            if self._mode_runs is not None:
                self._mode_runs.finish(RunStatus.to_string(RunStatus.FAILED))
        self._mode_runs = None
        _end_active_runs()
        self._own_run = None
        self._leave_process()

    @hook_impl
    def after_context_created(self, context) -> None:
        """Read the configuration; the store is opened when a tracked pipeline starts.

        Opening an existing SQLite store costs about a second (MLflow checks its schema) and
        creating one about five: ``predict`` and sessions that never run a pipeline skip both.
        ``kedro mlflow ui`` and notebooks find the configuration as ``context.mlflow`` all the same.
        """
        if self._own_run is not None:  # a run of an earlier session stopped before its pipeline started
            _end_active_runs()
        self._leave_process()
        self._plugin, self._mode_runs, self._own_run, self._off = MlflowHook(), None, None, None
        self._context = context
        if switched_off():
            self._off = f"{SWITCH}=off"
            logger.info("Experiment tracking is off (%s)", self._off)
            return
        conf = self._guarded("reading the MLflow configuration", _use_project_store, context)
        if conf is not None:
            context.__setattr__("mlflow", conf)  # as kedro-mlflow sets it: the context's attributes are frozen

    @hook_impl(trylast=True)
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:
        """After the other hooks' checks, so a run they stop leaves no MLflow run open."""
        if self._off is not None or not _tracked(run_params, self._context.mlflow):
            return
        reason = unreachable_reason(self._context.mlflow.server.mlflow_tracking_uri)
        if reason is not None:
            self._switch_off(f"the tracking server is unreachable: {reason}")
            return
        already_active = mlflow.active_run() is not None
        self._process = {name: os.environ.get(name) for name in PROCESS_VARIABLES}
        self._guarded("opening the tracking store", self._plugin.after_context_created, self._context)
        # kedro-mlflow's metric datasets, if the catalog has any, take their catalog names; it reads nothing else.
        unused = dict.fromkeys(("conf_catalog", "conf_creds", "parameters", "save_version", "load_versions"))
        self._guarded("naming kedro-mlflow's datasets", self._plugin.after_catalog_created, catalog, **unused)
        self._guarded("starting the MLflow run", self._plugin.before_pipeline_run, run_params, pipeline, catalog)
        parent = self._plugin.run_id if self._off is None else None
        self._own_run = None if already_active else parent
        if parent is not None:
            self._mode_runs = self._guarded("opening the modes' runs", self._open_mode_runs, parent, catalog)

    def _open_mode_runs(self, parent: str, catalog) -> ModeRuns:
        client = MlflowClient(self._plugin.mlflow_config.server.mlflow_tracking_uri)
        return ModeRuns(client, parent, catalog.load("parameters"))

    @hook_impl
    def before_node_run(self, node, catalog, inputs: dict[str, Any], is_async: bool) -> None:
        if self._plugin.run_id is not None:  # kedro-mlflow's hook logs into the default store when it has no run
            log_parameters = self._plugin.before_node_run
            self._guarded(f"logging the parameters of {node.name}", log_parameters, node, catalog, inputs, is_async)

    @hook_impl
    def before_dataset_saved(self, dataset_name: str, data: Any) -> None:
        mode, name = mode_and_name(dataset_name)
        if self._mode_runs is not None and name == "evaluation_metrics" and isinstance(data, dict):
            run_id = self._guarded(f"naming the {mode} run", self._mode_runs.run_id, mode)
            if run_id is not None:
                data[RUN_ID_KEY] = run_id

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any) -> None:
        if self._mode_runs is not None:
            self._guarded(f"logging {dataset_name}", self._mode_runs.saved, dataset_name, data)

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str, data: Any) -> None:
        if self._mode_runs is not None:
            self._guarded(f"tagging the run from {dataset_name}", self._mode_runs.loaded, dataset_name, data)

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:
        self._close(RunStatus.FINISHED, self._plugin.after_pipeline_run, run_params, pipeline, catalog)

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params: dict[str, Any], pipeline, catalog) -> None:
        self._close(RunStatus.FAILED, self._plugin.on_pipeline_error, error, run_params, pipeline, catalog)

    def _close(self, status: int, close_plugin_run: Callable[..., None], *args: Any) -> None:
        if self._mode_runs is not None:
            self._guarded("closing the modes' runs", self._mode_runs.finish, RunStatus.to_string(status))
        if self._plugin.run_id is not None:
            self._guarded("closing the MLflow run", close_plugin_run, *args)
        if self._own_run is not None:
            self._guarded("closing the MLflow run", _pop_run, self._own_run)
        self._mode_runs, self._own_run, self._plugin = None, None, MlflowHook()
        self._leave_process()

    def _leave_process(self) -> None:
        if self._process is not None:
            with contextlib.suppress(Exception):  # the run's outputs are written: nothing here may fail it
                _restore_process(self._process)
            self._process = None


def _use_project_store(context) -> KedroMlflowConfig:
    """Put ``mlflow.yml`` with its store resolved (``tracking.store``) where kedro-mlflow reads it.

    An entry set on Kedro's config loader is returned as it is instead of being read again.
    """
    try:
        conf = context.config_loader["mlflow"]
    except MissingConfigException:
        conf = {}
    conf = project_mlflow_conf(conf, context.project_path)
    context.config_loader["mlflow"] = conf
    return KedroMlflowConfig.model_validate(conf)


def _tracked(run_params: dict[str, Any], config: KedroMlflowConfig) -> bool:
    """kedro-mlflow's rule: a run is tracked unless every pipeline it runs is listed as untracked."""
    names = run_params.get("pipeline_names") or [run_params.get("pipeline_name") or "__default__"]
    names = [names] if isinstance(names, str) else names
    return not all(name in config.tracking.disable_tracking.pipelines for name in names)
