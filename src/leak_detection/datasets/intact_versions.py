"""``IntactVersionsMixin``: "latest" means the newest version that can be read, with its pair.

Kedro's ``AbstractVersionedDataset`` loads the newest version folder that holds the
file, whatever is in it. A disk that fills up mid-run left ``model_meta.json`` at 0
bytes, or a model without its meta, and every later run (evaluation, ``leak-detect
predict``) failed on that folder until it was cleaned by hand. With this mixin an
unpinned load skips such a version with a warning naming it, and uses the newest one
that is complete. A version pinned with ``--load-versions`` is loaded as asked.
"""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Iterable
from pathlib import PurePath, PurePosixPath
from typing import Any

from kedro.io.core import DatasetError, VersionNotFoundError, get_filepath_str, get_protocol_and_path

logger = logging.getLogger(__name__)


class IntactVersionsMixin:
    """For a subclass of ``AbstractVersionedDataset`` with ``_fs`` and ``_protocol``
    (the kedro-datasets shape) that sets ``self._paired_with = paired_filepaths(...)``.

    A version is intact when this dataset's file and each ``paired_with`` file (other
    versioned datasets saved by the same run, e.g. a model and its meta) exist in that
    version and are readable: not empty, JSON that parses, a PyTorch zip archive with
    its directory at the end.
    """

    _paired_with: tuple[PurePosixPath, ...] = ()

    def _fetch_latest_load_version(self) -> str:
        if self._cached_load_version is not None:
            return self._cached_load_version
        versions = self._get_versions()  # newest first
        if not versions:
            raise VersionNotFoundError(f"No version of {self._url()} has been saved yet.")
        for path in versions:
            version = PurePath(path).parent.name
            problem = self._version_problem(version)
            if problem is None:
                self._cached_load_version = version
                return version
            logger.warning("Skipping version %s of %s: %s; using an older version.", version, self._url(), problem)
        raise VersionNotFoundError(
            f"Did not find any complete version of {self._url()}: every version folder "
            f"lacks a file or holds an unreadable one (see the warnings above)."
        )

    def _get_versions(self) -> list[str]:
        try:
            return super()._get_versions()
        except VersionNotFoundError as exc:
            cause = exc.__cause__
            if cause is None or isinstance(cause, FileNotFoundError):
                raise
            # Kedro reports a storage it cannot list as "no versions"; for a bucket out of
            # reach that would read as "no model trained yet".
            raise DatasetError(
                f"Cannot list the versions of {self._url()}: {type(cause).__name__}: {cause}; check the "
                "network, the endpoint and the credentials"
            ) from cause

    def _url(self) -> str:
        path = str(self._filepath)
        return path if self._protocol == "file" else f"{self._protocol}://{path}"

    def _version_problem(self, version: str) -> str | None:
        # The version this run saves: read back right after its own save, while the
        # run is still writing its pair.
        if version in (self._version.save, self._cached_save_version):
            return None
        # A relative pair sits beside this file: Kedro makes a catalog's `filepath` absolute for the
        # project it runs in, but not an option of our own, which would otherwise follow the cwd.
        paired = (p if p.is_absolute() else PurePosixPath(self._filepath).parent / p for p in self._paired_with)
        for filepath in (self._filepath, *paired):
            path = get_filepath_str(filepath / version / filepath.name, self._protocol)
            problem = file_problem(self._fs, path)
            if problem is not None:
                shown = path if self._protocol == "file" else f"{self._protocol}://{path}"
                return f"{shown} {problem}"
        return None


def paired_filepaths(paired_with: Iterable[str] | None) -> tuple[PurePosixPath, ...]:
    """The ``paired_with`` catalog option as unversioned paths (protocol removed); relative ones sit beside the file."""
    if isinstance(paired_with, str):
        paired_with = [paired_with]
    return tuple(PurePosixPath(get_protocol_and_path(p)[1]) for p in paired_with or ())


def file_problem(fs: Any, path: str) -> str | None:
    """Why the file at ``path`` cannot be loaded, or None; cheap checks only."""
    if not fs.exists(path):
        return "is missing"
    if not fs.size(path):
        return "is empty (0 bytes)"
    if path.endswith(".json"):
        try:
            with fs.open(path, "rb") as handle:
                json.load(handle)
        except ValueError as exc:
            return f"is not valid JSON ({exc})"
    elif path.endswith((".pth", ".pt")):
        with fs.open(path, "rb") as handle:
            if not zipfile.is_zipfile(handle):
                return "is truncated or not a PyTorch file"
    return None
