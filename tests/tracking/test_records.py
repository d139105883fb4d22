"""What a mode's run records: learning curves at step=epoch, test metrics with their interval bounds, tags."""

import math

import pandas as pd

from leak_detection.tracking.records import epoch_metrics, evaluation_scores, mode_params, model_tags


def test_each_numeric_column_of_the_epoch_log_becomes_a_curve_stepped_by_epoch():
    history = pd.DataFrame(
        {"epoch": [1, 2, 3], "train_loss": [0.9, 0.5, 0.4], "val_file_leak_f1": [0.5, math.nan, 0.8], "note": "x"}
    )
    metrics = epoch_metrics(history)
    curves = {(m.key, m.step): m.value for m in metrics}
    assert curves == {
        ("train_loss", 1): 0.9,
        ("train_loss", 2): 0.5,
        ("train_loss", 3): 0.4,
        ("val_file_leak_f1", 1): 0.5,
        ("val_file_leak_f1", 3): 0.8,
    }


def test_fine_tuning_rounds_restart_their_epochs_so_their_log_is_stepped_by_position():
    history = pd.DataFrame({"round": [1, 1, 2, 2], "epoch": [1, 2, 1, 2], "train_loss": [4.0, 3.0, 2.0, 1.0]})
    losses = [
        (m.step, m.value)
        for m in epoch_metrics(history, prefix="adaptation.", step_column=None)
        if m.key == "adaptation.train_loss"
    ]
    assert losses == [(1, 4.0), (2, 3.0), (3, 2.0), (4, 1.0)]


def test_test_metrics_carry_their_interval_bounds_and_descriptions_are_left_out():
    metrics = {
        "threshold": 0.45,
        "bootstrap": {"resamples": 2000},
        "validation": {"f1": 0.9, "n_files": 82},
        "test": {"f1": 0.8, "agrees": True, "intervals": {"f1": [0.7, 0.95]}},
        "test_per_class": {"macro avg": {"f1-score": 0.6}},
        "decision_rule": {"threshold": 0.45, "description": "LEAK when ..."},
    }
    assert evaluation_scores(metrics) == {
        "threshold": 0.45,
        "validation.f1": 0.9,
        "validation.n_files": 82.0,
        "test.f1": 0.8,
        "test.f1.ci_low": 0.7,
        "test.f1.ci_high": 0.95,
        "test_per_class.macro avg.f1-score": 0.6,
    }


def test_parameters_are_flattened_per_mode_and_a_long_value_is_cut_not_refused():
    params = {p.key: p.value for p in mode_params({"training": {"learning_rate": 0.001}, "classes": ["LEAK"] * 3000})}
    assert params["training.learning_rate"] == "0.001"
    assert len(params["classes"]) == 6000


def test_an_adapted_model_names_its_version_its_data_and_the_version_it_came_from():
    meta = {"model_version": "V2", "dataset_fingerprint": "abc", "adaptation": {"base_model_version": "V1"}}
    assert model_tags(meta) == {"model_version": "V2", "dataset_fingerprint": "abc", "base_model_version": "V1"}
    assert model_tags({"model_version": "V1", "adaptation": None}) == {"model_version": "V1"}
