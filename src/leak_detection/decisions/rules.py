"""How a file becomes LEAK or one of the other classes: one rule, chosen on validation, used everywhere.

Every rule is the paper's vote (a file is LEAK when at least half of its long segments
reach the threshold) on a per-long-segment score:

- ``leak_probability``: the segment leak probability, ``softmax[LEAK]`` (binary) or
  ``0.5*softmax[LEAK] + 0.5*sigmoid(aux)`` (multiclass), averaged per long segment.
- ``leak_class_share`` (multiclass only): ``p_LEAK / (p_LEAK + p_other)``, where ``p_other``
  is the most probable other class of the long segment's mean softmax. At 0.5 a long
  segment votes LEAK exactly when LEAK is its most probable class; another threshold is
  an argmax with a LEAK margin.

Binary models use ``leak_probability`` at the threshold of best validation leak F1, as
the paper does. Multiclass models choose score and threshold on validation by the mean
of file-level leak F1 and macro F1 over the classes present: on field data, the leak
probability voted at the leak-F1 threshold (0.25-0.30) called 82 of 88 RANDOM and 61 of
64 MECHANICAL test files LEAK, against the class head, and the project's predicted class
reached macro F1 0.43 where the plain argmax of the same model reached 0.52. A file's
class is LEAK exactly when its vote says LEAK, else its most probable other class, so the
decision and the class never disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.metrics import f1_score

from leak_detection.decisions.scoring import (
    THRESHOLDS,
    FileScores,
    file_classes,
    file_vote,
    leak_detection_metrics,
    per_file_mean,
)
from leak_detection.decisions.split_scores import SplitScores
from leak_detection.labels import LEAK, NOLEAK

SCORES = ("leak_probability", "leak_class_share")
"""Candidate long-segment scores, in order of preference on ties."""


@dataclass(frozen=True)
class DecisionRule:
    """A long-segment score (one of ``SCORES``) and the threshold its vote uses."""

    score: str
    threshold: float

    def __post_init__(self) -> None:
        if self.score not in SCORES:
            raise ValueError(f"unknown decision score {self.score!r}; known: {list(SCORES)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        score = (
            "the leak probability of each long segment"
            if self.score == "leak_probability"
            else "the LEAK share p_LEAK / (p_LEAK + p_most probable other class) of each long segment"
        )
        return (
            f"LEAK when at least half of the long segments reach {self.threshold:.2f} on {score}; "
            "otherwise the most probable other class"
        )


def leak_class_share(long_class_probs: np.ndarray, leak_output_idx: int) -> np.ndarray:
    probs = np.asarray(long_class_probs, dtype=np.float64)
    leak = probs[:, leak_output_idx]
    other = np.delete(probs, leak_output_idx, axis=1).max(axis=1)
    return leak / np.maximum(leak + other, np.finfo(np.float64).tiny)


def long_rule_scores(rule: DecisionRule, scores: SplitScores) -> np.ndarray:
    """The score ``rule`` votes on, per long segment."""
    if rule.score == "leak_probability":
        return np.asarray(scores.long_leak_probability, dtype=np.float64)
    return leak_class_share(scores.long_class_probs, scores.leak_output_idx)


@dataclass(frozen=True)
class FileDecisions:
    """Per file, in the order of its ``SplitScores``: the vote, the class probabilities and the class."""

    votes: FileScores
    """Mean score, share of long segments over the threshold, vote score and LEAK or not, under the rule."""
    predicted_class: list[str]
    mean_class_probs: np.ndarray
    """``[n_files, n_classes]`` the long segments' class probabilities, averaged per file."""
    class_names: list[str]

    @property
    def decision(self) -> np.ndarray:
        """LEAK or NOLEAK per file."""
        return np.where(self.votes.is_leak, LEAK, NOLEAK)

    def class_probability_columns(self) -> dict[str, np.ndarray]:
        """``p_<class>`` per file for a multiclass model; none for a binary one (its leak score says it all)."""
        if is_binary(self.class_names):
            return {}
        return {f"p_{name}": self.mean_class_probs[:, k] for k, name in enumerate(self.class_names)}


def decide_files(scores: SplitScores, rule: DecisionRule) -> FileDecisions:
    """Each file's vote under ``rule`` and its class, which is LEAK exactly when the vote is."""
    votes = file_vote(long_rule_scores(rule, scores), scores.long_offsets, rule.threshold)
    mean_probs = per_file_mean(scores.long_class_probs, scores.long_offsets)
    return FileDecisions(
        votes, file_classes(mean_probs, votes.is_leak, scores.class_names), mean_probs, scores.class_names
    )


def macro_f1(true_classes: Sequence[str], predicted_classes: Sequence[str]) -> float:
    """Mean F1 over the classes present in the truth (a class nobody has cannot be found)."""
    present = sorted(set(true_classes))
    return float(f1_score(true_classes, predicted_classes, labels=present, average="macro", zero_division=0))


def is_binary(class_names: Sequence[str]) -> bool:
    return list(class_names) == [NOLEAK, LEAK]


def choose_decision_rule(
    scores: SplitScores, true_classes: Sequence[str], thresholds: tuple[float, ...] = THRESHOLDS
) -> tuple[DecisionRule, list[dict[str, Any]]]:
    """The rule of best validation objective, and every candidate's validation figures.

    Ties go to the paper's score, then to the lowest threshold: of equally good choices,
    the one that misses fewer leaks.
    """
    binary = is_binary(scores.class_names)
    candidates = SCORES[:1] if binary else SCORES
    true_leak = np.asarray(true_classes) == LEAK
    curve = []
    for score in candidates:
        for threshold in thresholds:
            decided = decide_files(scores, DecisionRule(score, float(threshold)))
            row = {"score": score, "threshold": float(threshold)}
            row.update(leak_detection_metrics(decided.votes.is_leak, true_leak))
            row["macro_f1"] = macro_f1(true_classes, decided.predicted_class)
            row["objective"] = row["f1"] if binary else (row["f1"] + row["macro_f1"]) / 2
            curve.append(row)
    best = max(curve, key=lambda r: (r["objective"], -candidates.index(r["score"]), -r["threshold"]))
    return DecisionRule(best["score"], best["threshold"]), curve
