"""Segment predictions become one split's long-segment scores the same way for validation, evaluation and predict."""

import numpy as np

from leak_detection.decisions.inference import SegmentPredictions
from leak_detection.decisions.split_scores import SplitScores


def test_short_segment_predictions_are_averaged_per_long_segment():
    # Two files: the first with two long segments, the second with one; three short segments each.
    leak = np.array([0.1, 0.2, 0.3, 0.9, 0.9, 0.6, 0.4, 0.4, 0.4])
    classes = np.stack([1 - leak, leak], axis=1)
    predictions = SegmentPredictions(classes, leak, mean_loss=None, accuracy=None)
    scores = SplitScores.from_predictions(predictions, np.array([0, 2, 3]), 3, ["a.wav", "b.wav"], ["NOLEAK", "LEAK"])
    np.testing.assert_allclose(scores.long_leak_probability, [0.2, 0.8, 0.4])
    np.testing.assert_allclose(scores.long_class_probs, [[0.8, 0.2], [0.2, 0.8], [0.6, 0.4]])
    assert scores.n_long_segments.tolist() == [2, 1] and scores.leak_output_idx == 1
    assert scores.file_ids == ["a.wav", "b.wav"] and scores.file_summaries is None
