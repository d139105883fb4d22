"""Paper-exact file-level scoring: the one rule used for early stopping, evaluation and inference.

Ma et al. (2025): a CNN scores every short segment; the scores are averaged per long
segment; a recording is LEAK when at least half of its long segments reach the
threshold. The replaced system swept the threshold on the test split and then used a
hard-coded 0.5 anyway (docs/architecture.md, D4); here the threshold is swept on validation
only and carried, unchanged, to test and to inference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.metrics import confusion_matrix

from leak_detection.labels import LEAK, NOLEAK

EVAL_METHOD = "paper_exact_file_level_50pct_voting"
THRESHOLDS = tuple(round(0.10 + 0.05 * i, 2) for i in range(17))
"""0.10, 0.15, ..., 0.90: the validation sweep (docs/architecture.md, "Decisions")."""


def segment_leak_probability(
    logits: torch.Tensor, aux_logits: torch.Tensor | None, leak_output_idx: int
) -> torch.Tensor:
    """P(leak) of each segment: ``softmax[LEAK]``, averaged with ``sigmoid(aux)`` when the
    model has the leak-vs-rest head (multiclass)."""
    leak = torch.softmax(logits.float(), dim=1)[:, leak_output_idx]
    if aux_logits is None:
        return leak
    return 0.5 * leak + 0.5 * torch.sigmoid(aux_logits.float())


def long_segment_scores(segment_scores: np.ndarray, n_short: int) -> np.ndarray:
    """Mean score of the short segments of each long segment."""
    scores = np.asarray(segment_scores, dtype=np.float64)
    if scores.size % n_short:
        raise ValueError(f"{scores.size} short-segment scores do not split into groups of {n_short}")
    return scores.reshape(-1, n_short).mean(axis=1)


def _per_file_sum(values: np.ndarray, file_offsets: np.ndarray) -> np.ndarray:
    totals = np.concatenate([[0.0], np.cumsum(values, dtype=np.float64)])
    return totals[file_offsets[1:]] - totals[file_offsets[:-1]]


def vote_score(long_scores: np.ndarray, file_offsets: np.ndarray) -> np.ndarray:
    """Each file's ``ceil(n_long / 2)``-th largest long-segment score.

    It is the highest threshold at which the vote still calls the file LEAK, so
    ``vote_score >= t`` is exactly the vote at ``t``: ranked by it, a file's ROC and PR
    curves pass through the operating point of every threshold. The share of long
    segments over one threshold (what the first version ranked by) is 0 or 1 for a
    file of one long segment, and its "AUC" collapses to (recall + specificity) / 2.
    """
    long_scores = np.asarray(long_scores, dtype=np.float64)
    file_offsets = np.asarray(file_offsets, dtype=np.int64)
    n_long = np.diff(file_offsets)
    file_of_long = np.repeat(np.arange(n_long.size), n_long)
    order = np.lexsort((-long_scores, file_of_long))
    return long_scores[order][file_offsets[:-1] + (n_long + 1) // 2 - 1]


@dataclass(frozen=True)
class FileScores:
    """Per-file results of the vote at one threshold."""

    mean_leak_score: np.ndarray
    fraction_over_threshold: np.ndarray
    vote_score: np.ndarray
    is_leak: np.ndarray
    threshold: float


def file_vote(long_scores: np.ndarray, file_offsets: np.ndarray, threshold: float) -> FileScores:
    """A file is LEAK iff ``count(long_score >= threshold) >= ceil(n_long / 2)``.

    A score equal to the threshold counts as over it; with an even number of long
    segments, exactly half over the threshold is enough.
    """
    long_scores = np.asarray(long_scores, dtype=np.float64)
    file_offsets = np.asarray(file_offsets, dtype=np.int64)
    n_long = np.diff(file_offsets)
    if np.any(n_long <= 0):
        raise ValueError("every file needs at least one long segment to be scored")
    over = _per_file_sum((long_scores >= threshold).astype(np.float64), file_offsets)
    needed = np.array([math.ceil(n / 2) for n in n_long])
    return FileScores(
        mean_leak_score=_per_file_sum(long_scores, file_offsets) / n_long,
        fraction_over_threshold=over / n_long,
        vote_score=vote_score(long_scores, file_offsets),
        is_leak=over >= needed,
        threshold=float(threshold),
    )


def leak_detection_metrics(predicted_leak: np.ndarray, true_leak: np.ndarray) -> dict[str, float]:
    """Counts and rates of LEAK as the positive class; empty ratios are 0, not NaN."""
    predicted = np.asarray(predicted_leak, dtype=bool)
    truth = np.asarray(true_leak, dtype=bool)
    tn, fp, fn, tp = confusion_matrix(truth, predicted, labels=[False, True]).ravel()
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    specificity = tn / (tn + fp) if tn + fp else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "f1": float(f1),
        "precision": float(precision),
        "recall": float(recall),
        "specificity": float(specificity),
        "accuracy": float((tp + tn) / max(len(truth), 1)),
        "tp": int(tp),
        "fp": int(fp),
        "fn": int(fn),
        "tn": int(tn),
    }


def sweep_thresholds(
    long_scores: np.ndarray,
    file_offsets: np.ndarray,
    true_leak: np.ndarray,
    thresholds: tuple[float, ...] = THRESHOLDS,
) -> tuple[float, list[dict[str, float]]]:
    """The threshold with the best file-level leak F1, and the whole curve.

    Ties go to the lowest threshold: of equally good choices, the one that misses
    fewer leaks.
    """
    curve = []
    for threshold in thresholds:
        votes = file_vote(long_scores, file_offsets, threshold)
        curve.append({"threshold": float(threshold), **leak_detection_metrics(votes.is_leak, true_leak)})
    best = max(curve, key=lambda row: (row["f1"], -row["threshold"]))
    return best["threshold"], curve


def per_file_mean(per_long: np.ndarray, file_offsets: np.ndarray) -> np.ndarray:
    """Mean over each file's long segments of a ``[n_long, k]`` array."""
    offsets = np.asarray(file_offsets, dtype=np.int64)
    return np.add.reduceat(np.asarray(per_long, dtype=np.float64), offsets[:-1], axis=0) / np.diff(offsets)[:, None]


def file_classes(mean_class_probs: np.ndarray, is_leak: np.ndarray, class_names: list[str]) -> list[str]:
    """Each file's class: LEAK when the vote says so, else the most probable other class.

    The vote alone decides LEAK, so the class column never contradicts the leak decision.
    """
    if list(class_names) == [NOLEAK, LEAK]:
        return [LEAK if leak else NOLEAK for leak in is_leak]
    others = np.array(mean_class_probs, dtype=np.float64)
    others[:, list(class_names).index(LEAK)] = -np.inf
    return [LEAK if leak else class_names[int(k)] for leak, k in zip(is_leak, others.argmax(axis=1), strict=True)]
