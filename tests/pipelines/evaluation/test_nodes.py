import numpy as np
import pandas as pd
import pytest

from leak_detection.decisions.split_scores import SplitScores
from leak_detection.pipelines.evaluation.nodes import choose_rule, evaluation_metrics, predict_files

META = {
    "model_type": "LeakCNNMulti",
    "state_dict_sha256": "0" * 64,
    "mode": "binary",
    "num_classes": 2,
    "class_names": ["NOLEAK", "LEAK"],
    "eval_method": "paper_exact_file_level_50pct_voting",
    "threshold": 0.6,
    "leak_output_idx": 1,
    "feature_config": {"sample_rate": 4096, "long_segment": 1024, "long_hop": 512},
}
RULE = {"score": "leak_probability", "threshold": 0.6}
EVALUATION = {"bootstrap": {"resamples": 1000, "confidence": 0.95, "seed": 1}}
SPLIT_CHECK = {"agrees": True}


def split_scores(file_scores, prefix):
    """Segment scores for files given as lists of long-segment scores (3 equal short segments each)."""
    long_scores = np.concatenate([np.asarray(s, float) for s in file_scores])
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in file_scores])])
    probs = np.stack([1 - long_scores, long_scores], axis=1)
    return SplitScores(
        [f"{prefix}{i}" for i in range(len(file_scores))], offsets, long_scores, probs, META["class_names"]
    )


@pytest.fixture
def crafted():
    # Validation: leaks score 0.65, non-leaks 0.55 -> only thresholds 0.60/0.65 separate them.
    # Test: leaks score 0.35, non-leaks 0.2 -> on test alone 0.25..0.35 would be best.
    scores = {
        "validation": split_scores([[0.65, 0.65], [0.65, 0.65, 0.65], [0.55, 0.55], [0.55]], "v"),
        "test": split_scores([[0.35, 0.35], [0.7, 0.7, 0.2], [0.2, 0.2], [0.65, 0.1], [0.1]], "t"),
    }
    targets = pd.DataFrame(
        {
            "file_id": ["v0", "v1", "v2", "v3", "t0", "t1", "t2", "t3", "t4"],
            "split": ["validation"] * 4 + ["test"] * 5,
            "label": ["LEAK", "LEAK", "NORMAL", "QUIET", "LEAK", "LEAK", "RANDOM", "MECHANICAL", "QUIET"],
            "group": ["g0", "g0", "g1", "g1", "s1", "s2", "s1", "s2", "s2"],
            "target": [1, 1, 0, 0, 1, 1, 0, 0, 0],
        }
    )
    return scores, targets


def test_the_threshold_comes_from_validation_even_when_test_would_prefer_another(crafted):
    scores, targets = crafted
    curve, rule = choose_rule(scores, targets, META)
    assert rule == RULE
    assert len(curve) == 17 and curve.loc[curve["f1"].idxmax(), "threshold"] == 0.6
    predictions = predict_files(scores, targets, rule, META)
    test = predictions[predictions["split"] == "test"].set_index("file_id")
    # At 0.6, test leak t0 (0.35) is missed although 0.3 would have caught it.
    assert test["decision"].to_dict() == {"t0": "NOLEAK", "t1": "LEAK", "t2": "NOLEAK", "t3": "LEAK", "t4": "NOLEAK"}
    assert test.loc["t1", "fraction_over_threshold"] == pytest.approx(2 / 3)
    assert test.loc["t3", "fraction_over_threshold"] == pytest.approx(0.5)  # half of an even count is LEAK


def test_metrics_on_crafted_predictions_match_hand_computed_values(crafted):
    scores, targets = crafted
    predictions = predict_files(scores, targets, RULE, META)
    metrics = evaluation_metrics(predictions, scores, RULE, SPLIT_CHECK, {**META, "model_version": "V1"}, EVALUATION)
    assert metrics["model_version"] == "V1"
    test = metrics["test"]
    # Test files: t0 FN, t1 TP, t2 TN, t3 FP, t4 TN.
    assert (test["tp"], test["fn"], test["fp"], test["tn"]) == (1, 1, 1, 2)
    assert test["precision"] == pytest.approx(0.5)
    assert test["recall"] == pytest.approx(0.5)
    assert test["specificity"] == pytest.approx(2 / 3)
    assert test["f1"] == pytest.approx(0.5)
    assert test["accuracy"] == pytest.approx(0.6)
    # Vote scores (the ceil(n/2)-th largest long score): leaks t0 0.35, t1 0.7; non-leaks t2 0.2, t3 0.65,
    # t4 0.1. Pairs won: t0 beats t2, t4 (2 of 3); t1 beats all 3 -> AUC 5/6.
    assert test["roc_auc"] == pytest.approx(5 / 6)
    # Ranked t1 (leak), t3, t0 (leak), ...: precision 1 at recall 1/2, 2/3 at recall 1 -> AP 5/6.
    assert test["average_precision"] == pytest.approx(5 / 6)
    # Long segments: t0 2 FN, t1 2 TP + 1 FN, t3 1 FP -> P 2/3, R 2/5.
    assert test["long_segment_leak_f1"] == pytest.approx(2 * (2 / 3) * (2 / 5) / (2 / 3 + 2 / 5))
    low, high = test["intervals"]["f1"]
    assert low <= test["f1"] <= high
    assert metrics["test_confusion_matrix"]["rows_true_columns_predicted"] == [[2, 1], [1, 1]]
    assert metrics["test_leak_calls_by_true_class"] == {
        "LEAK": 1,
        "NORMAL": 0,
        "QUIET": 0,
        "RANDOM": 0,
        "MECHANICAL": 1,
    }
    by_group = {row["group"]: row for row in metrics["test_by_group"]}
    assert by_group["s1"]["fn"] == 1 and by_group["s1"]["tn"] == 1
    assert by_group["s2"]["tp"] == 1 and by_group["s2"]["fp"] == 1 and by_group["s2"]["tn"] == 1


def test_multiclass_file_class_follows_the_vote_then_the_most_probable_other_class():
    names = ["LEAK", "NORMAL", "QUIET", "RANDOM", "MECHANICAL"]
    meta = {**META, "mode": "multiclass", "num_classes": 5, "class_names": names, "leak_output_idx": 0}
    probs = np.array([[0.6, 0.1, 0.1, 0.1, 0.1], [0.5, 0.1, 0.3, 0.05, 0.05], [0.1, 0.1, 0.1, 0.1, 0.6]])
    scored = SplitScores(["a", "b", "c"], np.array([0, 1, 2, 3]), probs[:, 0], probs, names)
    targets = pd.DataFrame(
        {
            "file_id": ["a", "b", "c"],
            "split": "test",
            "label": ["LEAK", "QUIET", "MECHANICAL"],
            "group": "g",
            "target": [0, 2, 4],
        }
    )
    rule = {"score": "leak_probability", "threshold": 0.55}
    table = predict_files({"validation": scored, "test": scored}, targets, rule, meta)
    test = table[table["split"] == "test"].set_index("file_id")
    assert test["predicted_class"].to_dict() == {"a": "LEAK", "b": "QUIET", "c": "MECHANICAL"}
    assert test.loc["b", "p_QUIET"] == pytest.approx(0.3)
