"""A new site's recordings as adaptation sees them: features made by the model's own front end, a few labels.

The recordings are read with the front end recorded in the model's meta, so the model sees exactly the
features it was trained on (docs/architecture.md, D2); a file that cannot be used is reported with its
reason and the others go on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from leak_detection.audio.analysis_pool import analyse_files
from leak_detection.audio.front_end import FrontEndConfig
from leak_detection.audio.recordings import RecordingCollection


@dataclass(frozen=True)
class SiteRecordings:
    """The usable recordings of a new site.

    Attributes:
        file_ids: each usable recording, as the recordings dataset names it.
        long_offsets: ``[n_files + 1]``: file ``i`` owns long segments ``long_offsets[i]:long_offsets[i + 1]``.
        segments: ``[n_long, n_short, n_mels, n_frames]`` log-mel features.
        classes: each file's class from the optional labels manifest, ``""`` when unlabelled.
        fingerprint: hash over the usable files' ids, sizes and modification times.
    """

    file_ids: list[str]
    long_offsets: np.ndarray
    segments: np.ndarray
    classes: list[str]
    fingerprint: str

    @property
    def labelled(self) -> np.ndarray:
        return np.array([c != "" for c in self.classes], dtype=bool)

    def only(self, keep: np.ndarray) -> SiteRecordings:
        """The files where ``keep`` is true, in the same order."""
        ids = np.flatnonzero(keep)
        starts, stops = self.long_offsets[ids], self.long_offsets[ids + 1]
        rows = np.concatenate([np.arange(a, b) for a, b in zip(starts, stops, strict=True)] or [np.empty(0, int)])
        return SiteRecordings(
            file_ids=[self.file_ids[i] for i in ids],
            long_offsets=np.concatenate([[0], np.cumsum(stops - starts)]),
            segments=self.segments[rows],
            classes=[self.classes[i] for i in ids],
            fingerprint=self.fingerprint,
        )


def read_site(
    recordings: RecordingCollection, classes: dict[str, str], config: FrontEndConfig, workers: int | str
) -> tuple[SiteRecordings, pd.DataFrame]:
    """Features of every usable recording (``classes`` names the labelled ones) and the rejected ones' reasons."""
    features, kept, rejected = [], [], []
    file_ids = list(recordings.table["file_id"])
    for result in analyse_files(recordings, file_ids, config, workers=workers, desc="new site: reading"):
        if result.reason is None:
            features.append(result.analysed.features)
            kept.append(result.file_id)
        else:
            rejected.append({"file_id": result.file_id, "reason": result.reason})
    rejected_table = pd.DataFrame(rejected, columns=["file_id", "reason"])
    if not kept:
        raise ValueError(
            f"none of the {len(file_ids)} recordings of the new site could be used "
            f"(first: {rejected[0]['file_id']}: {rejected[0]['reason']})"
            if rejected
            else "the new site's folder holds no recordings"
        )
    table = recordings.table.set_index("file_id").loc[kept].reset_index()
    site = SiteRecordings(
        file_ids=kept,
        long_offsets=np.concatenate([[0], np.cumsum([f.shape[0] for f in features])]),
        segments=np.concatenate(features),
        classes=[classes.get(f, "") for f in kept],
        fingerprint=_fingerprint(table),
    )
    return site, rejected_table


def _fingerprint(table: pd.DataFrame) -> str:
    digest = hashlib.sha256()
    for row in table.sort_values("file_id").itertuples(index=False):
        size, mtime = getattr(row, "size_bytes", ""), getattr(row, "mtime_ns", "")
        digest.update(f"{row.file_id}\0{size}\0{mtime}\n".encode())
    return digest.hexdigest()
