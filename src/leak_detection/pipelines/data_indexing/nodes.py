"""Turn the shared 5-class recordings index into one mode's targets and class counts.

The namespace (``binary`` or ``multiclass``) is the only difference between the two
instances; the mode's output order comes from ``leak_detection.labels``.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from leak_detection.labels import LEAK, leak_output_idx, mode_class_names, mode_targets
from leak_detection.splits import SPLITS

logger = logging.getLogger(__name__)


def file_targets(recordings_index: pd.DataFrame, mode: str) -> pd.DataFrame:
    """Each file's target in this mode's output order (binary: LEAK = 1, the rest 0)."""
    names = mode_class_names(mode)
    targets = mode_targets(recordings_index["label"], mode)
    return pd.DataFrame(
        {
            "file_id": recordings_index["file_id"],
            "group": recordings_index["group"],
            "split": recordings_index["split"],
            "n_long_segments": recordings_index["n_long_segments"],
            "label": recordings_index["label"],
            "target": targets,
            "target_name": [names[t] for t in targets],
        }
    )


def summarise_classes(file_targets: pd.DataFrame, mode: str) -> dict[str, Any]:
    """Class counts per split and the loss weights that follow from the training split.

    The loss is taken per segment and recordings differ in length, so weights come
    from training segments, not files: ``n / (n_classes * n_class)`` makes every class
    pull equally; ``leak_pos_weight`` (``n_neg / n_pos``) is SPEC's weight for the
    leak-vs-rest auxiliary loss.
    """
    names = list(mode_class_names(mode))
    counts = (
        pd.crosstab(file_targets["target_name"], file_targets["split"])
        .reindex(index=names, columns=list(SPLITS), fill_value=0)
        .astype(int)
    )
    train = counts["train"]
    empty = [name for name in names if train[name] == 0]
    if empty:
        raise ValueError(
            f"{mode}: classes {empty} have no recordings in the training split "
            f"(files per class and split: {counts.to_dict()}); add recordings of those "
            "classes or map their labels elsewhere in label_mapping"
        )
    training = file_targets[file_targets["split"] == "train"]
    segments = training.groupby("target_name")["n_long_segments"].sum().reindex(names).astype(int)
    n_segments = int(segments.sum())
    leak_segments = int(training.loc[training["label"] == LEAK, "n_long_segments"].sum())
    summary = {
        "mode": mode,
        "class_names": names,
        "leak_output_idx": leak_output_idx(mode),
        "files_per_split": {split: int(counts[split].sum()) for split in SPLITS},
        "files_per_class": {split: {n: int(counts.at[n, split]) for n in names} for split in SPLITS},
        "train_long_segments_per_class": {n: int(segments[n]) for n in names},
        "class_weights": [n_segments / (len(names) * int(segments[n])) for n in names],
        "leak_pos_weight": (n_segments - leak_segments) / leak_segments,
    }
    logger.info("%s: training files per class %s", mode, summary["files_per_class"]["train"])
    return summary
