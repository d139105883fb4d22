"""Train / validation / test assignment by group, stratified by class.

Random per-file splits let pieces of one recording, or one sensor's days, land in
both train and test (docs/architecture.md, D5) and so report the memory of a sensor as skill.
Here whole groups move together: the groups are dealt into equal, class-balanced
folds (scikit-learn's ``StratifiedGroupKFold``) and the folds are handed out to the
splits in proportion to the ratios.

A model that has heard a site's sensors in training is flattered by a test on other
sensors of that site. ``holdout_sites`` (glob patterns on the group, e.g. ``site03-*``)
sends every matching group to test, and splits the rest into train and validation
alone, so a cross-site benchmark tests on sites the model has never heard.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

SPLITS = ("train", "validation", "test")
MAX_FOLDS = 20
"""Ratios are honoured to 1/20 (5%) when there are at least 20 groups."""
GROUPS_NAMED_IN_ERRORS = 8


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


def check_holdout_sites(value: object) -> list[str]:
    """Validate ``splits.holdout_sites``: a list of glob patterns matched against groups."""
    # A bare string would be iterated letter by letter, each letter a pattern.
    if not isinstance(value, (list, tuple)):
        raise ValueError(
            f"holdout_sites must be a list of group patterns such as ['site03-*'], got {type(value).__name__} {value!r}"
        )
    bad = [pattern for pattern in value if not isinstance(pattern, str) or not pattern.strip()]
    if bad:
        raise ValueError(f"holdout_sites entries must be non-empty strings (glob patterns), got {bad!r}")
    return list(dict.fromkeys(value))


def holdout_groups(groups: Sequence[str], patterns: Sequence[str]) -> list[str]:
    """The distinct groups that any pattern matches (``fnmatch``, case-sensitive), sorted.

    Raises:
        ValueError: a pattern matches no group.
    """
    names = sorted(set(map(str, groups)))
    unmatched = [p for p in patterns if not any(fnmatchcase(name, p) for name in names)]
    if unmatched:
        raise ValueError(f"holdout_sites pattern(s) {unmatched} match no group; {_some_groups(names)}")
    return [name for name in names if any(fnmatchcase(name, p) for p in patterns)]


def _some_groups(names: list[str]) -> str:
    shown = ", ".join(names[:GROUPS_NAMED_IN_ERRORS])
    more = f", ... ({len(names)} in all)" if len(names) > GROUPS_NAMED_IN_ERRORS else ""
    return f"groups available: {shown}{more}"


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


def assign_splits(
    labels: Sequence[str],
    groups: Sequence[str],
    ratios: Mapping[str, float],
    seed: int,
    holdout_sites: Sequence[str] = (),
) -> np.ndarray:
    """Split name for every file; no group spans two splits.

    With ``holdout_sites``, the groups they match are the test split and the other
    groups are split into train and validation in the ratio of those two; the test
    ratio is then unused. Without, the assignment is the same as it always was.

    Raises:
        ValueError: bad ratios or patterns, a pattern that matches no group, or fewer
            groups than needed to fill every split.
    """
    ratios = check_split_ratios(ratios)
    patterns = check_holdout_sites(holdout_sites)
    labels = np.asarray(labels)
    groups = np.asarray(groups)
    if labels.shape != groups.shape:
        raise ValueError(f"{labels.size} labels but {groups.size} groups")
    if not patterns:
        return _assign_by_folds(labels, groups, ratios, seed)
    held = np.isin(groups.astype(str), holdout_groups(groups, patterns))
    kept_groups = sorted(set(groups[~held]))
    if len(kept_groups) < 2:
        raise ValueError(
            f"holdout_sites {patterns} leave {len(kept_groups)} group(s) for train and validation, "
            f"at least 2 are needed; {_some_groups(sorted(set(groups)))}"
        )
    train_share = ratios["train"] / (ratios["train"] + ratios["validation"])
    kept_ratios = {"train": train_share, "validation": 1.0 - train_share, "test": 0.0}
    splits = np.full(labels.size, "test", dtype=object)
    splits[~held] = _assign_by_folds(labels[~held], groups[~held], kept_ratios, seed)
    return splits.astype(str)


def _assign_by_folds(labels: np.ndarray, groups: np.ndarray, ratios: dict[str, float], seed: int) -> np.ndarray:
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
