"""Which project ``leak-detect`` works in: ``--project``, the current folder or one above, or the install's."""

from __future__ import annotations

import importlib
import os
import tomllib
from pathlib import Path

import click

import leak_detection
from leak_detection.audio.remote import location
from leak_detection.console.catalog import kedro_quiet

PROJECT_ENV = "LEAK_DETECTION_PROJECT"


class RecordingLocation(click.ParamType):
    """An existing local file (or folder, with ``dir_okay``; ``file://`` URLs included), or an fsspec URL such as
    ``s3://bucket/week48``, which the reader checks itself."""

    name = "path"

    def __init__(self, dir_okay: bool = True) -> None:
        self._local = click.Path(exists=True, dir_okay=dir_okay, path_type=Path)

    def convert(self, value, param, ctx) -> Path | str:
        found = location(value)
        return found if isinstance(found, str) else self._local.convert(str(found), param, ctx)


def _is_project(path: Path) -> bool:
    pyproject = path / "pyproject.toml"
    if not pyproject.is_file():
        return False
    try:
        kedro = tomllib.loads(pyproject.read_text()).get("tool", {}).get("kedro", {})
    except (OSError, tomllib.TOMLDecodeError):
        return False
    return kedro.get("package_name") == "leak_detection"


def find_project(explicit: str | None) -> Path:
    """The project folder: ``--project``, else the current folder or one above it, else
    the folder this package was installed from (an editable install). Its logging
    configuration is the one Kedro will use."""
    if explicit:
        path = Path(explicit).resolve()
        if not _is_project(path):
            raise click.BadParameter(f"{path} is not the leak-detection project (no matching pyproject.toml)")
        return _with_project_logging(path)
    cwd = Path.cwd().resolve()
    for candidate in (cwd, *cwd.parents, Path(leak_detection.__file__).resolve().parents[2]):
        if _is_project(candidate):
            return _with_project_logging(candidate)
    raise click.UsageError(
        f"cannot find the leak-detection project; run from inside it, pass --project PATH or set {PROJECT_ENV}"
    )


def _with_project_logging(project: Path) -> Path:
    # Kedro looks for conf/logging.yml in the current folder only; from any other folder it
    # logs through rich to stdout, into the results a user redirects.
    logging_file = project / "conf" / "logging.yml"
    if logging_file.is_file():
        os.environ.setdefault("KEDRO_LOGGING_CONFIG", str(logging_file))
    with kedro_quiet():  # Kedro announces the configuration it loads on import, at INFO
        importlib.import_module("kedro.framework.project")
    return project
