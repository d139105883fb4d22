"""Turn the shared 5-class recordings index into one mode's targets and class counts.

The namespace (``binary`` or ``multiclass``) is the only difference between the two
instances. Each mode trains on the classes its ``classes`` parameter lists; a listed
class with no training recordings is left out of that mode with one warning (the
multiclass model then has no output for it) rather than stopping the run: a field store
without QUIET must still train both modes, and binary never needed QUIET.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import pandas as pd

from leak_detection.features.splits import SPLITS
from leak_detection.features.store import MelFeatureStore
from leak_detection.labels import CLASS_NAMES, LEAK, NOLEAK, check_mode_classes
from leak_detection.metrics.model_split import split_file_ids, split_sha256

logger = logging.getLogger(__name__)

STORE_FINGERPRINT = "store_fingerprint"
"""Column of ``recordings_index`` and ``file_targets``, key of ``class_summary``: the store they were built from.

They are written by separate nodes, so a data_indexing run that fails between two of them
leaves new and old files side by side; training compares this to tell.
"""


def store_fingerprint(mel_features: MelFeatureStore) -> str:
    """Changes with every extraction, even of the same recordings under another front end.

    ``source_fingerprint`` alone would not (it hashes the source files only); the feature
    config is left out because its JSON round trip through HDF5 need not be byte-identical.
    """
    digest = hashlib.sha256()
    for part in (mel_features.source_fingerprint, mel_features.created_at_utc, *mel_features.file_ids):
        digest.update(f"{part}\n".encode())
    digest.update(mel_features.file_offsets.astype("<i8").tobytes())
    return digest.hexdigest()


def recorded_store_fingerprint(table: pd.DataFrame) -> str | None:
    """The store a table says it was built from; None for tables written before it was recorded."""
    if STORE_FINGERPRINT not in table:
        return None
    values = set(map(str, table[STORE_FINGERPRINT]))
    if len(values) != 1:
        raise ValueError(f"{STORE_FINGERPRINT}: the table mixes rows of {len(values)} feature stores")
    return values.pop()


@dataclass(frozen=True)
class ModeClasses:
    """Which recording classes a mode trains on, and its output names in order."""

    used: tuple[str, ...]
    output_names: tuple[str, ...]

    def target_of(self, label: str) -> int:
        if self.output_names == (NOLEAK, LEAK):
            return int(label == LEAK)
        return self.output_names.index(label)


def _advice(data_source: dict[str, Any] | None) -> str:
    store = (data_source or {}).get("feature_store")
    if store:
        return (
            f"the labels come from the feature store {store} (its /labels and label_names): rebuild it with "
            "recordings of the missing classes, or train from recordings"
        )
    return (
        "add recordings of those classes to the recordings folder (a folder named after the class, or manifest "
        "labels mapped to it in label_mapping)"
    )


def mode_classes(
    recordings_index: pd.DataFrame, mode: str, classes: list[str], data_source: dict[str, Any] | None
) -> ModeClasses:
    """The listed classes that have training recordings; LEAK and one other are required."""
    listed = check_mode_classes(classes)
    counts = pd.crosstab(recordings_index["label"], recordings_index["split"]).reindex(
        index=list(listed), columns=list(SPLITS), fill_value=0
    )
    used = tuple(c for c in listed if counts.at[c, "train"] > 0)
    dropped = [c for c in listed if c not in used]
    if dropped:
        logger.warning(
            "%s: classes %s have no training recordings (files per split: %s); they are left out of this mode%s",
            mode,
            dropped,
            {c: counts.loc[c].to_dict() for c in dropped},
            "" if mode == "binary" else " and the model has no output for them",
        )
    if LEAK not in used or len(used) < 2:
        raise ValueError(
            f"{mode}: the training split must hold LEAK and at least one other of the classes {list(listed)}; "
            f"files per class and split: {counts.to_dict(orient='index')}. To fix it, {_advice(data_source)}"
        )
    return ModeClasses(used, (NOLEAK, LEAK) if mode == "binary" else used)


def file_targets(
    recordings_index: pd.DataFrame,
    mode: str,
    classes: list[str] = CLASS_NAMES,
    data_source: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Each used file's target in this mode's output order (binary: LEAK = 1, the rest 0)."""
    plan = mode_classes(recordings_index, mode, classes, data_source)
    kept = recordings_index[recordings_index["label"].isin(plan.used)]
    if len(kept) < len(recordings_index):
        left_out = recordings_index.loc[~recordings_index["label"].isin(plan.used), "label"].value_counts()
        logger.warning(
            "%s: %d files of classes this mode does not use are left out: %s",
            mode,
            int(left_out.sum()),
            left_out.to_dict(),
        )
    targets = [plan.target_of(label) for label in kept["label"]]
    table = pd.DataFrame(
        {
            "file_id": kept["file_id"].to_numpy(),
            "group": kept["group"].to_numpy(),
            "split": kept["split"].to_numpy(),
            "n_long_segments": kept["n_long_segments"].to_numpy(),
            "label": kept["label"].to_numpy(),
            "target": targets,
            "target_name": [plan.output_names[t] for t in targets],
        }
    )
    if STORE_FINGERPRINT in kept:
        table[STORE_FINGERPRINT] = kept[STORE_FINGERPRINT].astype(str).to_numpy()
    return table


def output_names(file_targets: pd.DataFrame, mode: str) -> list[str]:
    """The model's output names, in output order, as ``file_targets`` assigned them."""
    if mode == "binary":
        return [NOLEAK, LEAK]
    pairs = sorted(set(zip(file_targets["target"], file_targets["target_name"], strict=True)))
    return [name for _, name in pairs]


def summarise_classes(file_targets: pd.DataFrame, mode: str) -> dict[str, Any]:
    """Class counts per split and the loss weights that follow from the training split.

    The loss is taken per segment and recordings differ in length, so weights come
    from training segments, not files: ``n / (n_classes * n_class)`` makes every class
    pull equally; ``leak_pos_weight`` (``n_neg / n_pos``) is the paper's weight for
    the leak-vs-rest auxiliary loss.
    """
    names = output_names(file_targets, mode)
    counts = (
        pd.crosstab(file_targets["target_name"], file_targets["split"])
        .reindex(index=names, columns=list(SPLITS), fill_value=0)
        .astype(int)
    )
    unscored = {n: [s for s in ("validation", "test") if counts.at[n, s] == 0] for n in names}
    unscored = {n: s for n, s in unscored.items() if s}
    if unscored:
        missing = "; ".join(f"{name} has no {' or '.join(splits)} files" for name, splits in unscored.items())
        logger.warning("%s: %s; a class is still trained on but not scored where it has no files", mode, missing)
    training = file_targets[file_targets["split"] == "train"]
    segments = training.groupby("target_name")["n_long_segments"].sum().reindex(names).astype(int)
    n_segments = int(segments.sum())
    leak_segments = int(training.loc[training["label"] == LEAK, "n_long_segments"].sum())
    summary = {
        "mode": mode,
        "class_names": names,
        "leak_output_idx": names.index(LEAK),
        "files_per_split": {split: int(counts[split].sum()) for split in SPLITS},
        "files_per_class": {split: {n: int(counts.at[n, split]) for n in names} for split in SPLITS},
        "classes_without_validation_or_test_files": unscored,
        "train_long_segments_per_class": {n: int(segments[n]) for n in names},
        "class_weights": [n_segments / (len(names) * int(segments[n])) for n in names],
        "leak_pos_weight": (n_segments - leak_segments) / leak_segments,
        STORE_FINGERPRINT: recorded_store_fingerprint(file_targets),
        "split_sha256": split_sha256(split_file_ids(file_targets)),
    }
    logger.info("%s: training files per class %s", mode, summary["files_per_class"]["train"])
    return summary
