import pandas as pd
import pytest

from leak_detection.pipelines.mode_comparison.nodes import compare_modes


def metrics(f1, recall):
    test = {
        "f1": f1,
        "precision": 0.8,
        "recall": recall,
        "specificity": 0.9,
        "accuracy": 0.85,
        "roc_auc": 0.9,
        "segment_leak_f1": 0.7,
        "tp": 4,
        "fn": 1,
        "fp": 1,
        "n_leak_files": 5,
    }
    return {
        "test": test,
        "threshold": 0.5,
        "training": {"best_epoch": 3, "epochs_run": 7, "training_seconds": 50.0, "param_count": 617730},
    }


def predictions(files):
    return pd.DataFrame({"file_id": files, "split": "test"})


def test_comparison_names_the_mode_with_the_higher_test_f1():
    comparison, report = compare_modes(
        metrics(0.9, 0.8), metrics(0.8, 1.0), predictions(["a", "b"]), predictions(["b", "a"])
    )
    assert comparison["higher_test_f1"] == "binary"
    assert comparison["test_files"] == 2
    assert comparison["modes"]["multiclass"]["recall"] == 1.0
    assert "| f1 | 0.900 | 0.800 |" in report
    assert "**binary** has the higher test F1" in report


def test_comparison_refuses_different_test_files():
    with pytest.raises(ValueError, match="different files"):
        compare_modes(metrics(0.9, 0.8), metrics(0.8, 1.0), predictions(["a"]), predictions(["b"]))
