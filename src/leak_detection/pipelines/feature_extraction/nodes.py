"""Mode-independent work: label, read, check and featurise every recording once.

Both modes train on the same features and the same split, so that the comparison of
binary against multiclass is made on the same test files.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from leak_detection.audio.analysis_pool import analyse_files
from leak_detection.audio.front_end import FrontEndConfig
from leak_detection.audio.recordings import RecordingCollection
from leak_detection.features.splits import assign_splits, holdout_groups
from leak_detection.features.store import MelFeatureStore
from leak_detection.labels import CLASS_NAMES, resolve_label_mapping
from leak_detection.pipelines.data_indexing.nodes import STORE_FINGERPRINT, store_fingerprint

logger = logging.getLogger(__name__)

REJECTED_COLUMNS = ["file_id", "raw_label", "reason"]


class BadRecordingError(RuntimeError):
    """A recording failed a check while ``extraction.strict`` is on."""


def label_recordings(recordings: RecordingCollection, label_mapping: dict[str, str] | None) -> pd.DataFrame:
    """The recordings table with each raw label turned into one of the five classes.

    Runs before any audio is read, so an unmapped label stops the run at once.
    """
    table = recordings.table.copy()
    if table.empty:
        raise ValueError(
            f"no recordings found in {recordings.root}: expected audio files laid out "
            "<dir>/<LABEL>/**/<file>.wav or listed in a manifest"
        )
    mapping = resolve_label_mapping(table["raw_label"], label_mapping or {})
    table["label"] = table["raw_label"].map(mapping)
    counts = table["label"].value_counts().reindex(CLASS_NAMES, fill_value=0)
    logger.info(
        "Found %d recordings in %s; per class: %s",
        len(table),
        recordings.root,
        ", ".join(f"{k} {v}" for k, v in counts.items()),
    )
    return table


def source_fingerprint(labelled: pd.DataFrame) -> str:
    """Hash over file ids, sizes and mtimes: changes when any source file does."""
    digest = hashlib.sha256()
    for row in labelled.sort_values("file_id").itertuples(index=False):
        digest.update(f"{row.file_id}\0{row.size_bytes}\0{row.mtime_ns}\n".encode())
    return digest.hexdigest()


def extract_features(
    recordings: RecordingCollection,
    labelled: pd.DataFrame,
    front_end: dict[str, Any],
    extraction: dict[str, Any],
) -> tuple[MelFeatureStore, pd.DataFrame]:
    """Features of every usable recording, and the report of those that are not.

    A bad recording (unreadable, empty, too short, non-finite, silent) is listed
    with its reason and the run goes on; with ``extraction.strict`` the first one
    stops the run instead.
    """
    config = FrontEndConfig.from_params(front_end)
    strict = bool(extraction.get("strict", False))
    rejected = [{"file_id": fid, "raw_label": "", "reason": reason} for fid, reason in recordings.unusable]
    if strict and rejected:
        raise BadRecordingError(f"{rejected[0]['file_id']}: {rejected[0]['reason']}")
    features, kept, durations, rates = [], [], [], []
    seen = _SeenAudio()
    audio_seconds = 0.0
    started = time.perf_counter()
    rows = {row.file_id: row for row in labelled.itertuples(index=False)}
    workers = extraction.get("workers", "auto")
    with contextlib.closing(analyse_files(recordings, list(rows), config, workers=workers)) as results:
        for result in results:
            row, analysed, reason = rows[result.file_id], result.analysed, result.reason
            if reason is None:
                reason = seen.reason(analysed.content_sha256, row.file_id, row.label)
            if reason is not None:
                if strict:
                    raise BadRecordingError(f"{row.file_id}: {reason} (extraction.strict is on)")
                rejected.append({"file_id": row.file_id, "raw_label": row.raw_label, "reason": reason})
                continue
            features.append(analysed.features)
            kept.append(row)
            durations.append(analysed.duration_s)
            rates.append(analysed.sample_rate)
            audio_seconds += analysed.duration_s
    if seen.conflicted:
        keep = [i for i, row in enumerate(kept) if row.file_id not in seen.conflicted]
        rejected += [
            {"file_id": row.file_id, "raw_label": row.raw_label, "reason": seen.conflicted[row.file_id]}
            for row in kept
            if row.file_id in seen.conflicted
        ]
        features, kept, durations, rates = ([x[i] for i in keep] for x in (features, kept, durations, rates))
    elapsed = time.perf_counter() - started
    if not kept:
        raise ValueError(
            f"none of the {len(labelled)} recordings in {recordings.root} could be used; "
            "see the reasons in the rejected-recordings report"
        )
    store = _store_of(features, pd.DataFrame(kept), durations, rates, config)
    _log_extraction(store, audio_seconds, elapsed, len(rejected), len(labelled) + len(recordings.unusable))
    return store, pd.DataFrame(rejected, columns=REJECTED_COLUMNS)


def _store_of(
    features: list[np.ndarray], kept: pd.DataFrame, durations: list[float], rates: list[int], config: FrontEndConfig
) -> MelFeatureStore:
    return MelFeatureStore(
        segments_mel=np.concatenate(features, axis=0),
        file_offsets=np.concatenate([[0], np.cumsum([f.shape[0] for f in features])]),
        labels=np.array([CLASS_NAMES.index(lab) for lab in kept["label"]]),
        file_ids=list(kept["file_id"]),
        groups=list(kept["group"]),
        label_names=list(CLASS_NAMES),
        feature_config=config.to_dict(),
        source_fingerprint=source_fingerprint(kept),
        created_at_utc=datetime.now(UTC).isoformat(timespec="seconds"),
        durations_s=np.array(durations),
        sample_rates=np.array(rates),
    )


def _log_extraction(store: MelFeatureStore, audio_seconds: float, elapsed: float, n_rejected: int, n_all: int) -> None:
    logger.info(
        "Extracted %d long segments from %d recordings (%.0f s of audio) in %.1f s: %.0fx real time",
        store.n_long_segments,
        store.n_files,
        audio_seconds,
        elapsed,
        audio_seconds / max(elapsed, 1e-9),
    )
    if n_rejected:
        logger.warning("Rejected %d of %d recordings; reasons in the rejected-recordings report", n_rejected, n_all)
    else:
        logger.info("Rejected 0 recordings")


class _SeenAudio:
    """The first file of each distinct audio content, and first copies found in conflict.

    A second copy under the same label would let one recording sit in train and test
    at once, so it is kept once; under another label neither label can be trusted,
    so every copy is rejected as a conflict.
    """

    def __init__(self) -> None:
        self.first: dict[str, tuple[str, str]] = {}
        self.conflicted: dict[str, str] = {}

    def reason(self, content: str, file_id: str, label: str) -> str | None:
        if content not in self.first:
            self.first[content] = (file_id, label)
            return None
        first_id, first_label = self.first[content]
        if first_label == label:
            return f"duplicate: the same audio as {first_id} (kept once)"
        self.conflicted[first_id] = f"conflict: the same audio as {file_id}, which is labelled {label}"
        return f"conflict: the same audio as {first_id}, which is labelled {first_label}"


def index_recordings(
    mel_features: MelFeatureStore, splits: dict[str, Any], label_mapping: dict[str, str] | None = None
) -> pd.DataFrame:
    """One row per featurised recording, with its split and the store's fingerprint.

    Built from the store alone, so a store made elsewhere can be trained from; its
    label names go through ``label_mapping`` as folder names do (``HISS: LEAK``).
    ``splits`` holds ``ratios``, ``seed`` and optionally ``holdout_sites``: group
    patterns whose groups all go to test (see ``leak_detection.features.splits``).
    """
    mapping = resolve_label_mapping(mel_features.label_names, label_mapping or {})
    label_names = [mapping[name] for name in mel_features.label_names]
    index = pd.DataFrame(
        {
            "file_id": mel_features.file_ids,
            "label": [label_names[i] for i in mel_features.labels],
            "group": mel_features.groups,
            "duration_s": mel_features.durations_s,
            "sample_rate": mel_features.sample_rates,
            "n_long_segments": mel_features.long_segments_per_file(),
        }
    )
    holdout_sites = splits.get("holdout_sites", [])
    index["split"] = assign_splits(
        index["label"], index["group"], splits["ratios"], int(splits["seed"]), holdout_sites=holdout_sites
    )
    index[STORE_FINGERPRINT] = store_fingerprint(mel_features)
    if holdout_sites:
        held = holdout_groups(index["group"], holdout_sites)
        logger.info(
            "Held out %d group(s) matching %s as the test split, %d files: %s",
            len(held),
            holdout_sites,
            int(index["group"].isin(held).sum()),
            ", ".join(held),
        )
    summary = pd.crosstab(index["label"], index["split"]).reindex(columns=["train", "validation", "test"], fill_value=0)
    logger.info("Files per class and split:\n%s", summary.to_string())
    return index
