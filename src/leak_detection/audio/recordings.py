"""A folder of recordings as the rest of the project sees it: a table, and decoding on demand.

Only regular files are opened: a FIFO blocks forever, a dangling link used to abort a run.
Recordings in object storage are decoded from fsspec file objects (``audio/remote.py``);
storage out of reach while they are read is ``StorageUnreachable``, which stops a run
instead of making every file after it "unreadable".
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import soundfile as sf
from kedro.io import DatasetError

from leak_detection.audio.remote import join_url, unreachable

BLOCK_FRAMES = 1 << 20
"""Frames decoded at a time (about 22 s at 48 kHz)."""


def audio_extensions() -> frozenset[str]:
    return frozenset(f".{fmt.lower()}" for fmt in sf.available_formats())


class StorageUnreachable(DatasetError):
    """The store holding the recordings could not be read (network, endpoint, credentials).

    Unlike a file that does not decode, this is no one file's problem: extraction and
    predict stop with it rather than go on with the files read before the outage. It
    crosses the worker pool, so it must stay a module-level class built from its message.
    """


class StorageReader:
    """An fsspec file object as soundfile reads it, keeping the storage error soundfile would lose.

    soundfile reads a file object through cffi callbacks, where an exception is only
    printed and taken for the end of the file: a recording cut off by the network would
    decode short without an error. This reader keeps the first error and gives no more
    data instead; ``check()`` raises it once soundfile returns.
    """

    def __init__(self, handle: Any, url: str) -> None:
        self._handle = handle
        self.url = url
        self.error: BaseException | None = None

    def read(self, size: int = -1) -> bytes:
        return self._guarded(lambda: self._handle.read(size), b"")

    def readinto(self, buffer: Any) -> int:
        return self._guarded(lambda: self._handle.readinto(buffer), 0)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._guarded(lambda: self._handle.seek(offset, whence), -1)

    def tell(self) -> int:
        return self._guarded(self._handle.tell, -1)

    def close(self) -> None:
        self._handle.close()

    def __repr__(self) -> str:
        # soundfile names the file it could not open by its repr.
        return repr(self.url)

    def check(self) -> None:
        """Raise the error kept while soundfile read, if any."""
        error = self.error
        if error is None:
            return
        if not isinstance(error, Exception):  # an interrupt stays an interrupt
            raise error
        if isinstance(error, FileNotFoundError):  # removed while read: that file's own problem
            raise DatasetError(f"{self.url}: removed from the store while it was read ({error})") from error
        raise StorageUnreachable(*unreachable(self.url, error).args) from error

    def _guarded(self, call: Callable[[], Any], nothing: Any) -> Any:
        if self.error is not None:
            return nothing
        try:
            return call()
        except BaseException as exc:  # noqa: BLE001 - raised into cffi it would be printed and lost
            self.error = exc
            return nothing


def open_recording(location: Path | str, storage_options: dict[str, Any]) -> Path | StorageReader:
    """A local recording's checked path, or a ``StorageReader`` for a URL.

    A URL that cannot be opened is ``StorageUnreachable``, except an object that is not
    there (removed since the listing), which is that file's own problem.
    """
    if isinstance(location, Path):
        return regular_file(location)
    try:
        # fsspec keeps one filesystem per process, so a forked worker opens its own connection.
        handle = fsspec.open(location, "rb", **storage_options).open()
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 - every store raises its own connection errors
        raise StorageUnreachable(*unreachable(location, exc).args) from exc
    return StorageReader(handle, location)


def read_recording(location: Path | str, storage_options: dict[str, Any]) -> tuple[np.ndarray, int]:
    """Decode one recording whole (a local path or an fsspec URL): ``(samples, sample_rate)``."""
    source = open_recording(location, storage_options)
    try:
        samples, rate = _checked(source, lambda: sf.read(source, dtype="float32", always_2d=False))
    finally:
        _close(source)
    return samples, int(rate)


@dataclass
class RecordingCollection:
    """What a recordings folder holds, and a way to decode each file.

    Attributes:
        root: the recordings folder (a ``Path``, or an fsspec URL such as ``s3://bucket/pipes``);
            every ``file_id`` is a POSIX path relative to it.
        table: one row per recording: ``file_id``, ``raw_label``, ``group``,
            ``size_bytes``, ``mtime_ns``, sorted by ``file_id``.
        unusable: ``(file_id, reason)`` for entries that cannot even be listed as a
            recording (for example a manifest row whose file is missing).
        locations: where each file is, when recordings come from several places
            (otherwise ``root / file_id``); a ``str`` location is an fsspec URL.
        storage_options: fsspec's options (credentials, endpoint) for URL locations.
    """

    root: Path | str
    table: pd.DataFrame
    unusable: list[tuple[str, str]] = field(default_factory=list)
    locations: dict[str, Path | str] | None = None
    storage_options: dict[str, Any] = field(default_factory=dict, repr=False)  # credentials stay out of logs

    def path(self, file_id: str) -> Path | str:
        if self.locations is not None:
            return self.locations[file_id]
        return self.root / file_id if isinstance(self.root, Path) else join_url(self.root, file_id)

    def read(self, file_id: str) -> tuple[np.ndarray, int]:
        """Decode one recording whole: ``(samples [n] or [n, channels] float32, sample_rate)``."""
        return read_recording(self.path(file_id), self.storage_options)

    def open_blocks(self, file_id: str, block_frames: int = BLOCK_FRAMES) -> tuple[int, Blocks]:
        """``(sample_rate, blocks)``: decode a recording of any length a block at a time.

        Opening fails at once for a file that is not audio; a file that breaks off
        mid-way fails while its blocks are read. ``blocks.close()`` closes the file
        whether or not it was read (the blocks close it themselves once read to the end).
        """
        source = open_recording(self.path(file_id), self.storage_options)
        try:
            handle = _checked(source, lambda: sf.SoundFile(source))
        except BaseException:
            _close(source)
            raise
        return int(handle.samplerate), Blocks(handle, source, block_frames)

    def __len__(self) -> int:
        return len(self.table)


class Blocks(Iterator[np.ndarray]):
    """A recording's blocks of ``[frames, channels]`` float32, and the open file they come from.

    A generator would close the file only once started, so a recording whose header is
    enough to reject it (an unsupported sample rate) would stay open until collected.
    """

    def __init__(self, handle: sf.SoundFile, source: Path | StorageReader, block_frames: int) -> None:
        self._handle = handle
        self._source = source
        self._block_frames = block_frames
        self._closed = False

    def __next__(self) -> np.ndarray:
        if self._closed:
            raise StopIteration
        try:
            block = _checked(
                self._source, lambda: self._handle.read(self._block_frames, dtype="float32", always_2d=True)
            )
        except BaseException:
            self.close()
            raise
        if block.shape[0] == 0:
            self.close()
            raise StopIteration
        return block

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self._handle.close()
            finally:
                _close(self._source)


def _checked(source: Path | StorageReader, decode: Callable[[], Any]) -> Any:
    """``decode()``'s result, unless storage failed under it: then that error, not soundfile's."""
    try:
        result = decode()
    except Exception:
        if isinstance(source, StorageReader):
            source.check()
        raise
    if isinstance(source, StorageReader):
        source.check()
    return result


def _close(source: Path | StorageReader) -> None:
    if not isinstance(source, Path):
        source.close()


def not_regular_reason(path: Path) -> str | None:
    """Why ``path`` must not be opened as a recording, or None for a regular file.

    Opening a FIFO blocks until someone writes to it, so extraction would hang forever;
    a dangling link used to abort the whole run.
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        if path.is_symlink():
            return f"a link to {os.readlink(path)}, which does not exist"
        return "missing on disk"
    except OSError as exc:
        return f"cannot be inspected: {exc.strerror}"
    if stat.S_ISREG(mode):
        return None
    kind = "a FIFO" if stat.S_ISFIFO(mode) else "a folder" if stat.S_ISDIR(mode) else "a device or socket"
    return f"not a regular file ({kind}): only regular files are read"


def regular_file(path: Path) -> Path:
    """``path``, or ``DatasetError`` when it is not a regular file (see ``not_regular_reason``)."""
    reason = not_regular_reason(path)
    if reason is not None:
        raise DatasetError(f"{path}: {reason}")
    return path


def resolve_inside(root: Path, relative: str) -> Path:
    """``root / relative``, refused when it would leave ``root`` (``..``, absolute, links)."""
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root.resolve()):
        raise DatasetError(f"path {relative!r} resolves to {candidate}, outside the recordings folder {root}: refused")
    return candidate
