"""Tracked runs through a KedroSession in a copy of the project: what MLflow holds, and runs tracking cannot stop.

The copy's own store (``data/09_tracking`` inside it) receives the runs; the user's is never opened.
"""

import json
import logging
import os
import time

import mlflow
import pytest
from kedro.framework.session import KedroSession
from mlflow.tracking import MlflowClient

from leak_detection.datasets import MelFeatureStoreDataset
from leak_detection.tracking.hooks import RUN_ID_KEY
from tests.conftest import synthetic_store

MODES = ("binary", "multiclass")
QUICK = {m: {"training": {"epochs": 2, "batch_size": 64, "patience": 2, "fresh_start": True}} for m in MODES}


def run(project, pipeline, namespaces=None, **runtime_params):
    with KedroSession.create(project_path=project, runtime_params=runtime_params) as session:
        return session.run(pipeline_names=[pipeline], namespaces=namespaces)


def versions(folder):
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


def store_client(project):
    return MlflowClient(f"sqlite:///{project}/data/09_tracking/mlflow.db")


def tracking_warnings(caplog):
    return [r.getMessage() for r in caplog.records if "Experiment tracking is off" in r.getMessage()]


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory):
    store, _ = synthetic_store(files_per_class=8, n_long=4)
    path = tmp_path_factory.mktemp("store") / "tiny.h5"
    MelFeatureStoreDataset(filepath=str(path)).save(store)
    return str(path)


@pytest.fixture(scope="module")
def tracked(project, tiny_store):
    """One tracked run of both modes; the store named by nothing but the project (no server in the environment)."""
    with pytest.MonkeyPatch.context() as env:
        env.delenv("MLFLOW_TRACKING_URI", raising=False)
        env.delenv("LEAK_DETECTION_TRACKING", raising=False)
        run(project, "train_from_store", feature_store=tiny_store, **QUICK)
    client = store_client(project)
    (parent,) = client.search_runs(
        [client.get_experiment_by_name("leak_detection").experiment_id], "tags.mlflow.runName = 'train_from_store'"
    )
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    return client, parent, {child.data.tags["mode"]: child for child in children}


@pytest.fixture
def quiet_environment(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("LEAK_DETECTION_TRACKING", raising=False)
    return monkeypatch


def test_the_run_holds_all_parameters_flattened_and_one_finished_child_run_per_mode(tracked):
    _, parent, children = tracked
    assert parent.info.status == "FINISHED"
    assert parent.data.params["binary.training.epochs"] == "2"
    assert parent.data.params["multiclass.training.batch_size"] == "64"
    assert set(children) == set(MODES)
    for mode, child in children.items():
        assert child.info.run_name == mode and child.info.status == "FINISHED"
        assert child.data.params["training.epochs"] == "2" and child.data.params["mode"] == mode


def test_each_mode_has_learning_curves_at_each_epoch_and_test_metrics_with_their_intervals(tracked):
    client, _, children = tracked
    for child in children.values():
        for curve in ("train_loss", "val_loss", "val_file_leak_f1"):
            assert [m.step for m in client.get_metric_history(child.info.run_id, curve)] == [1, 2]
        metrics = child.data.metrics
        assert metrics["test.f1.ci_low"] <= metrics["test.f1"] <= metrics["test.f1.ci_high"]
        assert 0.0 <= metrics["validation.f1"] <= 1.0


def test_a_mode_run_and_its_model_version_folder_name_each_other(tracked, project):
    client, _, children = tracked
    for mode, child in children.items():
        (version,) = versions(project / f"data/06_models/{mode}/best.pth")
        assert child.data.tags["model_version"] == version
        assert child.data.tags["dataset_fingerprint"]
        metrics = json.loads((project / f"data/08_reporting/{mode}/metrics.json/{version}/metrics.json").read_text())
        assert metrics[RUN_ID_KEY] == child.info.run_id


def test_plots_model_card_onnx_export_and_meta_are_artifacts_kept_inside_the_project(tracked, project):
    client, _, children = tracked
    for child in children.values():
        assert str(project / "data" / "09_tracking" / "artifacts") in child.info.artifact_uri
        names = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert {"model_card.md", "model.onnx", "model_meta.json", "metrics.json", "plots"} <= names
        plots = {a.path for a in client.list_artifacts(child.info.run_id, "plots")}
        assert "plots/learning_curves.png" in plots


def test_a_run_with_an_unreachable_tracking_server_completes_with_one_warning(
    tracked, project, tiny_store, quiet_environment, caplog
):
    quiet_environment.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    before = versions(project / "data/06_models/binary/best.pth")
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="leak_detection.tracking"):
        run(project, "training", namespaces=["binary"], feature_store=tiny_store, **QUICK)
    assert len(versions(project / "data/06_models/binary/best.pth") - before) == 1
    (warning,) = tracking_warnings(caplog)
    assert "127.0.0.1:9" in warning
    assert time.monotonic() - started < 120  # MLflow's own retries would take about four minutes


def test_a_store_that_fails_in_the_middle_of_a_run_warns_once_and_the_run_completes(
    tracked, project, tiny_store, quiet_environment, caplog
):
    def refuse(*args, **kwargs):
        raise ConnectionError("store gone")

    quiet_environment.setattr(MlflowClient, "log_batch", refuse)
    before = versions(project / "data/06_models/binary/best.pth")
    with caplog.at_level(logging.WARNING, logger="leak_detection.tracking"):
        run(project, "training", namespaces=["binary"], feature_store=tiny_store, **QUICK)
    assert len(versions(project / "data/06_models/binary/best.pth") - before) == 1
    (warning,) = tracking_warnings(caplog)
    assert "store gone" in warning
    quiet_environment.undo()
    latest = store_client(project).search_runs(
        [tracked[1].info.experiment_id], "tags.mlflow.runName = 'training'", order_by=["attributes.start_time DESC"]
    )[0]
    assert latest.info.status == "FAILED"  # closed, not left running for the next session to log into


def test_the_switch_leaves_a_run_untracked(tracked, project, tiny_store, quiet_environment):
    quiet_environment.setenv("LEAK_DETECTION_TRACKING", "off")
    client = store_client(project)
    experiment = tracked[1].info.experiment_id
    before = len(client.search_runs([experiment]))
    run(project, "training", namespaces=["binary"], feature_store=tiny_store, **QUICK)
    assert len(client.search_runs([experiment])) == before


def test_a_pipeline_listed_as_untracked_opens_no_store_and_logs_nowhere(
    tracked, project, tiny_store, quiet_environment
):
    local = project / "conf" / "local" / "mlflow.yml"
    local.write_text("tracking:\n  disable_tracking:\n    pipelines: [training]\n")  # merged into base's keys
    client = store_client(project)
    experiment = tracked[1].info.experiment_id
    before = len(client.search_runs([experiment]))
    try:
        run(project, "training", namespaces=["binary"], feature_store=tiny_store, **QUICK)
    finally:
        local.unlink()
    assert len(client.search_runs([experiment])) == before
    assert not (project / "mlflow.db").exists() and not (project / "mlruns").exists()  # MLflow's own defaults


def test_no_run_is_left_active_for_the_next_session_in_the_process(tracked):
    assert mlflow.active_run() is None


def test_a_run_leaves_mlflows_process_settings_as_it_found_them(tracked, project, tiny_store, quiet_environment):
    run(project, "training", namespaces=["binary"], feature_store=tiny_store, **QUICK)
    # MLflow copies the store and experiment it is given into the environment, where the next session
    # in the process would have found them as if the user had named them.
    assert "MLFLOW_TRACKING_URI" not in os.environ and "MLFLOW_EXPERIMENT_ID" not in os.environ
    assert "09_tracking" not in mlflow.get_tracking_uri()
