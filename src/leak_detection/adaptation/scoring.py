"""A model's view of a set of files, and the before/after figures of an adaptation.

The files are decided by the same chain as evaluation and predict (``decisions.split_scores`` then
``decisions.rules.decide_files``), so the figures here are the figures evaluation would give.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from leak_detection.decisions.inference import predict_segments
from leak_detection.decisions.rules import DecisionRule, decide_files
from leak_detection.decisions.split_scores import SplitScores
from leak_detection.labels import LEAK
from leak_detection.metrics.uncertainty import BootstrapSettings, FileSample, bootstrap_intervals, paired_differences

REPORTED = ("f1", "precision", "recall", "roc_auc")


def score_files(
    network: torch.nn.Module,
    segments: np.ndarray,
    long_offsets: np.ndarray,
    file_ids: list[str],
    class_names: list[str],
    batch_size: int,
) -> SplitScores:
    """The model's per-long-segment scores of ``segments`` (``[n_long, n_short, n_mels, n_frames]``)."""
    n_long, n_short, n_mels, n_frames = segments.shape
    x = torch.from_numpy(np.ascontiguousarray(segments, dtype=np.float32)).reshape(-1, 1, n_mels, n_frames)
    predictions = predict_segments(network, [(x, None, None)], class_names.index(LEAK), batch_size=batch_size)
    return SplitScores.from_predictions(predictions, long_offsets, n_short, file_ids, class_names)


def file_sample(scores: SplitScores, rule: DecisionRule, true_leak: np.ndarray) -> FileSample:
    decided = decide_files(scores, rule)
    return FileSample(true_leak=true_leak, predicted_leak=decided.votes.is_leak, score=decided.votes.vote_score)


def before_and_after(
    before: FileSample, after: FileSample, groups: list[str] | None, bootstrap: BootstrapSettings
) -> dict[str, Any]:
    """Each reported metric before and after with its interval, and the paired change with its interval."""
    observed_before, observed_after = before.observed(), after.observed()
    intervals_before = bootstrap_intervals(before, groups, bootstrap)
    intervals_after = bootstrap_intervals(after, groups, bootstrap)
    change = paired_differences(after, before, groups, bootstrap)
    return {
        "files": int(before.true_leak.size),
        "leak_files": int(before.true_leak.sum()),
        "metrics": {
            key: {
                "before": observed_before[key],
                "before_interval": intervals_before[key],
                "after": observed_after[key],
                "after_interval": intervals_after[key],
                "change": change[key]["difference"],
                "change_interval": change[key]["interval"],
            }
            for key in REPORTED
        },
    }
