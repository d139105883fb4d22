"""``RemoteFile``: a remote mel feature store (on any filesystem fsspec reaches, e.g. S3)
read and written through a local copy of it in a temporary folder.

``MelFeatureStoreDataset`` goes through this for a remote filepath, because:

- h5py needs a real file: a remote store is downloaded before it is read, and written
  locally before it is uploaded.
- One download per session: the copy is kept with the remote object's signature (size
  and ETag or modification time) and read again while the object is unchanged; a
  successful upload keeps the file it uploaded as that copy.
- An unreachable store must never read as absent: ``info`` tells a missing object
  (None) from one that cannot be looked up (network, endpoint, credentials), which is a
  ``DatasetError``, so an outage never passes for a store still to be built.
- Only the process that downloaded a copy removes it: a forked worker inherits the
  copy's finalizer, and a worker ending must not pull the file from under its parent.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import threading
import weakref
from pathlib import Path, PurePosixPath
from typing import Any

import fsspec
from kedro.io.core import DatasetError

from leak_detection.audio.remote import ask

TEMP_PREFIX = "leak-detection-store-"
# Where filesystems say that an object changed: S3 (ETag, VersionId, LastModified), GCS
# (generation, updated), Azure (etag, last_modified), local and SFTP (mtime), memory (created).
_CHANGE_KEYS = (
    "ETag",
    "etag",
    "VersionId",
    "generation",
    "LastModified",
    "last_modified",
    "updated",
    "mtime",
    "created",
)


class RemoteFile:
    """The object at ``path`` on the fsspec filesystem ``fs``, named ``url`` in messages,
    with the local copy of it that this process keeps: one at a time, shared by threads,
    and none in a pickled or deep-copied ``RemoteFile``, which downloads its own.

    A copy is removed once neither this ``RemoteFile`` (which lets go of it when the
    object changes, on ``release``, or when it is garbage-collected) nor anything the
    copy was made to outlive (``LocalCopy.outlive``) is in use; at the latest when
    Python exits.
    """

    def __init__(self, fs: fsspec.AbstractFileSystem, path: str, url: str) -> None:
        self.fs = fs
        self.path = path
        self.url = url
        self._local: LocalCopy | None = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        # A pickled or deep-copied dataset (a ParallelRunner worker, Kedro's _copy) keeps
        # no share of this one's local copy: what it downloads is its own to remove.
        state = self.__dict__.copy()
        state["_local"] = None
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def info(self) -> dict[str, Any] | None:
        """The remote object's fsspec ``info``, None when there is none; a failed look-up
        (network, endpoint, credentials) is a ``DatasetError``, never None."""
        # A listing cached earlier would hide an object replaced or removed since.
        self.fs.invalidate_cache(self.path)
        return ask(self.url, lambda: self.fs.info(self.path), what="the mel feature store at ")

    def is_file(self) -> bool:
        """Whether the remote object exists and is a file; a ``DatasetError`` when it
        cannot be reached."""
        info = self.info()
        return info is not None and info.get("type") == "file"

    def local_copy(self, not_found_message: str) -> LocalCopy:
        """A local copy of the remote object: the one kept while the object is unchanged
        since it was made, else a new download.

        Raises:
            DatasetError: With ``not_found_message`` when there is no remote object; when
                it is not a file, cannot be reached or cannot be downloaded.
        """
        info = self.info()
        if info is None:
            raise DatasetError(not_found_message)
        kind = info.get("type")
        if kind != "file":
            what = "a folder" if kind == "directory" else f"not a file (fsspec type {kind!r})"
            raise DatasetError(
                f"{self.url} is {what}, not a mel feature store file; give the URL of "
                f"the store's HDF5 file (e.g. .../mel_features.h5)."
            )
        current = signature(info)
        # One download for threads loading the store at the same time (ThreadRunner).
        with self._lock:
            local = self._local
            if local is None or local.signature is None or local.signature != current or not local.path.is_file():
                local = self.download(current)
                self._local = local
            return local

    def download(self, current: tuple[Any, ...] | None) -> LocalCopy:
        """A new local copy of the remote object, whose signature is ``current``."""
        local = self.new_copy(current)
        try:
            self.fs.get_file(self.path, str(local.path))
        except Exception as exc:
            local.remove()
            raise DatasetError(
                f"Could not download the mel feature store from {self.url} to a temporary "
                f"local copy in {local.path.parent} (TMPDIR): {type(exc).__name__}: {exc}"
            ) from exc
        except BaseException:
            local.remove()
            raise
        return local

    def new_copy(self, current: tuple[Any, ...] | None = None) -> LocalCopy:
        """An empty ``LocalCopy`` named as the remote object, to download or to write to."""
        return LocalCopy(PurePosixPath(self.path).name, current)

    def upload(self, local: LocalCopy) -> None:
        """Uploads ``local`` to the remote object and keeps it as the copy of the object
        now there; the caller removes it when this fails."""
        try:
            self.fs.put_file(str(local.path), self.path)
        except Exception as exc:
            raise DatasetError(
                f"Failed to upload the mel feature store to {self.url}: {type(exc).__name__}: {exc}. "
                f"An object store publishes an object only once its upload completes, so a store "
                f"already there is untouched."
            ) from exc
        finally:
            # A listing cached before the upload would hide the new object from info.
            self.fs.invalidate_cache(self.path)
        # The file just uploaded is the remote object now: the loads that follow the save
        # read this file instead of downloading it again.
        local.signature = self._uploaded_signature(local.path)
        with self._lock:
            self._local = local if local.signature is not None else None

    def discard(self, local: LocalCopy) -> None:
        """Lets go of ``local`` if it is the copy kept for the next load."""
        with self._lock:
            if self._local is local:
                self._local = None

    def release(self) -> None:
        """Lets go of the kept copy: its folder goes once nothing else holds it."""
        with self._lock:
            self._local = None

    def _uploaded_signature(self, local: Path) -> tuple[Any, ...] | None:
        try:
            info = self.fs.info(self.path)
        except Exception:
            # The store is saved; without the object's signature the next load downloads it.
            return None
        # An object another writer uploaded in between must not pass for this file.
        if info.get("size") != local.stat().st_size:
            return None
        return signature(info)


class LocalCopy:
    """A remote object's file in a temporary folder of its own, with the remote object's
    ``signature`` when they were the same (None: not to be reused). The folder is
    removed when the copy is garbage-collected, at the latest when Python exits."""

    def __init__(self, name: str, signature: tuple[Any, ...] | None = None) -> None:
        folder = tempfile.mkdtemp(prefix=TEMP_PREFIX)
        self.path = Path(folder) / name
        self.signature = signature
        self.remove = weakref.finalize(self, remove_local_copy, folder, os.getpid())

    def outlive(self, holder: object) -> None:
        """Keeps this copy until ``holder`` is garbage-collected, whoever else lets go of it."""
        weakref.finalize(holder, _hold, self)


def _hold(local: LocalCopy) -> None:
    """Nothing to do: a finalizer holding ``local`` keeps it until its referent is collected."""


def signature(info: dict[str, Any]) -> tuple[Any, ...] | None:
    """What tells this version of a remote object from another; None when its filesystem
    reports nothing that changes with the object (the size alone proves nothing)."""
    changes = tuple((key, info[key]) for key in _CHANGE_KEYS if info.get(key) is not None)
    return (info.get("size"), *changes) if changes else None


def remove_local_copy(tmpdir: str, owner_pid: int) -> None:
    """Removes the folder ``tmpdir`` of a local copy, if this process is ``owner_pid``."""
    # A forked worker inherits the finalizer; only the process that made the copy
    # removes it, or a worker ending would pull the file from under its parent.
    if os.getpid() == owner_pid:
        shutil.rmtree(tmpdir, ignore_errors=True)


def with_tmpdir_hint(message: str, exc: BaseException) -> str:
    """``message``, from a failed write to a local copy, saying where to make room when
    ``exc`` was caused by a full disk."""
    cause: BaseException | None = exc
    while cause is not None and getattr(cause, "errno", None) != errno.ENOSPC:
        cause = cause.__cause__ or cause.__context__
    if cause is None:
        return message
    return (
        f"{message} The store is written to a temporary local copy in {tempfile.gettempdir()} "
        f"before its upload: point TMPDIR at a disk with room for it."
    )
