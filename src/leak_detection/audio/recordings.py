"""A folder of recordings as the rest of the project sees it: a table, and decoding on demand.

Only regular files are opened: a FIFO blocks forever, a dangling link used to abort a run.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

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
        root: the recordings folder; every ``file_id`` is a POSIX path relative to it.
        table: one row per recording: ``file_id``, ``raw_label``, ``group``,
            ``size_bytes``, ``mtime_ns``, sorted by ``file_id``.
        unusable: ``(file_id, reason)`` for entries that cannot even be listed as a
            recording (for example a manifest row whose file is missing).
        locations: where each file is, when recordings come from several places
            (otherwise ``root / file_id``).
    """

    root: Path
    table: pd.DataFrame
    unusable: list[tuple[str, str]] = field(default_factory=list)
    locations: dict[str, Path] | None = None

    def path(self, file_id: str) -> Path:
        return self.locations[file_id] if self.locations is not None else self.root / file_id

    def read(self, file_id: str) -> tuple[np.ndarray, int]:
        """Decode one recording whole: ``(samples [n] or [n, channels] float32, sample_rate)``."""
        samples, rate = sf.read(regular_file(self.path(file_id)), dtype="float32", always_2d=False)
        return samples, int(rate)

    def open_blocks(self, file_id: str, block_frames: int = BLOCK_FRAMES) -> tuple[int, Iterator[np.ndarray]]:
        """``(sample_rate, blocks)``: decode a recording of any length a block at a time.

        Opening fails at once for a file that is not audio; a file that breaks off
        mid-way fails while its blocks are read.
        """
        handle = sf.SoundFile(regular_file(self.path(file_id)))

        def blocks() -> Iterator[np.ndarray]:
            with handle:
                while True:
                    block = handle.read(block_frames, dtype="float32", always_2d=True)
                    if block.shape[0] == 0:
                        return
                    yield block

        return int(handle.samplerate), blocks()

    def __len__(self) -> int:
        return len(self.table)


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
