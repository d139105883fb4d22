import numpy as np
import pytest
import torch

from leak_detection.decisions.scoring import (
    THRESHOLDS,
    file_vote,
    leak_detection_metrics,
    long_segment_scores,
    segment_leak_probability,
    sweep_thresholds,
)


def vote(scores, threshold):
    return bool(file_vote(np.array(scores), np.array([0, len(scores)]), threshold).is_leak[0])


@pytest.mark.parametrize(
    "scores, expected",
    [
        ([0.9, 0.9, 0.1], True),  # 2 of 3 >= ceil(3/2) = 2
        ([0.9, 0.1, 0.1], False),  # 1 of 3
        ([0.9, 0.9, 0.1, 0.1], True),  # exactly half of an even count is enough
        ([0.9, 0.1, 0.1, 0.1], False),
        ([0.9], True),
        ([0.1], False),
        ([0.5, 0.5, 0.0], True),  # a score equal to the threshold counts
        ([0.4999, 0.5, 0.0], False),
    ],
)
def test_the_file_vote(scores, expected):
    assert vote(scores, 0.5) is expected


def test_vote_per_file_with_offsets():
    long_scores = np.array([0.9, 0.9, 0.1, 0.2, 0.3, 0.7, 0.7])
    result = file_vote(long_scores, np.array([0, 3, 5, 7]), 0.5)
    np.testing.assert_array_equal(result.is_leak, [True, False, True])
    np.testing.assert_allclose(result.fraction_over_threshold, [2 / 3, 0, 1])
    np.testing.assert_allclose(result.mean_leak_score, [1.9 / 3, 0.25, 0.7])


def test_long_segment_score_is_the_mean_of_its_short_segments():
    np.testing.assert_allclose(long_segment_scores([0.1, 0.2, 0.6, 1.0, 1.0, 0.4], 3), [0.3, 0.8])


def test_segment_leak_probability_by_mode():
    logits = torch.tensor([[0.0, 0.0], [2.0, -2.0]])
    binary = segment_leak_probability(logits, None, leak_output_idx=1)
    torch.testing.assert_close(binary, torch.softmax(logits, 1)[:, 1])
    logits5 = torch.zeros(1, 5)
    multi = segment_leak_probability(logits5, torch.tensor([0.0]), leak_output_idx=0)
    torch.testing.assert_close(multi, torch.tensor([0.5 * 0.2 + 0.5 * 0.5]))


def test_metrics_against_hand_computed_values():
    truth = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], bool)
    pred = np.array([1, 1, 1, 0, 1, 0, 0, 0, 0, 0], bool)
    m = leak_detection_metrics(pred, truth)
    assert (m["tp"], m["fn"], m["fp"], m["tn"]) == (3, 1, 1, 5)
    assert m["precision"] == pytest.approx(3 / 4)
    assert m["recall"] == pytest.approx(3 / 4)
    assert m["specificity"] == pytest.approx(5 / 6)
    assert m["f1"] == pytest.approx(0.75)
    assert m["accuracy"] == pytest.approx(0.8)


def test_no_predicted_leak_gives_zero_not_nan():
    m = leak_detection_metrics(np.zeros(4, bool), np.array([1, 0, 0, 0], bool))
    assert m["precision"] == 0.0 and m["f1"] == 0.0 and m["recall"] == 0.0


def test_sweep_picks_the_best_threshold_and_returns_the_curve():
    # Leak files score 0.62, others 0.3 and 0.58: only 0.60 separates them exactly.
    long_scores = np.array([0.62, 0.62, 0.3, 0.3, 0.58, 0.58])
    offsets = np.array([0, 2, 4, 6])
    best, curve = sweep_thresholds(long_scores, offsets, np.array([True, False, False]))
    assert best == 0.6
    assert [row["threshold"] for row in curve] == list(THRESHOLDS)
    assert THRESHOLDS[0] == 0.1 and THRESHOLDS[-1] == 0.9 and len(THRESHOLDS) == 17
