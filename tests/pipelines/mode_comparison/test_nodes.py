import numpy as np
import pandas as pd
import pytest

from leak_detection.pipelines.mode_comparison.nodes import compare_modes, files_to_settle, stale_report

BOOTSTRAP = {"resamples": 1000, "confidence": 0.95, "seed": 3}


def metrics(mode, version="V1"):
    return {
        "mode": mode,
        "model_version": version,
        "dataset_fingerprint": f"{mode}-data",
        "threshold": 0.5,
        "decision_rule": {"score": "leak_probability", "threshold": 0.5, "description": "the vote at 0.5"},
        "test": {"macro_f1": 0.6} if mode == "multiclass" else {},
        "training": {"best_epoch": 3, "epochs_run": 7, "training_seconds": 50.0, "param_count": 617730},
    }


def predictions(truth, score, threshold=0.5, files=None, groups=None):
    truth = np.asarray(truth, dtype=bool)
    files = files if files is not None else [f"f{i:03d}" for i in range(truth.size)]
    labels = np.where(truth, "LEAK", "NORMAL")
    return pd.DataFrame(
        {
            "file_id": files,
            "split": "test",
            "group": groups if groups is not None else files,
            "true_label": labels,
            "true_class": np.where(truth, "LEAK", "NOLEAK"),
            "vote_score": score,
            "decision": np.where(np.asarray(score) >= threshold, "LEAK", "NOLEAK"),
            "predicted_class": np.where(np.asarray(score) >= threshold, "LEAK", "NOLEAK"),
        }
    )


def model_scores(truth, skill, seed):
    """Scores that separate leaks from the rest by ``skill`` standard deviations."""
    rng = np.random.default_rng(seed)
    return 1 / (1 + np.exp(-(rng.normal(size=truth.size) + skill * (truth - 0.5))))


@pytest.fixture
def truth():
    return np.repeat([True, False], [60, 140])


def test_identical_models_name_no_winner_and_say_what_would_settle_it(truth):
    table = predictions(truth, model_scores(truth, 1.5, seed=0))
    comparison, report = compare_modes(metrics("binary"), metrics("multiclass"), table, table.copy(), BOOTSTRAP)
    assert comparison["better_mode"] is None
    difference = comparison["difference_binary_minus_multiclass"]["f1"]
    assert difference["difference"] == 0 and difference["interval"] == [0.0, 0.0]
    assert "**No significant difference** on 200 test files" in report
    assert "make the same calls" in report


def test_a_clearly_better_model_is_named_with_the_interval_of_its_lead(truth):
    weak = predictions(truth, model_scores(truth, 0.5, seed=1))
    strong = predictions(truth, model_scores(truth, 4.0, seed=2))
    comparison, report = compare_modes(metrics("binary"), metrics("multiclass"), weak, strong, BOOTSTRAP)
    assert comparison["better_mode"] == "multiclass"
    low, high = comparison["difference_binary_minus_multiclass"]["f1"]["interval"]
    assert high < 0
    assert "**multiclass** finds leaks better" in report


def test_a_small_difference_on_few_files_is_not_a_winner():
    truth = np.repeat([True, False], [6, 14])
    first = predictions(truth, np.where(truth, 0.8, 0.2))
    second = first.copy()
    second.loc[0, ["decision", "predicted_class"]] = "NOLEAK"  # one leak missed
    second.loc[0, "vote_score"] = 0.3
    comparison, report = compare_modes(metrics("binary"), metrics("multiclass"), first, second, BOOTSTRAP)
    assert comparison["difference_binary_minus_multiclass"]["f1"]["difference"] > 0
    assert comparison["better_mode"] is None
    assert "about" in report and "test files (with as many groups)" in report


def test_the_report_names_both_versions_and_data_fingerprints(truth):
    table = predictions(truth, model_scores(truth, 1.5, seed=0))
    comparison, report = compare_modes(
        metrics("binary", "B1"), metrics("multiclass", "M7"), table, table.copy(), BOOTSTRAP
    )
    assert comparison["modes"]["binary"]["model_version"] == "B1"
    assert comparison["modes"]["multiclass"]["model_version"] == "M7"
    assert "`binary-data`" in report and "`multiclass-data`" in report
    assert "| f1 | 0." in report and "[" in report


def test_models_of_different_splits_are_compared_on_the_test_files_they_share(truth):
    scores = model_scores(truth, 1.5, seed=0)
    binary = predictions(truth, scores)
    multiclass = predictions(truth[:150], scores[:150])
    comparison, report = compare_modes(metrics("binary"), metrics("multiclass"), binary, multiclass, BOOTSTRAP)
    assert comparison["test_files"] == 150
    assert "compared on the 150 test files both never trained on" in report


def test_comparison_refuses_models_that_share_no_test_file():
    a = predictions([True, False], [0.9, 0.1], files=["a", "b"])
    b = predictions([True, False], [0.9, 0.1], files=["c", "d"])
    with pytest.raises(ValueError, match="share no test file.*kedro run --pipelines training"):
        compare_modes(metrics("binary"), metrics("multiclass"), a, b, BOOTSTRAP)


def test_settling_size_grows_as_the_difference_shrinks():
    wide = {"difference": 0.05, "interval": [-0.1, 0.2]}
    assert files_to_settle(40, wide) == 40 * 9  # reach to zero's side 0.15 = 3 x the difference
    assert files_to_settle(40, {"difference": -0.05, "interval": [-0.3, 0.05]}) == 40 * 4
    assert files_to_settle(40, {"difference": 0.0, "interval": [0.0, 0.0]}) is None


def test_a_stale_report_keeps_its_content_under_one_banner():
    comparison, report = stale_report({"better_mode": None}, "# Binary vs multiclass\n\ntable", "binary moved on")
    again, report_again = stale_report(comparison, report, "binary moved on again")
    assert again["stale"] == "binary moved on again"
    assert report_again.count("**Stale**") == 1 and report_again.endswith("# Binary vs multiclass\n\ntable")
