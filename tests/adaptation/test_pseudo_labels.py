"""Pseudo-label selection: per class, the most confident fraction above a floor, and nothing invented."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leak_detection.adaptation.pseudo_labels import (
    PseudoLabelError,
    PseudoLabelSettings,
    select_pseudo_labels,
)

CLASSES = ["NOLEAK", "LEAK"]


def probs_for(leak_probability: np.ndarray) -> np.ndarray:
    return np.stack([1 - leak_probability, leak_probability], axis=1)


def test_each_class_keeps_its_most_confident_half():
    leak = np.array([0.99, 0.95, 0.9, 0.85, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06])
    labels = select_pseudo_labels(probs_for(leak), CLASSES, PseudoLabelSettings(0.5, 0.6, 1))
    assert list(labels.long_index) == [0, 1, 4, 5, 6]
    assert list(labels.classes) == [1, 1, 0, 0, 0]
    rows = {row["class"]: row for row in labels.per_class}
    assert rows["LEAK"] == {
        "class": "LEAK",
        "predicted": 4,
        "confident": 2,
        "kept": 2,
        "dropped_beyond_fraction": 2,
        "dropped_below_confidence": 0,
        "left_out": False,
    }
    assert rows["NOLEAK"]["predicted"] == 6 and rows["NOLEAK"]["kept"] == 3


def test_segments_below_the_confidence_floor_are_dropped_even_in_the_top_fraction():
    leak = np.array([0.99, 0.65, 0.62, 0.61, 0.01, 0.02])
    labels = select_pseudo_labels(probs_for(leak), CLASSES, PseudoLabelSettings(1.0, 0.9, 1))
    assert list(labels.long_index) == [0, 4, 5]
    assert {row["class"]: row["dropped_below_confidence"] for row in labels.per_class} == {"NOLEAK": 0, "LEAK": 3}


def test_a_class_with_too_few_confident_segments_is_left_out_not_invented():
    leak = np.array([0.99, 0.01, 0.02, 0.03, 0.04])
    labels = select_pseudo_labels(probs_for(leak), CLASSES, PseudoLabelSettings(1.0, 0.6, 2))
    assert labels.left_out == ["LEAK"]
    assert set(labels.classes) == {0}
    assert {row["class"]: row["kept"] for row in labels.per_class} == {"NOLEAK": 4, "LEAK": 0}


def test_no_confident_class_at_all_is_refused_with_the_counts_and_the_fix():
    leak = np.full(10, 0.55)
    with pytest.raises(PseudoLabelError, match=r"LEAK: 0.*min_confidence"):
        select_pseudo_labels(probs_for(leak), CLASSES, PseudoLabelSettings(0.5, 0.9, 1))


@pytest.mark.parametrize(
    "bad", [{"keep_fraction": 0}, {"keep_fraction": 1.5}, {"min_confidence": 1}, {"min_segments_per_class": 0}]
)
def test_settings_out_of_range_name_the_parameter(bad):
    with pytest.raises(ValueError, match=f"adaptation.pseudo_labels.{next(iter(bad))}"):
        PseudoLabelSettings(**bad)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=1, max_value=60),
    st.integers(min_value=2, max_value=5),
    st.floats(min_value=0.05, max_value=1.0),
    st.integers(min_value=0, max_value=2**31 - 1),
)
def test_kept_segments_are_predicted_confident_and_at_most_the_fraction_per_class(n, n_classes, fraction, seed):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(n_classes), size=n)
    names = [f"C{i}" for i in range(n_classes)]
    choice = PseudoLabelSettings(keep_fraction=fraction, min_confidence=0.3, min_segments_per_class=1)
    try:
        labels = select_pseudo_labels(probs, names, choice)
    except PseudoLabelError:
        # Each class's most confident segment is in its top fraction, so only an all-unsure set is refused.
        assert (probs.max(axis=1) < 0.3).all()
        return
    assert (labels.classes == probs[labels.long_index].argmax(axis=1)).all()
    assert (labels.confidence >= 0.3).all()
    for row, c in zip(labels.per_class, range(n_classes), strict=True):
        assert row["kept"] == (labels.classes == c).sum() <= np.ceil(fraction * row["predicted"])
