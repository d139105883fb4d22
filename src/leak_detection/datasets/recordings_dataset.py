"""``RecordingsDataset`` reads a folder of labelled pipe recordings lazily.

A folder of field recordings can hold hours of audio, so loading returns a
``RecordingCollection``: a table of what is there (file, label, group, size, mtime)
and a ``read`` method that decodes one file on demand, in the spirit of
``PartitionedDataset``'s lazy loaders. Nodes decide what to read and never touch
paths themselves.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd
import soundfile as sf
from kedro.io import AbstractDataset, DatasetError

logger = logging.getLogger(__name__)

MANIFEST_COLUMNS = ("path", "label", "group")
BLOCK_FRAMES = 1 << 20
"""Frames decoded at a time (about 22 s at 48 kHz)."""
DEFAULT_MANIFEST_NAME = "manifest.csv"


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
        samples, rate = sf.read(self.path(file_id), dtype="float32", always_2d=False)
        return samples, int(rate)

    def open_blocks(self, file_id: str, block_frames: int = BLOCK_FRAMES) -> tuple[int, Iterator[np.ndarray]]:
        """``(sample_rate, blocks)``: decode a recording of any length a block at a time.

        Opening fails at once for a file that is not audio; a file that breaks off
        mid-way fails while its blocks are read.
        """
        handle = sf.SoundFile(self.path(file_id))

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


def resolve_inside(root: Path, relative: str) -> Path:
    """``root / relative``, refused when it would leave ``root`` (``..``, absolute, links)."""
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root.resolve()):
        raise DatasetError(f"path {relative!r} resolves to {candidate}, outside the recordings folder {root}: refused")
    return candidate


class RecordingsDataset(AbstractDataset[None, RecordingCollection]):
    """A read-only folder of recordings laid out ``<path>/<LABEL>/**/<file>``.

    Any format soundfile reads is accepted (WAV, FLAC, OGG, ...; extensions in any
    case). The top-level folder name is the raw label. An optional manifest CSV with
    columns ``path,label,group`` (``label`` and ``group`` may be blank or absent)
    overrides folder labels and gives groups (site, sensor, source recording); a
    recording without a group is its own group. Without an explicit ``manifest``,
    ``<path>/manifest.csv`` is used when present. Paths that leave the folder are
    refused.

    Examples:
        ```yaml
        recordings:
          type: leak_detection.datasets.RecordingsDataset
          path: ${runtime_params:recordings_dir, data/01_raw/demo}
          manifest: ${runtime_params:recordings_manifest, null}
        ```

        >>> from leak_detection.datasets import RecordingsDataset
        >>> recordings = RecordingsDataset(path="data/01_raw/demo").load()
        >>> samples, rate = recordings.read(recordings.table.file_id[0])
    """

    def __init__(
        self,
        *,
        path: str | os.PathLike,
        manifest: str | os.PathLike | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._path = Path(path)
        self._manifest = Path(manifest) if manifest else None
        self.metadata = metadata

    @property
    def path(self) -> Path:
        return self._path

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "manifest": str(self._manifest) if self._manifest else None}

    def _exists(self) -> bool:
        return self._path.is_dir()

    def save(self, data: None) -> None:
        raise DatasetError(f"{type(self).__name__} is read-only: recordings at {self._path} are never written")

    def load(self) -> RecordingCollection:
        root = self._path
        if not root.is_dir():
            raise DatasetError(
                f"recordings folder {root} does not exist or is not a folder; give another "
                "one with `--params recordings_dir=PATH`"
            )
        rows = {fid: {"file_id": fid, "raw_label": label, "group": ""} for fid, label in self._scan(root)}
        unusable: list[tuple[str, str]] = []
        manifest = self._manifest_path(root)
        if manifest is not None:
            self._apply_manifest(root, manifest, rows, unusable)
        for fid in [fid for fid, row in rows.items() if not row["raw_label"]]:
            unusable.append((fid, "no label: not inside a label folder and no label in the manifest"))
            del rows[fid]
        table = pd.DataFrame(
            sorted(rows.values(), key=lambda r: r["file_id"]),
            columns=["file_id", "raw_label", "group"],
        )
        table["group"] = table["group"].where(table["group"] != "", table["file_id"])
        stats = [(root / fid).stat() for fid in table["file_id"]]
        table["size_bytes"] = np.array([s.st_size for s in stats], dtype=np.int64)
        table["mtime_ns"] = np.array([s.st_mtime_ns for s in stats], dtype=np.int64)
        logger.debug(
            "Found %d recordings in %s%s",
            len(table),
            root,
            f" (manifest {manifest})" if manifest else "",
        )
        return RecordingCollection(root=root, table=table, unusable=unusable)

    def _manifest_path(self, root: Path) -> Path | None:
        if self._manifest is not None:
            if not self._manifest.is_file():
                raise DatasetError(f"recordings manifest {self._manifest} does not exist")
            return self._manifest
        default = root / DEFAULT_MANIFEST_NAME
        return default if default.is_file() else None

    @staticmethod
    def _scan(root: Path) -> list[tuple[str, str]]:
        """``(file_id, folder label)`` of every audio file; links to folders are not followed."""
        extensions = audio_extensions()
        found = []
        root_resolved = root.resolve()
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames.sort()
            for name in sorted(filenames):
                if Path(name).suffix.lower() not in extensions:
                    continue
                full = Path(dirpath) / name
                if not full.resolve().is_relative_to(root_resolved):
                    logger.warning("Skipping %s: it links outside the recordings folder", full)
                    continue
                rel = PurePosixPath(full.relative_to(root).as_posix())
                label = rel.parts[0] if len(rel.parts) > 1 else ""
                found.append((str(rel), label))
        return found

    @staticmethod
    def _apply_manifest(
        root: Path, manifest: Path, rows: dict[str, dict[str, str]], unusable: list[tuple[str, str]]
    ) -> None:
        try:
            entries = pd.read_csv(manifest, dtype=str, keep_default_na=False)
        except Exception as exc:  # noqa: BLE001 - any parse failure is the same user problem
            raise DatasetError(f"recordings manifest {manifest} cannot be read: {exc}") from exc
        if "path" not in entries.columns:
            raise DatasetError(
                f"recordings manifest {manifest} has columns {list(entries.columns)}; "
                f"expected {list(MANIFEST_COLUMNS)} (label and group optional)"
            )
        root_resolved = root.resolve()
        for line, entry in enumerate(entries.to_dict("records"), start=2):
            raw_path = entry["path"].strip()
            resolved = resolve_inside(root, raw_path)
            fid = resolved.relative_to(root_resolved).as_posix()
            if not resolved.is_file():
                unusable.append((fid, f"listed in {manifest.name} line {line} but missing on disk"))
                rows.pop(fid, None)
                continue
            row = rows.setdefault(fid, {"file_id": fid, "raw_label": "", "group": ""})
            if entry.get("label", "").strip():
                row["raw_label"] = entry["label"].strip()
            if entry.get("group", "").strip():
                row["group"] = entry["group"].strip()
