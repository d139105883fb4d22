"""The one definition of the classes, the raw-label mapping and the per-mode targets.

The replaced system read the leak index of the binary model from the 5-class list and
so trained a target that was always 0 (docs/architecture.md, D1 and D3). Here every mode says
its own output order, and the index of LEAK is looked up in that order, never
carried over from another one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

CLASS_NAMES: tuple[str, ...] = ("LEAK", "NORMAL", "QUIET", "RANDOM", "MECHANICAL")
"""The five classes of the multiclass model, in output order (index 0..4)."""

LEAK = "LEAK"
NOLEAK = "NOLEAK"

MODE_CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "binary": (NOLEAK, LEAK),
    "multiclass": CLASS_NAMES,
}
"""Output order of each mode's model. Binary: LEAK = 1, every other class is NOLEAK."""


class LabelError(ValueError):
    """A recording's label cannot be turned into one of the five classes."""


def check_mode(mode: str) -> str:
    if mode not in MODE_CLASS_NAMES:
        raise ValueError(f"unknown mode {mode!r}: allowed values are {sorted(MODE_CLASS_NAMES)}")
    return mode


def mode_class_names(mode: str) -> tuple[str, ...]:
    return MODE_CLASS_NAMES[check_mode(mode)]


def leak_output_idx(mode: str) -> int:
    """Index of LEAK in this mode's model output."""
    return mode_class_names(mode).index(LEAK)


def resolve_label_mapping(raw_labels: Iterable[str], label_mapping: Mapping[str, str]) -> dict[str, str]:
    """Map every raw label name to one of the five classes, or say which cannot be.

    A class name maps to itself; other names must appear in ``label_mapping``.
    Matching ignores case, because folder names are often typed by hand.
    """
    upper_mapping = {str(k).upper(): str(v).upper() for k, v in label_mapping.items()}
    bad_targets = {k: v for k, v in upper_mapping.items() if v not in CLASS_NAMES}
    if bad_targets:
        raise LabelError(
            f"label_mapping maps to names that are not classes: {bad_targets}; "
            f"targets must be one of {list(CLASS_NAMES)}"
        )
    resolved: dict[str, str] = {}
    unmapped: list[str] = []
    for raw in sorted(set(raw_labels)):
        key = str(raw).upper()
        if key in upper_mapping:
            resolved[raw] = upper_mapping[key]
        elif key in CLASS_NAMES:
            resolved[raw] = key
        else:
            unmapped.append(raw)
    if unmapped:
        raise LabelError(
            f"recording labels {unmapped} are not classes and have no entry in the "
            f"label_mapping parameter. Labels found: {sorted(set(raw_labels))}. "
            f"Classes: {list(CLASS_NAMES)}. Current label_mapping: {dict(label_mapping)}. "
            "Add the missing names to label_mapping in conf/base/parameters_feature_extraction.yml "
            "(for example `CRACK: LEAK`)."
        )
    return resolved


def check_mode_classes(classes: object) -> tuple[str, ...]:
    """A mode's ``classes`` parameter: distinct class names, LEAK and at least one other."""
    if not isinstance(classes, list | tuple) or not all(isinstance(c, str) for c in classes):
        raise ValueError(f"must be a list of class names from {list(CLASS_NAMES)}, got {classes!r}")
    names = tuple(c.upper() for c in classes)
    unknown = sorted(set(names) - set(CLASS_NAMES))
    if unknown or len(set(names)) != len(names):
        raise ValueError(f"must list distinct names from {list(CLASS_NAMES)}, got {list(classes)}")
    if LEAK not in names or len(names) < 2:
        raise ValueError(f"must hold LEAK and at least one other class, got {list(classes)}")
    return names


def mode_targets(class_labels: Iterable[str], mode: str) -> np.ndarray:
    """Targets in ``mode``'s output order for 5-class label names."""
    names = mode_class_names(mode)
    labels = list(class_labels)
    unknown = sorted(set(labels) - set(CLASS_NAMES))
    if unknown:
        raise LabelError(f"labels {unknown} are not among the classes {list(CLASS_NAMES)}")
    if mode == "binary":
        return np.array([int(lab == LEAK) for lab in labels], dtype=np.int64)
    return np.array([names.index(lab) for lab in labels], dtype=np.int64)
