"""What a model said about one split's files: the one input of every file decision.

Validation during training, evaluation and prediction all turn segment predictions into
the same per-long-segment scores here, so the file decisions they then make
(``leak_detection.decisions.rules.decide_files``) start from the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from leak_detection.decisions.inference import SegmentPredictions
from leak_detection.decisions.scoring import long_segment_scores
from leak_detection.labels import LEAK


@dataclass(frozen=True)
class SplitScores:
    """Per long segment, the model's leak probability and class probabilities, files in store order.

    Attributes:
        file_ids: the files, in the order of ``long_offsets``.
        long_offsets: ``[n_files + 1]``: file ``i``'s long segments are rows
            ``long_offsets[i]:long_offsets[i + 1]`` of the arrays below.
        long_leak_probability: ``[n_long]`` the segment leak probability (``scoring.segment_leak_probability``)
            averaged over the short segments of each long segment.
        long_class_probs: ``[n_long, n_classes]`` the softmax, averaged the same way.
        class_names: the model's outputs, the columns of ``long_class_probs``.
        file_summaries: ``[n_files, 2 * n_mels]`` each file's log-mel statistics for the familiarity check,
            or None where it is not needed (choosing a rule).
    """

    file_ids: list[str]
    long_offsets: np.ndarray
    long_leak_probability: np.ndarray
    long_class_probs: np.ndarray
    class_names: list[str]
    file_summaries: np.ndarray | None = None

    @classmethod
    def from_predictions(
        cls,
        predictions: SegmentPredictions,
        long_offsets: np.ndarray,
        n_short: int,
        file_ids: Sequence[str],
        class_names: Sequence[str],
        file_summaries: np.ndarray | None = None,
    ) -> SplitScores:
        """Short-segment predictions (long segment by long segment, ``n_short`` each) averaged per long segment."""
        n_classes = predictions.class_probabilities.shape[1]
        return cls(
            file_ids=list(file_ids),
            long_offsets=np.asarray(long_offsets),
            long_leak_probability=long_segment_scores(predictions.leak_probability, n_short),
            long_class_probs=predictions.class_probabilities.reshape(-1, n_short, n_classes).mean(axis=1),
            class_names=list(class_names),
            file_summaries=file_summaries,
        )

    @property
    def leak_output_idx(self) -> int:
        return self.class_names.index(LEAK)

    @property
    def n_long_segments(self) -> np.ndarray:
        """Long segments of each file."""
        return np.diff(self.long_offsets)
