"""Pseudo-labels for a new site: the long segments a model is surest of, class by class.

Ma et al. (2025) adapt a trained model to a new network from its unlabelled recordings: the
model scores every long segment, the most confident half of them become labels, and the model is
fine-tuned on those. Choosing per class keeps a class the model is less sure of from being
crowded out by the one it is surest of; a floor on confidence keeps guesses out; and a class
with too few confident segments is left out rather than invented from a handful of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


class PseudoLabelError(ValueError):
    """No class has enough confident long segments to adapt on."""


@dataclass(frozen=True)
class PseudoLabelSettings:
    """How pseudo-labels are chosen (``adaptation.pseudo_labels`` in parameters_adaptation.yml)."""

    keep_fraction: float = 0.5
    min_confidence: float = 0.7
    min_segments_per_class: int = 20

    def __post_init__(self) -> None:
        if not 0 < self.keep_fraction <= 1:
            raise ValueError(f"adaptation.pseudo_labels.keep_fraction must be in (0, 1], got {self.keep_fraction}")
        if not 0 <= self.min_confidence < 1:
            raise ValueError(f"adaptation.pseudo_labels.min_confidence must be in [0, 1), got {self.min_confidence}")
        if self.min_segments_per_class < 1:
            raise ValueError(
                f"adaptation.pseudo_labels.min_segments_per_class must be at least 1, got {self.min_segments_per_class}"
            )


@dataclass(frozen=True)
class PseudoLabels:
    """The long segments kept, their class (index in the model's outputs) and how each class fared."""

    long_index: np.ndarray  # [k] indices into the scored long segments, ascending
    classes: np.ndarray  # [k] output index of each kept segment's class
    confidence: np.ndarray  # [k] the class probability that chose it
    per_class: list[dict[str, Any]]

    @property
    def left_out(self) -> list[str]:
        return [row["class"] for row in self.per_class if row["left_out"]]


def select_pseudo_labels(
    long_class_probs: np.ndarray, class_names: list[str], settings: PseudoLabelSettings
) -> PseudoLabels:
    """Per predicted class: the most confident ``keep_fraction`` of its long segments, above ``min_confidence``.

    ``long_class_probs`` is ``[n_long, n_classes]``: each long segment's mean class probabilities.
    Ties in confidence keep the earlier segment, so the choice is the same on every run.
    """
    predicted = long_class_probs.argmax(axis=1)
    confidence = long_class_probs.max(axis=1)
    kept, per_class = [], []
    for idx, name in enumerate(class_names):
        candidates = np.flatnonzero(predicted == idx)
        ranked = candidates[np.argsort(-confidence[candidates], kind="stable")]
        top = ranked[: math.ceil(settings.keep_fraction * len(ranked))]
        chosen = top[confidence[top] >= settings.min_confidence]
        left_out = len(chosen) < settings.min_segments_per_class
        per_class.append(
            {
                "class": name,
                "predicted": int(len(candidates)),
                "confident": int(len(chosen)),
                "kept": 0 if left_out else int(len(chosen)),
                "dropped_beyond_fraction": int(len(ranked) - len(top)),
                "dropped_below_confidence": int(len(top) - len(chosen)),
                "left_out": left_out,
            }
        )
        if not left_out:
            kept.append(chosen)
    if not kept:
        raise PseudoLabelError(_nothing_confident(per_class, settings))
    long_index = np.sort(np.concatenate(kept))
    return PseudoLabels(
        long_index=long_index,
        classes=predicted[long_index],
        confidence=confidence[long_index],
        per_class=per_class,
    )


def _nothing_confident(per_class: list[dict[str, Any]], settings: PseudoLabelSettings) -> str:
    counts = ", ".join(f"{row['class']}: {row['confident']}" for row in per_class)
    return (
        f"no class has {settings.min_segments_per_class} long segments the model is at least "
        f"{settings.min_confidence:g} sure of (confident segments kept per class: {counts}); "
        "add recordings of the new site, or lower adaptation.pseudo_labels.min_confidence or "
        "adaptation.pseudo_labels.min_segments_per_class"
    )


def describe(labels: PseudoLabels) -> str:
    """One log line: what was kept and dropped per class."""
    parts = []
    for row in labels.per_class:
        if row["left_out"]:
            parts.append(f"{row['class']} left out ({row['confident']} confident of {row['predicted']})")
        else:
            parts.append(f"{row['class']} {row['kept']} of {row['predicted']}")
    return "pseudo-labels: " + ", ".join(parts)
