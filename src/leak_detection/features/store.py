"""The in-memory form of the ragged mel feature store.

Recordings have different lengths, so features are kept as one flat array of long
segments plus offsets (CSR style) rather than a padded cube: file ``i`` owns
``segments_mel[file_offsets[i]:file_offsets[i + 1]]``. ``store_file`` reads and
writes exactly this object as HDF5 (``hdf5_layout``); nodes only ever see this class.
The segments are an array in memory or a ``RowReader`` that reads them from the file
on demand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from leak_detection.features.row_reader import RowReader

FINITE_CHECK_ROWS = 8192
"""Long segments checked for NaN and infinity at a time (about 3 MB of float32 with the defaults)."""
FILES_NAMED = 5
"""Files named in a message about bad features; the rest are counted."""


def non_finite_in(block: np.ndarray) -> np.ndarray:
    """Per long segment of ``block``: does it hold a NaN or an infinity?"""
    flat = np.ascontiguousarray(block).reshape(len(block), -1)
    if flat.dtype == np.float16:
        # numpy's isfinite on float16 is 7x slower than this: an all-ones exponent
        # is exactly a NaN or an infinity.
        bad = (flat.view(np.uint16) & 0x7C00) == 0x7C00
    else:
        bad = ~np.isfinite(flat)
    return bad.any(axis=1) if bad.any() else np.zeros(len(flat), dtype=bool)


def non_finite_rows(segments: np.ndarray | RowReader, block_rows: int = FINITE_CHECK_ROWS) -> np.ndarray:
    """Indices of the long segments of ``segments`` that hold a NaN or an infinity.

    Read a block at a time, so the check never holds a second full-size array. A
    ``RowReader`` does the reading itself, in one opening of its file.
    """
    if isinstance(segments, RowReader):
        return segments.non_finite_rows(block_rows)
    found = [
        start + np.flatnonzero(non_finite_in(np.asarray(segments[start : start + block_rows])))
        for start in range(0, len(segments), block_rows)
    ]
    return np.concatenate(found) if found else np.empty(0, dtype=np.int64)


@dataclass
class MelFeatureStore:
    """Hierarchical log-mel features of many recordings.

    Attributes:
        segments_mel: ``[total_long_segments, n_short, n_mels, n_frames]`` float16/32,
            in memory or a ``RowReader`` over the store's file.
        file_offsets: ``[n_files + 1]`` int64, starting at 0 and non-decreasing.
        labels: ``[n_files]`` int64 class index into ``label_names``.
        file_ids: ``[n_files]`` path of each recording relative to the raw root.
        groups: ``[n_files]`` site / sensor / source recording of each file.
        label_names: class names, index ``i`` is class ``i``.
        feature_config: the front-end parameters that produced the features.
        source_fingerprint: hash over the source files (ids, sizes, mtimes).
        created_at_utc: ISO 8601 time of extraction.
        durations_s: ``[n_files]`` length of each source recording in seconds; when a
            store does not say (the older layout), derived from its segment count.
        sample_rates: ``[n_files]`` original sample rate of each recording (0 when
            unknown).
    """

    segments_mel: np.ndarray | RowReader
    file_offsets: np.ndarray
    labels: np.ndarray
    file_ids: list[str]
    groups: list[str]
    label_names: list[str]
    feature_config: dict[str, Any] = field(default_factory=dict)
    source_fingerprint: str = ""
    created_at_utc: str = ""
    durations_s: np.ndarray | None = None
    sample_rates: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.file_offsets = np.asarray(self.file_offsets, dtype=np.int64)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.file_ids = [str(f) for f in self.file_ids]
        self.groups = [str(g) for g in self.groups]
        self.label_names = [str(n) for n in self.label_names]
        if self.durations_s is None:
            self.durations_s = self._durations_from_segments()
        if self.sample_rates is None:
            self.sample_rates = np.zeros(len(self.file_ids), dtype=np.int64)
        self.durations_s = np.asarray(self.durations_s, dtype=np.float64)
        self.sample_rates = np.asarray(self.sample_rates, dtype=np.int64)
        self.validate()

    def _durations_from_segments(self) -> np.ndarray:
        config = self.feature_config
        if not {"long_segment", "long_hop", "sample_rate"} <= set(config):
            return np.full(len(self.file_ids), np.nan)
        n_long = np.diff(self.file_offsets)
        samples = np.where(n_long > 0, (n_long - 1) * config["long_hop"] + config["long_segment"], 0)
        return samples / config["sample_rate"]

    @property
    def n_files(self) -> int:
        return len(self.file_ids)

    @property
    def n_long_segments(self) -> int:
        return int(self.segments_mel.shape[0])

    def long_segments_per_file(self) -> np.ndarray:
        return np.diff(self.file_offsets)

    def file_segments(self, i: int) -> np.ndarray:
        """The ``[n_long, n_short, n_mels, n_frames]`` features of file ``i``."""
        return self.segments_mel[self.file_offsets[i] : self.file_offsets[i + 1]]

    def validate(self) -> None:
        """Refuse a store whose parts disagree, saying what disagrees."""
        problems = []
        n = len(self.file_ids)
        if self.segments_mel.ndim != 4:
            problems.append(
                f"segments_mel has shape {self.segments_mel.shape}; expected 4 axes "
                "[long_segments, n_short, n_mels, n_frames]"
            )
        if self.file_offsets.shape != (n + 1,):
            problems.append(f"file_offsets has {self.file_offsets.size} entries; expected n_files + 1 = {n + 1}")
        elif n + 1 > 0:
            if self.file_offsets[0] != 0:
                problems.append(f"file_offsets starts at {self.file_offsets[0]}, not 0")
            if np.any(np.diff(self.file_offsets) < 0):
                problems.append("file_offsets decrease somewhere")
            if self.file_offsets[-1] != self.segments_mel.shape[0]:
                problems.append(
                    f"file_offsets ends at {self.file_offsets[-1]} but segments_mel holds "
                    f"{self.segments_mel.shape[0]} long segments"
                )
        if self.labels.shape != (n,):
            problems.append(f"labels has {self.labels.size} entries for {n} files")
        elif n and (self.labels.min() < 0 or self.labels.max() >= len(self.label_names)):
            problems.append(
                f"labels hold values outside 0..{len(self.label_names) - 1} (label_names {self.label_names})"
            )
        for name in ("durations_s", "sample_rates"):
            if getattr(self, name).shape != (n,):
                problems.append(f"{name} has {getattr(self, name).size} entries for {n} files")
        if len(self.groups) != n:
            problems.append(f"groups has {len(self.groups)} entries for {n} files")
        if len(set(self.file_ids)) != n:
            problems.append("file_ids are not unique")
        if problems:
            raise ValueError("inconsistent feature store: " + "; ".join(problems))
        self._check_finite()

    def _check_finite(self) -> None:
        # A NaN in one file's features makes every training loss NaN from its first
        # batch on, and the NaN model then won the "best" slot with F1 0.
        bad_rows = non_finite_rows(self.segments_mel, FINITE_CHECK_ROWS)
        if bad_rows.size == 0:
            return
        files, counts = np.unique(np.searchsorted(self.file_offsets, bad_rows, side="right") - 1, return_counts=True)
        per_file = self.long_segments_per_file()
        named = ", ".join(
            f"{self.file_ids[i]} ({n} of {per_file[i]} long segments)"
            for i, n in zip(files[:FILES_NAMED], counts[:FILES_NAMED], strict=True)
        )
        more = f" and {len(files) - FILES_NAMED} more" if len(files) > FILES_NAMED else ""
        raise ValueError(
            f"non-finite features (NaN or infinity) in {len(files)} of {self.n_files} files: {named}{more}. "
            "Re-extract those recordings or remove them from the store; nothing can be trained or scored on them"
        )
