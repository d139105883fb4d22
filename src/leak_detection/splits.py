"""Train / validation / test assignment by group, stratified by class.

Random per-file splits let pieces of one recording, or one sensor's days, land in
both train and test (SPEC defect 5) and so report the memory of a sensor as skill.
Here whole groups move together: the groups are dealt into equal, class-balanced
folds (scikit-learn's ``StratifiedGroupKFold``) and the folds are handed out to the
splits in proportion to the ratios.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

SPLITS = ("train", "validation", "test")
MAX_FOLDS = 20
"""Ratios are honoured to 1/20 (5%) when there are at least 20 groups."""


def check_split_ratios(ratios: Mapping[str, float]) -> dict[str, float]:
    """Validate ``{"train": .7, "validation": .2, "test": .1}``-style ratios."""
    if set(ratios) != set(SPLITS):
        raise ValueError(f"split ratios must have exactly the keys {list(SPLITS)}, got {sorted(ratios)}")
    clean = {}
    for name in SPLITS:
        value = ratios[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise ValueError(f"split ratio {name!r} must be a number in [0, 1), got {value!r}")
        clean[name] = float(value)
    if clean["train"] <= 0 or clean["validation"] <= 0:
        raise ValueError("split ratios for 'train' and 'validation' must be above 0")
    if not math.isclose(sum(clean.values()), 1.0, abs_tol=1e-6):
        raise ValueError(f"split ratios must sum to 1, got {sum(clean.values())} from {clean}")
    return clean


def _folds_per_split(n_folds: int, ratios: dict[str, float]) -> dict[str, int]:
    counts = {name: round(ratios[name] * n_folds) for name in ("validation", "test")}
    counts = {name: max(1, c) if ratios[name] > 0 else 0 for name, c in counts.items()}
    counts["train"] = n_folds - counts["validation"] - counts["test"]
    if counts["train"] < 1:
        raise ValueError(
            f"too few groups ({n_folds}) to give every split at least one group; "
            "add recordings from more groups or change the split ratios"
        )
    return counts


def assign_splits(labels: Sequence[str], groups: Sequence[str], ratios: Mapping[str, float], seed: int) -> np.ndarray:
    """Split name for every file; no group spans two splits.

    Raises:
        ValueError: bad ratios, or fewer groups than needed to fill every split.
    """
    ratios = check_split_ratios(ratios)
    labels = np.asarray(labels)
    groups = np.asarray(groups)
    if labels.shape != groups.shape:
        raise ValueError(f"{labels.size} labels but {groups.size} groups")
    n_groups = len(np.unique(groups))
    n_needed = 2 + (ratios["test"] > 0)
    if n_groups < n_needed:
        raise ValueError(f"only {n_groups} group(s): at least {n_needed} are needed so that no group spans two splits")
    # scikit-learn needs some class with at least as many files as there are folds.
    largest_class = int(np.unique(labels, return_counts=True)[1].max())
    n_folds = min(MAX_FOLDS, n_groups, largest_class)
    if n_folds < n_needed:
        raise ValueError(
            f"too few recordings to split: the largest class has {largest_class} file(s) and there are "
            f"{n_groups} group(s); at least {n_needed} of each are needed"
        )
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    fold_of_file = np.empty(labels.size, dtype=np.int64)
    with warnings.catch_warnings():
        # A class with fewer files than folds cannot be in every fold: expected for rare
        # classes, and the proportions are still as even as the groups allow.
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        for fold, (_, members) in enumerate(splitter.split(np.zeros(labels.size), labels, groups)):
            fold_of_file[members] = fold
    counts = _folds_per_split(n_folds, ratios)
    split_of_fold = np.array(
        ["test"] * counts["test"] + ["validation"] * counts["validation"] + ["train"] * counts["train"]
    )
    return split_of_fold[fold_of_file]
