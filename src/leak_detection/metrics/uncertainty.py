"""How sure a file-level figure is: a stratified, group-aware bootstrap, and a paired one for two models.

A test split of 39 files moves F1 by 0.1 with one file; on the demo, two runs with
another dropout stream swapped which mode "won". Every figure users decide from
therefore carries a percentile interval from resampling the test set the way it was
drawn: groups (site, sensor, source recording) move together when files share them,
and each class keeps its size in every resample, so a resample never lacks leaks.

A resample is a vector of weights (how often each file was drawn); every metric is
computed for a block of resamples at once from those weights, so 2,000 resamples of
thousands of files take well under a second.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from leak_detection.labels import LEAK, NOLEAK

DECISION_METRICS = ("accuracy", "precision", "recall", "specificity", "f1")
RANKING_METRICS = ("roc_auc", "average_precision")


@dataclass(frozen=True)
class BootstrapSettings:
    resamples: int = 2000
    confidence: float = 0.95
    seed: int = 20261127

    def __post_init__(self) -> None:
        if isinstance(self.resamples, bool) or not isinstance(self.resamples, int) or self.resamples < 1000:
            raise ValueError(f"bootstrap.resamples must be an integer >= 1000, got {self.resamples!r}")
        if not 0.5 <= self.confidence < 1:
            raise ValueError(f"bootstrap.confidence must be in [0.5, 1), got {self.confidence!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"bootstrap.seed must be an integer >= 0, got {self.seed!r}")

    @classmethod
    def from_params(cls, params: dict[str, Any] | None) -> BootstrapSettings:
        params = dict(params or {})
        unknown = set(params) - {"resamples", "confidence", "seed"}
        if unknown:
            raise ValueError(f"bootstrap: unknown keys {sorted(unknown)}; allowed ['confidence', 'resamples', 'seed']")
        return cls(**params)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FileSample:
    """Test files as the bootstrap sees them: truth, decision and threshold-free score."""

    true_leak: np.ndarray
    predicted_leak: np.ndarray
    score: np.ndarray
    true_class: np.ndarray | None = None
    predicted_class: np.ndarray | None = None

    @classmethod
    def from_predictions(cls, predictions: pd.DataFrame, with_classes: bool = True) -> FileSample:
        """From a ``file_predictions`` table; classes only when the model names more than LEAK / NOLEAK."""
        multiclass = with_classes and bool(set(predictions["true_class"]) - {LEAK, NOLEAK})
        return cls(
            true_leak=(predictions["true_label"] == LEAK).to_numpy(),
            predicted_leak=(predictions["decision"] == LEAK).to_numpy(),
            score=predictions["vote_score"].to_numpy(dtype=np.float64),
            true_class=predictions["true_class"].to_numpy(dtype=str) if multiclass else None,
            predicted_class=predictions["predicted_class"].to_numpy(dtype=str) if multiclass else None,
        )

    def observed(self) -> dict[str, float]:
        """Each metric on the sample itself (every file drawn once)."""
        return {k: float(v[0]) for k, v in sample_metrics(self, np.ones((1, self.true_leak.size))).items()}


def resampling_units(true_classes: Sequence[str], groups: Sequence[str] | None) -> tuple[np.ndarray, np.ndarray]:
    """``unit_of_file`` and ``stratum_of_unit``: groups when files share them, else files.

    A group's stratum is its most common class (ties to the first name in sorted order).
    """
    true_classes = np.asarray(true_classes, dtype=str)
    if groups is None or len(set(groups)) == len(true_classes):
        _, strata = np.unique(true_classes, return_inverse=True)
        return np.arange(true_classes.size), strata
    group_names, unit_of_file = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    class_names, class_of_file = np.unique(true_classes, return_inverse=True)
    counts = np.zeros((group_names.size, class_names.size), dtype=np.int64)
    np.add.at(counts, (unit_of_file, class_of_file), 1)
    return unit_of_file, counts.argmax(axis=1)


def resample_weights(
    unit_of_file: np.ndarray, stratum_of_unit: np.ndarray, settings: BootstrapSettings, block: int = 256
) -> Iterator[np.ndarray]:
    """Blocks of ``[resamples, n_files]`` draw counts; each stratum keeps its number of units."""
    rng = np.random.default_rng(settings.seed)
    n_units = stratum_of_unit.size
    members = [np.flatnonzero(stratum_of_unit == s) for s in np.unique(stratum_of_unit)]
    for start in range(0, settings.resamples, block):
        rows = min(block, settings.resamples - start)
        drawn = np.concatenate([m[rng.integers(0, m.size, size=(rows, m.size))] for m in members], axis=1)
        flat = drawn + n_units * np.arange(rows)[:, None]
        unit_counts = np.bincount(flat.ravel(), minlength=rows * n_units).reshape(rows, n_units)
        yield unit_counts[:, unit_of_file].astype(np.float64)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan)


def weighted_decision_metrics(weights: np.ndarray, predicted: np.ndarray, truth: np.ndarray) -> dict[str, np.ndarray]:
    """LEAK-as-positive rates for each row of weights; NaN where a rate is undefined."""
    w = np.atleast_2d(weights)
    tp, fp = w @ (predicted & truth), w @ (predicted & ~truth)
    fn, tn = w @ (~predicted & truth), w @ (~predicted & ~truth)
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return {
        "accuracy": _ratio(tp + tn, tp + tn + fp + fn),
        "precision": precision,
        "recall": recall,
        "specificity": _ratio(tn, tn + fp),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
    }


def _tie_groups(score: np.ndarray, descending: bool) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-score if descending else score, kind="stable")
    sorted_scores = score[order]
    starts = np.flatnonzero(np.concatenate([[True], sorted_scores[1:] != sorted_scores[:-1]]))
    return order, starts


def weighted_roc_auc(weights: np.ndarray, truth: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUC with ties counted half, for each row of weights (sklearn's for integer weights)."""
    w = np.atleast_2d(weights)
    order, starts = _tie_groups(score, descending=False)
    pos = np.add.reduceat(w[:, order] * truth[order], starts, axis=1)
    neg = np.add.reduceat(w[:, order] * ~truth[order], starts, axis=1)
    neg_below = np.cumsum(neg, axis=1) - neg
    won = (pos * (neg_below + 0.5 * neg)).sum(axis=1)
    return _ratio(won, pos.sum(axis=1) * neg.sum(axis=1))


def weighted_average_precision(weights: np.ndarray, truth: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Step-wise average precision (sklearn's definition), for each row of weights."""
    w = np.atleast_2d(weights)
    order, starts = _tie_groups(score, descending=True)
    tp = np.cumsum(np.add.reduceat(w[:, order] * truth[order], starts, axis=1), axis=1)
    seen = np.cumsum(np.add.reduceat(w[:, order], starts, axis=1), axis=1)
    positives = tp[:, -1:]
    recall_steps = np.diff(np.concatenate([np.zeros_like(positives), tp], axis=1), axis=1)
    # Where nothing has been drawn yet, recall does not step either: that precision counts 0.
    precision = np.nan_to_num(_ratio(tp, seen), nan=0.0)
    return _ratio((recall_steps * precision).sum(axis=1), positives[:, 0])


def weighted_macro_f1(weights: np.ndarray, true_class: np.ndarray, predicted_class: np.ndarray) -> np.ndarray:
    """Mean F1 over the classes present in the unweighted truth."""
    w = np.atleast_2d(weights)
    scores = []
    for name in np.unique(true_class):
        is_true, is_called = true_class == name, predicted_class == name
        scores.append(_ratio(2 * (w @ (is_true & is_called)), w @ is_true + w @ is_called))
    return np.nan_to_num(np.mean(scores, axis=0), nan=0.0)


def sample_metrics(sample: FileSample, weights: np.ndarray) -> dict[str, np.ndarray]:
    truth, called = sample.true_leak.astype(bool), sample.predicted_leak.astype(bool)
    metrics = weighted_decision_metrics(weights, called, truth)
    metrics["roc_auc"] = weighted_roc_auc(weights, truth, sample.score)
    metrics["average_precision"] = weighted_average_precision(weights, truth, sample.score)
    if sample.true_class is not None:
        metrics["macro_f1"] = weighted_macro_f1(weights, sample.true_class, sample.predicted_class)
    return metrics


def resampling_description(groups: Sequence[str], settings: BootstrapSettings) -> dict[str, Any]:
    """What ``metrics.json`` and the comparison say about how intervals were made."""
    return {
        **settings.to_dict(),
        "unit": "group" if len(set(groups)) < len(groups) else "file",
        "stratified_by": "true class",
        "method": "percentile",
    }


def _percentiles(values: np.ndarray, confidence: float) -> list[float] | None:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None
    tail = 100 * (1 - confidence) / 2
    return [float(v) for v in np.percentile(finite, [tail, 100 - tail])]


def _draws(sample: FileSample, groups: Sequence[str] | None, settings: BootstrapSettings) -> Iterator[np.ndarray]:
    strata_source = sample.true_class if sample.true_class is not None else sample.true_leak.astype(str)
    return resample_weights(*resampling_units(strata_source, groups), settings)


def bootstrap_intervals(
    sample: FileSample, groups: Sequence[str] | None, settings: BootstrapSettings
) -> dict[str, list[float] | None]:
    """The ``confidence`` percentile interval of each metric (None where no resample defines it)."""
    blocks = [sample_metrics(sample, w) for w in _draws(sample, groups, settings)]
    return {k: _percentiles(np.concatenate([b[k] for b in blocks]), settings.confidence) for k in blocks[0]}


def paired_differences(
    first: FileSample, second: FileSample, groups: Sequence[str] | None, settings: BootstrapSettings
) -> dict[str, dict[str, Any]]:
    """``first - second`` for each metric on the same resamples of the same files.

    ``excludes_zero`` is true when the interval of the difference lies wholly on one side of 0.
    """
    observed_first, observed_second = first.observed(), second.observed()
    blocks = []
    for w in _draws(first, groups, settings):
        of_first, of_second = sample_metrics(first, w), sample_metrics(second, w)
        blocks.append({k: of_first[k] - of_second[k] for k in of_first})
    result = {}
    for key in blocks[0]:
        interval = _percentiles(np.concatenate([b[key] for b in blocks]), settings.confidence)
        result[key] = {
            "difference": observed_first[key] - observed_second[key],
            "interval": interval,
            "excludes_zero": interval is not None and (interval[0] > 0 or interval[1] < 0),
        }
    return result
