"""The project's own catalog for ``leak-detect``: models are found where ``kedro run`` saves them.

A model moved to object storage in ``conf/local/catalog.yml`` is listed and explained from there too.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from kedro.io import DataCatalog
from kedro.io.core import DatasetError, Version, VersionNotFoundError

from leak_detection.datasets.intact_versions import MISSING


@contextlib.contextmanager
def kedro_quiet() -> Iterator[None]:
    """Kedro's and its plugins' INFO lines would bury the results; ``--verbose`` keeps them."""
    context = click.get_current_context(silent=True)
    verbose = ((context and context.find_root().obj) or {}).get("verbose")
    logging.disable(logging.NOTSET if verbose else logging.INFO)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def project_catalog(project: Path) -> DataCatalog:
    """The catalog as ``kedro run`` resolves it in ``project`` (``conf/local`` included); no pipeline runs."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    with kedro_quiet(), KedroSession.create(project_path=project) as session:
        return session.load_context().catalog


def load_version(catalog: DataCatalog, name: str, version: str) -> Any | None:
    """``name`` at ``version``, or None when that version is missing or its content unreadable
    (an empty or corrupt meta); a store that cannot be reached is an error, never "no such version"."""
    try:
        return catalog.get(name, version=Version(version, None)).load()
    except (DatasetError, OSError, ValueError) as exc:
        if isinstance(exc, VersionNotFoundError) or isinstance(_root_cause(exc), (*MISSING, ValueError)):
            return None
        raise


def _root_cause(exc: BaseException) -> BaseException:
    # Kedro wraps what the dataset raised: the innermost cause says what went wrong.
    seen = {id(exc)}
    while exc.__cause__ is not None and id(exc.__cause__) not in seen:
        exc = exc.__cause__
        seen.add(id(exc))
    return exc


def default_version(catalog: DataCatalog, mode: str) -> str | None:
    """The version ``predict`` loads when none is named: the newest intact pair of weights and meta."""
    try:
        return catalog.get(f"{mode}.model").resolve_load_version()
    except VersionNotFoundError:  # not a storage out of reach: that must not read as "no model yet"
        return None


def saved_versions(catalog: DataCatalog, mode: str) -> list[str]:
    """The mode's model versions (those with a meta), newest first."""
    try:
        return sorted(catalog.get(f"{mode}.model_meta").list_versions(full_path=False), reverse=True)
    except VersionNotFoundError:
        return []
