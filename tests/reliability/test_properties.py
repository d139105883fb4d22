"""Properties that must hold for any input, not just the examples we thought of."""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from leak_detection.audio.front_end import FrontEndConfig, count_long_segments, recording_features, resampled_length
from leak_detection.decisions.scoring import file_vote
from leak_detection.features.splits import assign_splits

CONFIG = FrontEndConfig()


@settings(max_examples=40, deadline=None)
@given(seconds=st.floats(0.26, 4.0), rate=st.sampled_from([4096, 8000, 11025, 16000, 22050, 44100, 48000]))
def test_segment_count_for_any_length_and_rate(seconds, rate):
    n = int(seconds * rate)
    samples = np.random.default_rng(n).normal(size=n)
    n_target = resampled_length(n, rate, CONFIG.sample_rate)
    expected = 1 + (n_target - CONFIG.long_segment) // CONFIG.long_hop
    features = recording_features(samples, rate, CONFIG)
    assert features.shape == (expected, 3, 32, 1) == (count_long_segments(n_target, CONFIG), 3, 32, 1)
    assert n_target == math.ceil(n * CONFIG.sample_rate / rate)


@settings(max_examples=200, deadline=None)
@given(
    files=st.lists(st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=12), min_size=1, max_size=8),
    threshold=st.floats(0, 1, allow_nan=False),
)
def test_file_vote_for_any_scores_and_threshold(files, threshold):
    scores = np.concatenate([np.array(f) for f in files])
    offsets = np.concatenate([[0], np.cumsum([len(f) for f in files])])
    votes = file_vote(scores, offsets, threshold)
    for i, f in enumerate(files):
        over = sum(s >= threshold for s in f)
        assert votes.is_leak[i] == (over >= math.ceil(len(f) / 2))
        assert math.isclose(votes.fraction_over_threshold[i], over / len(f))
        assert math.isclose(votes.mean_leak_score[i], sum(f) / len(f), abs_tol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    files=st.lists(
        st.tuples(st.sampled_from(["LEAK", "NORMAL", "QUIET", "RANDOM", "MECHANICAL"]), st.integers(0, 25)),
        min_size=12,
        max_size=120,
    ),
    seed=st.integers(0, 1000),
)
def test_no_group_is_ever_in_two_splits(files, seed):
    labels = [label for label, _ in files]
    groups = [f"g{g}" for _, g in files]
    try:
        splits = assign_splits(labels, groups, {"train": 0.7, "validation": 0.2, "test": 0.1}, seed)
    except ValueError as err:
        assert "too few" in str(err) or "group" in str(err)  # refused, clearly, when it cannot be done
        return
    by_group = {}
    for group, split in zip(groups, splits, strict=True):
        assert by_group.setdefault(group, split) == split
