import pytest

from leak_detection.pipelines.deployment.nodes import model_card

SHA = "a" * 64
META = {
    "model_type": "LeakCNNMulti",
    "mode": "binary",
    "model_version": "V2",
    "state_dict_sha256": SHA,
    "num_classes": 2,
    "class_names": ["NOLEAK", "LEAK"],
    "leak_output_idx": 1,
    "threshold": 0.4,
    "param_count": 617730,
    "feature_config": {"n_mels": 32, "long_segment": 1024, "sample_rate": 4096},
    "dataset_fingerprint": "fp",
    "split_files": {"train": 7, "validation": 2, "test": 3},
    "split_sha256": "split",
    "train_files_per_class": {"NOLEAK": 4, "LEAK": 3},
    "best_epoch": 2,
    "epochs_run": 4,
    "training_seconds": 10.0,
    "device": "cpu",
}
FIGURES = {"f1": 0.8, "precision": 0.75, "recall": 0.9, "specificity": 0.7, "roc_auc": 0.9, "average_precision": 0.85}


def metrics(sha=SHA):
    test = {**FIGURES, "n_files": 30, "n_leak_files": 12, "long_segment_leak_f1": 0.7}
    test["intervals"] = {k: [v - 0.1, min(v + 0.1, 1.0)] for k, v in FIGURES.items()}
    return {
        "model_version": "V2",
        "model_state_dict_sha256": sha,
        "threshold": 0.4,
        "decision_rule": {"description": "LEAK when at least half of the long segments reach 0.40"},
        "bootstrap": {"confidence": 0.95, "resamples": 2000, "unit": "group"},
        "validation": {**FIGURES, "n_files": 20, "n_leak_files": 8},
        "test": test,
    }


PARITY = {"samples_compared": 100, "max_abs_diff_logits": 1e-6, "max_abs_diff_leak_aux": 0.0, "tolerance": 1e-4}


def test_the_card_gives_test_figures_with_their_intervals_and_the_rule():
    card = model_card(META, metrics(), {"files_per_class": {"train": {}}}, PARITY)
    assert "| test | 30 | 12 | 0.800 [0.700, 0.900] |" in card
    assert "LEAK when at least half of the long segments reach 0.40" in card
    assert "model `V2`" in card and "split SHA-256 `split`" in card
    assert "as low as about 0.75" in card


def test_the_card_refuses_metrics_of_other_weights():
    with pytest.raises(ValueError, match="metrics.json scored other weights"):
        model_card(META, metrics(sha="other"), {"files_per_class": {"train": {}}}, PARITY)
