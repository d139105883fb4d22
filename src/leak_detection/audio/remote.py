"""Recordings kept in object storage (``s3://``, ``gs://``, ``memory://`` ...), read through fsspec.

Field teams keep recordings in a bucket, as Kedro users keep their data; the project
lists them and decodes each one from a file object, so nothing is copied to local disk.
A URL with no protocol or ``file://`` stays on the local path (links, FIFOs and folders
are checked there, which object stores do not have).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import fsspec
from fsspec.utils import get_protocol
from kedro.io import DatasetError

LOCAL_PROTOCOLS = ("file", "local")
# Where each store keeps a listed object's time: local and sftp, S3, GCS, memory and Azure.
_TIME_KEYS = ("mtime", "LastModified", "updated", "created", "last_modified")


@dataclass(frozen=True)
class RemoteFile:
    """One listed object: ``file_id`` relative to the folder listed, its size and modification time."""

    file_id: str
    size_bytes: int
    mtime_ns: int


def is_remote(path: str | os.PathLike) -> bool:
    """True for a URL whose protocol is not the local filesystem's."""
    return isinstance(path, str) and get_protocol(path) not in LOCAL_PROTOCOLS


def filesystem(url: str, storage_options: dict[str, Any]) -> tuple[fsspec.AbstractFileSystem, str]:
    """``(filesystem, path without the protocol)`` of ``url``; an unknown protocol or a missing
    package (``s3fs`` for ``s3://``) is a ``DatasetError`` saying what to install."""
    try:
        return fsspec.core.url_to_fs(url, **storage_options)
    except (ImportError, ValueError) as exc:
        raise DatasetError(
            f"{url}: fsspec cannot open this protocol ({exc}); install its package (for s3://, the "
            'project\'s s3 extra: `pip install -e ".[s3]"`) or give a local path'
        ) from exc


def kind(url: str, storage_options: dict[str, Any]) -> str | None:
    """``"file"``, ``"directory"``, or None when nothing is there; a store out of reach is an error.

    fsspec's ``isdir``/``isfile`` answer False on any failure, so an unreachable bucket
    would pass for an empty one (and a store guarded against overwriting for an absent one).
    """
    fs, path = filesystem(url, storage_options)
    try:
        return fs.info(path).get("type")
    except FileNotFoundError:
        return None
    except Exception as exc:  # noqa: BLE001 - every store raises its own connection errors
        raise unreachable(url, exc) from exc


def unreachable(url: str, exc: BaseException, what: str = "") -> DatasetError:
    """The one-line error for storage that could not be asked (network, endpoint, credentials).

    ``what`` names the thing at ``url`` ("the mel feature store at "), or nothing.
    """
    detail = " ".join(f"{type(exc).__name__}: {exc}".split())
    return DatasetError(f"Cannot reach {what}{url}: {detail}; check the network, the endpoint and the credentials")


def list_remote(url: str, storage_options: dict[str, Any], extensions: Iterable[str]) -> list[RemoteFile]:
    """Every object under the folder ``url`` whose extension is one of ``extensions``, sorted."""
    fs, root = filesystem(url, storage_options)
    if kind(url, storage_options) != "directory":
        raise DatasetError(f"recordings folder {url} does not exist or is not a folder")
    root = root.rstrip("/")
    wanted = {e.lower() for e in extensions}
    files = []
    for full, info in fs.find(root, detail=True).items():
        relative = full[len(root) :].lstrip("/")
        if info.get("type") == "file" and posixpath.splitext(relative)[1].lower() in wanted:
            files.append(RemoteFile(relative, int(info.get("size") or 0), modified_ns(info)))
    return sorted(files, key=lambda f: f.file_id)


def remote_info(url: str, storage_options: dict[str, Any]) -> RemoteFile | None:
    """Size and time of the object at ``url`` (``file_id`` is the URL), or None when there is none."""
    if kind(url, storage_options) != "file":
        return None
    fs, path = filesystem(url, storage_options)
    info = fs.info(path)
    return RemoteFile(url, int(info.get("size") or 0), modified_ns(info))


def join_url(url: str, relative: str) -> str:
    """``url/relative`` for a path already checked to stay inside ``url``."""
    return f"{url.rstrip('/')}/{relative}"


def inside(relative: str) -> str | None:
    """``relative`` normalised, or None when it leaves its folder (``..``, absolute)."""
    normal = posixpath.normpath(relative)
    if posixpath.isabs(normal) or normal == ".." or normal.startswith("../"):
        return None
    return normal


def modified_ns(info: dict[str, Any]) -> int:
    """The object's modification time in ns since the epoch; 0 when the store keeps none.

    The feature store's source fingerprint hashes it, so a file replaced in the bucket
    is extracted again.
    """
    for key in _TIME_KEYS:
        value = info.get(key)
        if isinstance(value, str):
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if isinstance(value, datetime):
            return int(value.timestamp() * 1e9)
        if isinstance(value, int | float):
            return int(value * 1e9)
    return 0
