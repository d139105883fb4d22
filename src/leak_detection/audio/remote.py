"""Recordings kept in object storage (``s3://``, ``gs://``, ``memory://`` ...), read through fsspec.

Field teams keep recordings in a bucket, as Kedro users keep their data; the project
lists them and decodes each one from a file object, so nothing is copied to local disk.
A URL with no protocol or ``file://`` stays on the local path (links, FIFOs and folders
are checked there, which object stores do not have).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import fsspec
from fsspec.core import strip_protocol
from fsspec.utils import get_protocol
from kedro.io import DatasetError

LOCAL_PROTOCOLS = ("file", "local")
# Where each store keeps a listed object's time: local and sftp, S3, GCS, memory and Azure.
_TIME_KEYS = ("mtime", "LastModified", "updated", "created", "last_modified")
# What identifies an object's content where no time is kept: S3, GCS, and S3's versions.
_TAG_KEYS = ("ETag", "etag", "generation", "VersionId")
# A local path with ``://`` in a file name has a slash before it, which no protocol has.
_PROTOCOL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
_T = TypeVar("_T")


@dataclass(frozen=True)
class ListedObject:
    """One listed object: ``file_id`` relative to the folder listed, its size and modification time."""

    file_id: str
    size_bytes: int
    mtime_ns: int


def is_remote(path: str | os.PathLike) -> bool:
    """True for a URL (``protocol://...``) whose protocol is not the local filesystem's.

    fsspec alone would take any ``::`` for URL chaining, and a local file named
    ``site::07.wav`` for a remote one.
    """
    if not isinstance(path, str) or "://" not in path:
        return False
    protocol = get_protocol(path)
    return _PROTOCOL.fullmatch(protocol) is not None and protocol not in LOCAL_PROTOCOLS


def location(path: str | os.PathLike) -> Path | str:
    """A local ``Path`` (``file://`` and ``local://`` URLs included), or a remote URL without trailing slashes."""
    if is_remote(path):
        protocol, separator, rest = str(path).partition("://")
        # A bare ``memory://`` keeps its separator: stripped to ``memory:`` it would name a local file.
        return f"{protocol}{separator}{rest.rstrip('/')}"
    text = str(path)
    if "://" in text and get_protocol(text) in LOCAL_PROTOCOLS:
        return Path(strip_protocol(text))
    return Path(path)


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
    info = _info(url, storage_options)
    return None if info is None else info.get("type")


def unreachable(url: str, exc: BaseException, what: str = "") -> DatasetError:
    """The one-line error for storage that could not be asked (network, endpoint, credentials).

    ``what`` names the thing at ``url`` ("the mel feature store at "), or nothing.
    """
    detail = " ".join(f"{type(exc).__name__}: {exc}".split())
    return DatasetError(f"Cannot reach {what}{url}: {detail}; check the network, the endpoint and the credentials")


def list_remote(url: str, storage_options: dict[str, Any], extensions: Iterable[str]) -> list[ListedObject]:
    """Every object under the folder ``url`` whose extension is one of ``extensions``, sorted."""
    fs, root = filesystem(url, storage_options)
    info = _info(url, storage_options)
    if info is None or info.get("type") != "directory":
        raise DatasetError(
            f"recordings folder {url} does not exist or is not a folder (in object storage a prefix "
            "holding no objects does not exist); give another one with `--params recordings_dir=URL`"
        )
    root = root.rstrip("/")
    wanted = {e.lower() for e in extensions}
    files = []
    for full, found in ask(url, lambda: fs.find(root, detail=True), {}).items():
        relative = full[len(root) :].lstrip("/")
        if found.get("type") == "file" and posixpath.splitext(relative)[1].lower() in wanted:
            files.append(ListedObject(relative, int(found.get("size") or 0), modified_ns(found)))
    return sorted(files, key=lambda f: f.file_id)


def remote_info(url: str, storage_options: dict[str, Any]) -> ListedObject | None:
    """Size and time of the object at ``url`` (``file_id`` is the URL), or None when there is none."""
    info = _info(url, storage_options)
    if info is None or info.get("type") != "file":
        return None
    return ListedObject(url, int(info.get("size") or 0), modified_ns(info))


def _info(url: str, storage_options: dict[str, Any]) -> dict[str, Any] | None:
    """What the store says of ``url``, or None when nothing is there."""
    fs, path = filesystem(url, storage_options)
    return ask(url, lambda: fs.info(path))


def ask(
    url: str,
    question: Callable[[], _T],
    missing: _T = None,
    *,
    what: str = "",
    missing_errors: tuple[type[BaseException], ...] = (FileNotFoundError,),
) -> _T:
    """``question()``'s answer, ``missing`` when nothing is there, the one-line error when the store is out of reach.

    fsspec's own ``exists``/``isfile``/``isdir`` answer False on any failure; every look-up
    that must tell "not there" from "could not ask" goes through here instead.
    """
    try:
        return question()
    except missing_errors:
        return missing
    except Exception as exc:  # noqa: BLE001 - every store raises its own connection errors
        raise unreachable(url, exc, what) from exc


def join_url(url: str, relative: str) -> str:
    """``url/relative`` for a path already checked to stay inside ``url``."""
    return f"{url}{relative}" if url.endswith("/") else f"{url}/{relative}"


def inside(relative: str) -> str | None:
    """``relative`` normalised, or None when it leaves its folder (``..``, absolute)."""
    normal = posixpath.normpath(relative)
    if posixpath.isabs(normal) or normal == ".." or normal.startswith("../"):
        return None
    return normal


def modified_ns(info: dict[str, Any]) -> int:
    """The object's modification time in ns since the epoch (a time with no zone is UTC).

    The feature store's source fingerprint hashes it, so a file replaced in the bucket
    is extracted again. A store that keeps no time gets a stable number from the
    object's ETag, generation or version instead (the first 7 bytes of its SHA-256:
    not a time, but it changes when the object does); 0 when it keeps neither.
    """
    for key in _TIME_KEYS:
        value = info.get(key)
        if isinstance(value, str):
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if isinstance(value, datetime):
            # A zone-less time read as local would make the fingerprint depend on the machine's TZ.
            return int((value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp() * 1e9)
        if isinstance(value, int | float):
            return int(value * 1e9)
    tag = next((info[key] for key in _TAG_KEYS if info.get(key) not in (None, "")), None)
    if tag is None:
        return 0
    return int.from_bytes(hashlib.sha256(str(tag).encode()).digest()[:7], "big")
