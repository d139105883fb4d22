"""A folder of recordings as the rest of the project sees it: a table, and decoding on demand.

Only regular files are opened: a FIFO blocks forever, a dangling link used to abort a run.
Recordings in object storage are decoded from fsspec file objects (``audio/remote.py``).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import soundfile as sf
from kedro.io import DatasetError

BLOCK_FRAMES = 1 << 20
"""Frames decoded at a time (about 22 s at 48 kHz)."""


def audio_extensions() -> frozenset[str]:
    return frozenset(f".{fmt.lower()}" for fmt in sf.available_formats())


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
    storage_options: dict[str, Any] = field(default_factory=dict)

    def path(self, file_id: str) -> Path | str:
        if self.locations is not None:
            return self.locations[file_id]
        return self.root / file_id if isinstance(self.root, Path) else f"{self.root.rstrip('/')}/{file_id}"

    def read(self, file_id: str) -> tuple[np.ndarray, int]:
        """Decode one recording whole: ``(samples [n] or [n, channels] float32, sample_rate)``."""
        source = self._open(file_id)
        try:
            samples, rate = sf.read(source, dtype="float32", always_2d=False)
        finally:
            _close(source)
        return samples, int(rate)

    def open_blocks(self, file_id: str, block_frames: int = BLOCK_FRAMES) -> tuple[int, Iterator[np.ndarray]]:
        """``(sample_rate, blocks)``: decode a recording of any length a block at a time.

        Opening fails at once for a file that is not audio; a file that breaks off
        mid-way fails while its blocks are read.
        """
        source = self._open(file_id)
        try:
            handle = sf.SoundFile(source)
        except Exception:
            _close(source)
            raise

        def blocks() -> Iterator[np.ndarray]:
            try:
                with handle:
                    while True:
                        block = handle.read(block_frames, dtype="float32", always_2d=True)
                        if block.shape[0] == 0:
                            return
                        yield block
            finally:
                _close(source)

        return int(handle.samplerate), blocks()

    def _open(self, file_id: str) -> Path | Any:
        """A local recording's checked path, or an open file object for a URL."""
        location = self.path(file_id)
        if isinstance(location, Path):
            return regular_file(location)
        # fsspec keeps one filesystem per process, so a forked worker opens its own connection.
        return fsspec.open(location, "rb", **self.storage_options).open()

    def __len__(self) -> int:
        return len(self.table)


def _close(source: Path | Any) -> None:
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
