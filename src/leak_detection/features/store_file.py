"""The mel feature store as one HDF5 file: load it in whichever layout it has, save it atomically.

``load_store_file`` opens the file, refuses a newer ``format_version`` and reads the ragged
layout (``hdf5_layout``) or the replaced system's fixed-shape one (``legacy_layout``).
``save_store_file`` writes the ragged layout to a temporary file beside the target and
renames it into place, so a failed or interrupted save never leaves a half-written store
and never touches a store already there; the disk space is claimed before HDF5 writes
anything. Every problem is a Kedro ``DatasetError`` naming the path.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from kedro.io.core import DatasetError

from leak_detection.features.hdf5_layout import (
    BUILD_HINT,
    FORMAT_VERSION,
    LoadOptions,
    SaveOptions,
    read_ragged,
    write_ragged,
)
from leak_detection.features.legacy_layout import is_legacy_layout, read_legacy
from leak_detection.features.store import MelFeatureStore
from leak_detection.runs.atomic_files import atomic_path


def load_store_file(path: Path, options: LoadOptions) -> MelFeatureStore:
    """The store in the HDF5 file at ``path``, checked (``MelFeatureStore.validate``)."""
    if not path.is_file():
        raise DatasetError(f"The mel feature store does not exist at {path}; {BUILD_HINT}.")
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise DatasetError(f"Could not open the mel feature store at {path} as HDF5: {exc}") from exc
    with h5:
        version = h5.attrs.get("format_version")
        if version is not None and int(version) > FORMAT_VERSION:
            raise DatasetError(
                f"The mel feature store at {path} has format_version {int(version)}, "
                f"newer than this code reads ({FORMAT_VERSION}); update the code "
                f"or rebuild the store ({BUILD_HINT})."
            )
        if "file_offsets" in h5 or (version is not None and int(version) >= 2):
            parts = read_ragged(h5, path, options)
        elif is_legacy_layout(h5):
            parts = read_legacy(h5, path, options)
        else:
            raise DatasetError(
                f"The mel feature store at {path} has neither the ragged layout "
                f"(/file_offsets with a 4-axis /segments_mel) nor the legacy layout "
                f"(a 5-axis /segments_mel); datasets present: {sorted(h5)}."
            )
    try:
        return MelFeatureStore(**parts)
    except ValueError as exc:
        raise DatasetError(f"The mel feature store at {path} cannot be used: {exc}") from exc


def save_store_file(path: Path, store: MelFeatureStore, options: SaveOptions) -> None:
    """Write ``store`` to ``path`` in the ragged layout, all or nothing."""
    try:
        # The dataclass checks itself on construction; check again in case it was
        # modified since, so a store that would be refused on load is never written.
        store.validate()
    except ValueError as exc:
        raise DatasetError(f"Refusing to save to {path}: {exc}") from exc
    try:
        # "x": never clobber another writer's temporary file.
        with atomic_path(path) as tmp_path, open(tmp_path, "xb+", buffering=0) as raw:
            _reserve(raw, _size_bound(store, options))
            disk = _FirstWriteError(raw)
            with h5py.File(disk, "w") as h5:
                write_ragged(h5, store, options)
            disk.finish()
    except Exception as exc:
        raise DatasetError(_save_failure(path, exc)) from exc


class _FirstWriteError:
    """The temporary store file as h5py's file object, keeping the first write error.

    HDF5 whose write fails (a full disk) keeps the file open and flushes it again when
    the process exits, and that second failure is a segmentation fault. Here HDF5 sees
    every write succeed; the first error is raised once the file is closed. The file's
    end is where HDF5 wrote up to, not the blocks reserved beyond it (``_reserve``).
    """

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self._end = 0
        self.error: OSError | None = None

    def _guarded(self, operation: str, *args: Any) -> Any:
        if self.error is None:
            try:
                return getattr(self._raw, operation)(*args)
            except OSError as exc:
                self.error = exc
        return None

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_END:
            return self._raw.seek(self._end + offset)
        return self._raw.seek(offset, whence)

    def write(self, data: Any) -> int:
        n_bytes = memoryview(data).nbytes
        self._end = max(self._end, self._raw.tell() + n_bytes)
        self._guarded("write", data)
        return n_bytes

    def truncate(self, size: int | None = None) -> int:
        self._end = self._raw.tell() if size is None else size
        self._guarded("truncate", self._end)
        return self._end

    def flush(self) -> None:
        self._guarded("flush")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)

    def finish(self) -> None:
        """Give back the reserved blocks HDF5 did not use; raise the first write error."""
        self._guarded("truncate", self._end)
        if self.error is not None:
            raise self.error


def _size_bound(data: MelFeatureStore, options: SaveOptions) -> int:
    """Bytes the HDF5 file may take: uncompressed arrays, ids, and room for HDF5's own structures."""
    segments = data.segments_mel.shape[0] * int(np.prod(data.segments_mel.shape[1:]))
    ids = sum(len(str(s).encode()) + 16 for s in (*data.file_ids, *data.groups))
    arrays = 8 * (len(data.file_offsets) + 4 * len(data.file_ids))
    raw = segments * np.dtype(options.dtype).itemsize + ids + arrays
    return int(raw * 1.05) + (1 << 18)


def _reserve(raw: Any, nbytes: int) -> None:
    # Claiming the blocks first turns a full disk into an ordinary OSError here,
    # before HDF5 writes anything; HDF5 truncates the file to its real size on close.
    try:
        os.posix_fallocate(raw.fileno(), 0, nbytes)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise
        # A filesystem without fallocate (EOPNOTSUPP): the write errors are still caught.


def _save_failure(path: Path, exc: BaseException) -> str:
    cause: BaseException | None = exc
    while cause is not None and getattr(cause, "errno", None) != errno.ENOSPC:
        cause = cause.__cause__ or cause.__context__
    if cause is not None:
        return (
            f"Failed to save the mel feature store to {path}: no space left on device. Nothing was "
            f"written there (a store already at that path is untouched); free some space on that disk "
            f"or write the store elsewhere (--params feature_store=PATH)."
        )
    return f"Failed to save the mel feature store to {path}: {type(exc).__name__}: {exc}"
