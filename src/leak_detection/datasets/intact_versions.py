"""``IntactVersionsMixin``: "latest" means the newest version that can be read, with its pair.

Kedro's ``AbstractVersionedDataset`` loads the newest version folder that holds the
file, whatever is in it. A disk that fills up mid-run left ``model_meta.json`` at 0
bytes, or a model without its meta, and every later run (evaluation, ``leak-detect
predict``) failed on that folder until it was cleaned by hand. With this mixin an
unpinned load skips such a version with a warning naming it, and uses the newest one
that is complete. A version pinned with ``--load-versions`` is loaded as asked.

A store that cannot be asked (network, endpoint, credentials) is an error naming its URL,
never "no version": fsspec's ``exists`` and ``glob`` answer False and [] on any failure, so
the checks here use ``info`` and reads, which fail loudly.
"""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Iterable
from pathlib import PurePath, PurePosixPath
from typing import Any

import fsspec
from kedro.io.core import DatasetError, VersionNotFoundError, get_filepath_str, get_protocol_and_path

from leak_detection.audio.remote import LOCAL_PROTOCOLS, ask, unreachable

logger = logging.getLogger(__name__)

# What a filesystem raises for nothing at a path (NotADirectoryError: a file where a folder is expected).
MISSING = (FileNotFoundError, NotADirectoryError)


class ListedVersionsMixin:
    """For a subclass of ``AbstractVersionedDataset`` with ``_fs`` and ``_protocol`` (the
    kedro-datasets shape): its versions are listed so that a store out of reach is a
    ``DatasetError`` naming its URL, never an empty list."""

    def _get_versions(self) -> list[str]:

        def listed() -> list[str]:
            paths = list(self._glob_function(str(self._get_versioned_path("*"))))
            if not paths:
                # fsspec's glob answers [] when its listing fails: asking for the folder itself fails loudly.
                self._fs.info(get_filepath_str(self._filepath, self._protocol))
            return paths

        paths = ask(self._url(), listed, [], what="the version folders of ", missing_errors=MISSING)
        # Kedro would keep only the paths for which fs.exists answers True: False for every
        # version of a store out of reach, which would read as "no model trained yet".
        return sorted(paths, reverse=True)

    def _url(self) -> str:
        return display_url(self._protocol, str(self._filepath))


class IntactVersionsMixin(ListedVersionsMixin):
    """For a subclass of ``AbstractVersionedDataset`` with ``_fs`` and ``_protocol``
    (the kedro-datasets shape) that sets ``self._paired_with = paired_filepaths(...)``.

    A version is intact when this dataset's file and each ``paired_with`` file (other
    versioned datasets saved by the same run, e.g. a model and its meta) exist in that
    version and are readable: not empty, JSON that parses, a PyTorch zip archive with
    its directory at the end. A file that cannot be looked up or read is a
    ``DatasetError`` naming its URL (``unreachable``), on load too.
    """

    _paired_with: tuple[PurePosixPath, ...] = ()

    def load(self) -> Any:
        # Resolved first: the version's own errors already name the URL.
        url = display_url(self._protocol, get_filepath_str(self._get_load_path(), self._protocol))
        try:
            return super().load()
        except DatasetError as exc:
            cause = exc.__cause__
            if cause is None or isinstance(cause, (DatasetError, *MISSING, ValueError)):
                raise
            # Kedro's wrapper around what the filesystem raised names neither the URL nor what to check.
            raise unreachable(url, cause) from cause

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
            url = display_url(self._protocol, path)
            problem = file_problem(self._fs, path, url)
            if problem is not None:
                return f"{url} {problem}"
        return None


def display_url(protocol: str, path: str) -> str:
    """``path`` (as fsspec gives it, without its protocol) as a user names it: with its protocol unless local."""
    return path if protocol in LOCAL_PROTOCOLS or "://" in path else f"{protocol}://{path}"


def open_filesystem(protocol: str, path: str, /, **options: Any) -> fsspec.AbstractFileSystem:
    """``fsspec.filesystem(protocol, **options)``; an unknown protocol or a missing package is a
    ``DatasetError`` naming the URL and what to install."""
    try:
        return fsspec.filesystem(protocol, **options)
    except (ImportError, ValueError) as exc:
        # fsspec names the package ("Install s3fs to access S3"); the project's extra installs it.
        extra = ' (the project\'s s3 extra: pip install -e ".[s3]")' if protocol in ("s3", "s3a") else ""
        raise DatasetError(f"Cannot open {display_url(protocol, path)}: {exc}{extra}") from exc


def file_info(fs: Any, path: str, url: str) -> dict[str, Any] | None:
    """fsspec's ``info`` of ``path``, None when nothing is there; a failed look-up is ``unreachable(url)``."""
    return ask(url, lambda: fs.info(path), missing_errors=MISSING)


def read_bytes(fs: Any, path: str, url: str, **open_args: Any) -> bytes | None:
    """The file's bytes, None when there is none; a failed read is ``unreachable(url)``, so a
    store out of reach never passes for a missing or a corrupt file."""

    def read() -> bytes:
        with fs.open(path, **{"mode": "rb", **open_args}) as handle:
            return handle.read()

    return ask(url, read, missing_errors=MISSING)


def paired_filepaths(paired_with: Iterable[str] | None) -> tuple[PurePosixPath, ...]:
    """The ``paired_with`` catalog option as unversioned paths (protocol removed); relative ones sit beside the file."""
    if isinstance(paired_with, str):
        paired_with = [paired_with]
    return tuple(PurePosixPath(get_protocol_and_path(p)[1]) for p in paired_with or ())


def file_problem(fs: Any, path: str, url: str) -> str | None:
    """Why the file at ``path`` cannot be loaded, or None; cheap checks only. A file that
    cannot be looked up or read is ``unreachable(url)``, not a problem of its version."""
    info = file_info(fs, path, url)
    if info is None:
        return "is missing"
    if info.get("type") == "directory":
        return "is a folder, not a file"
    if not info.get("size"):
        return "is empty (0 bytes)"
    # Its info was just read: a file gone now is a failed read like any other.
    return ask(url, lambda: _content_problem(fs, path), missing_errors=())


def _content_problem(fs: Any, path: str) -> str | None:
    if path.endswith(".json"):
        with fs.open(path, "rb") as handle:
            try:
                json.load(handle)
            except ValueError as exc:
                return f"is not valid JSON ({exc})"
    elif path.endswith((".pth", ".pt")):
        with fs.open(path, "rb") as handle:
            # Not zipfile.is_zipfile: it answers False on any OSError, and a connection
            # error must not pass for a truncated model.
            try:
                zipfile.ZipFile(handle).close()
            except (zipfile.BadZipFile, EOFError, ValueError):
                return "is truncated or not a PyTorch file"
    return None
