"""Where runs are tracked: the project's own store whatever the working directory, a server when one is named."""

import http.server
import threading
import time
from pathlib import Path

import pytest

from leak_detection.tracking.store import (
    PROJECT_STORE,
    project_mlflow_conf,
    resolve_tracking_uri,
    switched_off,
    unreachable_reason,
)


def test_the_default_store_is_the_projects_sqlite_database_whatever_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = resolve_tracking_uri(None, Path("/srv/project"), environ={})
    assert uri == "sqlite:////srv/project/data/09_tracking/mlflow.db"
    assert resolve_tracking_uri(PROJECT_STORE, Path("/srv/project"), environ={}) == uri


def test_the_environment_names_a_server_over_the_configuration():
    environ = {"MLFLOW_TRACKING_URI": "http://tracking.example:5000"}
    assert resolve_tracking_uri(PROJECT_STORE, Path("/p"), environ) == "http://tracking.example:5000"
    assert resolve_tracking_uri("https://mlflow.example", Path("/p"), environ={}) == "https://mlflow.example"
    assert resolve_tracking_uri("sqlite:////abs/runs.db", Path("/p"), environ={}) == "sqlite:////abs/runs.db"


def test_a_sqlite_store_keeps_its_artifacts_beside_it_and_a_server_keeps_its_own(tmp_path):
    conf = {"server": {"mlflow_tracking_uri": "sqlite:///tracking/runs.db"}, "tracking": {"run": {"nested": True}}}
    local = project_mlflow_conf(conf, tmp_path, environ={})
    assert local["server"]["mlflow_tracking_uri"] == f"sqlite:///{tmp_path}/tracking/runs.db"
    assert local["tracking"]["experiment"]["create_experiment_kwargs"]["artifact_location"] == str(
        tmp_path / "tracking" / "artifacts"
    )
    assert (tmp_path / "tracking").is_dir()  # SQLite does not make the folder
    assert local["tracking"]["run"] == {"nested": True} and conf["server"]["mlflow_tracking_uri"].startswith(
        "sqlite:///t"
    )
    server = project_mlflow_conf(conf, tmp_path, environ={"MLFLOW_TRACKING_URI": "http://h:5000"})
    assert "artifact_location" not in server["tracking"].get("experiment", {}).get("create_experiment_kwargs", {})


def test_a_refused_connection_is_reported_in_seconds_not_after_mlflows_retries():
    started = time.monotonic()
    reason = unreachable_reason("http://127.0.0.1:9")
    assert reason is not None and "127.0.0.1:9" in reason
    assert time.monotonic() - started < 10
    assert unreachable_reason("sqlite:////tmp/x.db") is None


@pytest.fixture
def server_answering_404():
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_a_server_that_answers_even_with_an_error_is_reachable(server_answering_404):
    assert unreachable_reason(server_answering_404) is None


@pytest.mark.parametrize(("value", "off"), [("off", True), ("0", True), ("False", True), ("on", False), ("", False)])
def test_the_switch_turns_tracking_off_for_a_process(value, off):
    assert switched_off({"LEAK_DETECTION_TRACKING": value}) is off
