"""Bootstrap intervals: the weighted metrics are sklearn's, resamples respect classes and groups, and
the intervals cover a known answer about as often as they claim."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from leak_detection.metrics.uncertainty import (
    BootstrapSettings,
    FileSample,
    bootstrap_intervals,
    paired_differences,
    resample_weights,
    resampling_units,
    weighted_average_precision,
    weighted_decision_metrics,
    weighted_macro_f1,
    weighted_roc_auc,
)

FAST = BootstrapSettings(resamples=1000, seed=5)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_weighted_metrics_equal_sklearn_with_sample_weights(data):
    n = data.draw(st.integers(4, 30))
    truth = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    score = np.array(data.draw(st.lists(st.sampled_from([0.1, 0.3, 0.5, 0.7, 0.9]), min_size=n, max_size=n)))
    weights = np.array(data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), dtype=float)
    if weights[truth].sum() == 0 or weights[~truth].sum() == 0:
        return
    called = score >= 0.5
    assert weighted_roc_auc(weights, truth, score)[0] == pytest.approx(
        roc_auc_score(truth, score, sample_weight=weights)
    )
    assert weighted_average_precision(weights, truth, score)[0] == pytest.approx(
        average_precision_score(truth, score, sample_weight=weights)
    )
    f1 = np.nan_to_num(weighted_decision_metrics(weights, called, truth)["f1"][0])
    assert f1 == pytest.approx(f1_score(truth, called, sample_weight=weights, zero_division=0))


def test_weighted_macro_f1_equals_sklearn_over_the_classes_present():
    rng = np.random.default_rng(0)
    truth = rng.choice(["LEAK", "NORMAL", "QUIET"], size=50)
    called = np.where(rng.random(50) < 0.7, truth, rng.choice(["LEAK", "NORMAL", "RANDOM"], size=50))
    expected = f1_score(truth, called, labels=["LEAK", "NORMAL", "QUIET"], average="macro", zero_division=0)
    assert weighted_macro_f1(np.ones(50), truth, called)[0] == pytest.approx(expected)


def test_every_resample_keeps_each_class_size():
    classes = np.repeat(["LEAK", "NORMAL"], [7, 30])
    units, strata = resampling_units(classes, None)
    for weights in resample_weights(units, strata, FAST):
        assert (weights[:, :7].sum(axis=1) == 7).all() and (weights[:, 7:].sum(axis=1) == 30).all()


def test_files_of_one_group_are_drawn_together():
    classes = np.repeat(["LEAK", "NORMAL"], [6, 12])
    groups = [f"site{i // 3}" for i in range(18)]  # 6 groups of 3 files
    units, strata = resampling_units(classes, groups)
    weights = np.concatenate(list(resample_weights(units, strata, FAST)))
    for g in range(6):
        block = weights[:, 3 * g : 3 * g + 3]
        assert (block == block[:, :1]).all()


def test_the_same_seed_gives_the_same_intervals():
    rng = np.random.default_rng(1)
    sample = FileSample(rng.random(80) < 0.3, rng.random(80) < 0.3, rng.random(80))
    assert bootstrap_intervals(sample, None, FAST) == bootstrap_intervals(sample, None, FAST)


def test_too_few_resamples_are_refused():
    with pytest.raises(ValueError, match="resamples must be an integer >= 1000"):
        BootstrapSettings(resamples=200)


def test_intervals_cover_the_true_recall_and_auc_about_95_percent_of_the_time():
    # Known answers: each leak is found with probability 0.8 (recall 0.8); leak and non-leak
    # scores are normal with means 1 apart, so AUC = Phi(1 / sqrt(2)).
    rng = np.random.default_rng(2026)
    true_auc = norm.cdf(1 / np.sqrt(2))
    truth = np.repeat([True, False], [60, 90])
    covered = {"recall": 0, "roc_auc": 0}
    trials = 200
    for trial in range(trials):
        score = rng.normal(size=truth.size) + truth
        found = truth & (rng.random(truth.size) < 0.8)
        sample = FileSample(truth, found | (~truth & (score > 1.5)), score)
        intervals = bootstrap_intervals(sample, None, BootstrapSettings(resamples=1000, seed=trial))
        covered["recall"] += intervals["recall"][0] <= 0.8 <= intervals["recall"][1]
        covered["roc_auc"] += intervals["roc_auc"][0] <= true_auc <= intervals["roc_auc"][1]
    for metric, hits in covered.items():
        assert 0.88 <= hits / trials <= 0.99, (metric, hits / trials)


def test_the_paired_difference_of_a_model_with_itself_is_exactly_zero():
    rng = np.random.default_rng(3)
    sample = FileSample(rng.random(60) < 0.4, rng.random(60) < 0.4, rng.random(60))
    differences = paired_differences(sample, sample, None, FAST)
    assert all(d["difference"] == 0 and d["interval"] == [0.0, 0.0] for d in differences.values())
    assert not any(d["excludes_zero"] for d in differences.values())
