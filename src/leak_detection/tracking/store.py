"""Where runs are tracked: the project's embedded SQLite store unless a server is named.

The order, first found wins: ``MLFLOW_TRACKING_URI`` in the environment, then
``server.mlflow_tracking_uri`` in ``conf/<env>/mlflow.yml``, then ``PROJECT_STORE``.
A relative SQLite path is taken from the project root, not from the working directory:
SQLAlchemy would otherwise open ``sqlite:///data/...`` under whatever folder ``kedro run``
was started from. A SQLite store keeps its artifacts beside it (``artifacts/``), because
MLflow's default for a database store is ``./mlruns`` under the working directory; a
server keeps its own artifact location.
"""

from __future__ import annotations

import copy
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

PROJECT_STORE = "sqlite:///data/09_tracking/mlflow.db"
SWITCH = "LEAK_DETECTION_TRACKING"
"""``LEAK_DETECTION_TRACKING=off`` switches tracking off for a process (no store is opened)."""


def switched_off(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get(SWITCH, "").strip().lower() in {"off", "0", "false", "no"}


def sqlite_path(uri: str) -> Path | None:
    """The database file a ``sqlite:///`` URI names, or None for any other store."""
    prefix = "sqlite:///"
    return Path(uri[len(prefix) :]) if uri.startswith(prefix) and uri != "sqlite:///:memory:" else None


def resolve_tracking_uri(configured: str | None, project_path: Path, environ: Mapping[str, str] = os.environ) -> str:
    """The tracking URI a run in ``project_path`` uses; a relative SQLite file is made absolute from the project."""
    uri = environ.get("MLFLOW_TRACKING_URI") or configured or PROJECT_STORE
    database = sqlite_path(uri)
    if database is None or database.is_absolute():
        return uri
    return f"sqlite:///{(Path(project_path) / database).resolve()}"


def project_mlflow_conf(conf: Mapping[str, Any], project_path: Path, environ: Mapping[str, str] = os.environ) -> dict:
    """kedro-mlflow's configuration with the tracking URI resolved and a SQLite store's artifacts beside it.

    The database's folder is made here: SQLite does not create it.
    """
    resolved = copy.deepcopy(dict(conf))
    server = resolved.setdefault("server", {}) or {}
    resolved["server"] = server
    server["mlflow_tracking_uri"] = resolve_tracking_uri(server.get("mlflow_tracking_uri"), project_path, environ)
    database = sqlite_path(server["mlflow_tracking_uri"])
    if database is None:
        return resolved
    database.parent.mkdir(parents=True, exist_ok=True)
    experiment = resolved.setdefault("tracking", {}).setdefault("experiment", {})
    create_kwargs = experiment.setdefault("create_experiment_kwargs", {})
    if not create_kwargs.get("artifact_location"):
        create_kwargs["artifact_location"] = str(database.parent / "artifacts")
    return resolved


def unreachable_reason(uri: str, timeout_s: float = 5.0) -> str | None:
    """Why the tracking server at ``uri`` cannot be reached, or None (also for a local store).

    MLflow retries a refused connection for about four minutes (measured: 247 s for
    ``http://127.0.0.1:9``) to ride out rate limits; one quick request first lets an
    unreachable server cost seconds. Any HTTP answer, even an error, means it is there.
    """
    if urlparse(uri).scheme not in {"http", "https"}:
        return None
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout_s):
            return None
    except urllib.error.HTTPError:
        return None
    except (urllib.error.URLError, OSError) as exc:
        return f"{uri} does not answer ({getattr(exc, 'reason', exc)})"
