"""Evaluate one mode's model, file by file, the paper's way.

Validation chooses the threshold; test is scored once, at that threshold, and never
influences any choice (the replaced code swept the threshold on test: SPEC defect 4).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import classification_report, confusion_matrix, roc_auc_score

from leak_detection.feature_store import MelFeatureStore
from leak_detection.inference import predict_segments
from leak_detection.labels import CLASS_NAMES, LEAK, NOLEAK
from leak_detection.model import model_from_state
from leak_detection.scoring import (
    file_classes,
    file_vote,
    leak_detection_metrics,
    long_segment_scores,
    per_file_mean,
    sweep_thresholds,
)
from leak_detection.segment_batches import SegmentSource

from . import plots

logger = logging.getLogger(__name__)

EVALUATED_SPLITS = ("validation", "test")


def score_segments(
    model: dict[str, torch.Tensor],
    model_meta: dict[str, Any],
    mel_features: MelFeatureStore,
    file_targets: pd.DataFrame,
    evaluation: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """Per split: each file's long-segment leak scores and class probabilities.

    Returns ``{split: {"file_ids", "long_offsets", "long_scores", "long_class_probs",
    "short_leak_probs"}}``, files in store order.
    """
    network = model_from_state(model, model_meta)
    scored = {}
    for split in EVALUATED_SPLITS:
        source = SegmentSource.for_split(mel_features, file_targets, split, int(evaluation["memory_budget_mb"] * 2**20))
        predictions = predict_segments(
            network, source.ordered_blocks(), model_meta["leak_output_idx"], batch_size=evaluation["batch_size"]
        )
        n_classes = predictions.class_probabilities.shape[1]
        scored[split] = {
            "file_ids": [mel_features.file_ids[i] for i in source.file_indices],
            "long_offsets": source.local_offsets,
            "long_scores": long_segment_scores(predictions.leak_probability, source.n_short),
            "long_class_probs": predictions.class_probabilities.reshape(-1, source.n_short, n_classes).mean(axis=1),
            "short_leak_probs": predictions.leak_probability,
            "n_short": source.n_short,
        }
    return scored


def _is_leak(scored_split: dict[str, Any], file_targets: pd.DataFrame) -> np.ndarray:
    labels = file_targets.set_index("file_id").loc[scored_split["file_ids"], "label"]
    return (labels == LEAK).to_numpy()


def choose_threshold(
    segment_scores: dict[str, dict[str, Any]], file_targets: pd.DataFrame, model_meta: dict[str, Any]
) -> tuple[pd.DataFrame, float]:
    """Sweep 0.10..0.90 on validation only; the best file-level leak F1 wins."""
    validation = segment_scores["validation"]
    threshold, curve = sweep_thresholds(
        validation["long_scores"], validation["long_offsets"], _is_leak(validation, file_targets)
    )
    if not np.isclose(threshold, model_meta.get("threshold", threshold)):
        logger.warning(
            "%s: the validation sweep chose %.2f but model_meta.json says %.2f; using the sweep's",
            model_meta.get("mode"),
            threshold,
            model_meta["threshold"],
        )
    logger.info("%s: threshold %.2f chosen on validation", model_meta.get("mode"), threshold)
    return pd.DataFrame(curve), threshold


def predict_files(
    segment_scores: dict[str, dict[str, Any]],
    file_targets: pd.DataFrame,
    threshold: float,
    model_meta: dict[str, Any],
) -> pd.DataFrame:
    """One row per validation and test file: scores, the vote and the predicted class."""
    class_names = list(model_meta["class_names"])
    targets = file_targets.set_index("file_id")
    tables = []
    for split in EVALUATED_SPLITS:
        scored = segment_scores[split]
        votes = file_vote(scored["long_scores"], scored["long_offsets"], threshold)
        offsets = scored["long_offsets"]
        mean_probs = per_file_mean(scored["long_class_probs"], offsets)
        table = pd.DataFrame(
            {
                "file_id": scored["file_ids"],
                "split": split,
                "group": targets.loc[scored["file_ids"], "group"].to_numpy(),
                "true_label": targets.loc[scored["file_ids"], "label"].to_numpy(),
                "n_long_segments": np.diff(offsets),
                "mean_leak_score": votes.mean_leak_score,
                "fraction_over_threshold": votes.fraction_over_threshold,
                "threshold": threshold,
                "decision": np.where(votes.is_leak, LEAK, NOLEAK),
                "predicted_class": file_classes(mean_probs, votes.is_leak, class_names),
            }
        )
        if class_names != [NOLEAK, LEAK]:
            for k, name in enumerate(class_names):
                table[f"p_{name}"] = mean_probs[:, k]
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


def _auc(truth: np.ndarray, scores: np.ndarray) -> float | None:
    return float(roc_auc_score(truth, scores)) if 0 < truth.sum() < truth.size else None


def _file_level(predictions: pd.DataFrame) -> dict[str, Any]:
    truth = (predictions["true_label"] == LEAK).to_numpy()
    metrics = leak_detection_metrics((predictions["decision"] == LEAK).to_numpy(), truth)
    metrics["roc_auc"] = _auc(truth, predictions["fraction_over_threshold"].to_numpy())
    metrics["n_files"] = len(predictions)
    metrics["n_leak_files"] = int(truth.sum())
    return metrics


def _by_group(test: pd.DataFrame) -> list[dict[str, Any]]:
    rows = []
    for group, part in test.groupby("group", sort=True):
        m = leak_detection_metrics((part["decision"] == LEAK).to_numpy(), (part["true_label"] == LEAK).to_numpy())
        rows.append(
            {
                "group": str(group),
                "n_files": len(part),
                "n_leak_files": m["tp"] + m["fn"],
                **{k: m[k] for k in ("tp", "fp", "fn", "tn", "recall", "specificity", "accuracy")},
            }
        )
    return rows


def evaluation_metrics(
    predictions: pd.DataFrame,
    segment_scores: dict[str, dict[str, Any]],
    threshold: float,
    model_meta: dict[str, Any],
) -> dict[str, Any]:
    """File-level leak metrics on validation and test, and test's detail."""
    test = predictions[predictions["split"] == "test"]
    scored = segment_scores["test"]
    short_truth = np.repeat(test["true_label"].to_numpy() == LEAK, np.diff(scored["long_offsets"]) * scored["n_short"])
    segment = leak_detection_metrics(scored["short_leak_probs"] >= threshold, short_truth)
    class_names = list(model_meta["class_names"])
    true_classes = (
        test["true_label"]
        if class_names == list(CLASS_NAMES)
        else test["true_label"].where(test["true_label"] == LEAK, NOLEAK)
    )
    matrix = confusion_matrix(true_classes, test["predicted_class"], labels=class_names)
    metrics = {
        "mode": model_meta["mode"],
        "eval_method": model_meta["eval_method"],
        "model_state_dict_sha256": model_meta.get("state_dict_sha256"),
        "threshold": threshold,
        "threshold_chosen_on": "validation",
        "validation": _file_level(predictions[predictions["split"] == "validation"]),
        "test": {**_file_level(test), "segment_leak_f1": segment["f1"]},
        "test_confusion_matrix": {"labels": class_names, "rows_true_columns_predicted": matrix.tolist()},
        "test_per_class": classification_report(
            true_classes, test["predicted_class"], labels=class_names, output_dict=True, zero_division=0
        ),
        "test_leak_calls_by_true_class": {
            name: int(((test["true_label"] == name) & (test["decision"] == LEAK)).sum()) for name in CLASS_NAMES
        },
        "test_by_group": _by_group(test),
        "training": {k: model_meta.get(k) for k in ("best_epoch", "epochs_run", "training_seconds", "param_count")},
    }
    t = metrics["test"]
    logger.info(
        "%s test (%d files, threshold %.2f): F1 %.3f  precision %.3f  recall %.3f  specificity %.3f  AUC %s",
        metrics["mode"],
        t["n_files"],
        threshold,
        t["f1"],
        t["precision"],
        t["recall"],
        t["specificity"],
        f"{t['roc_auc']:.3f}" if t["roc_auc"] is not None else "n/a",
    )
    return metrics


def evaluation_plots(
    predictions: pd.DataFrame,
    segment_scores: dict[str, dict[str, Any]],
    threshold_curve: pd.DataFrame,
    metrics: dict[str, Any],
    model_meta: dict[str, Any],
    evaluation: dict[str, Any],
) -> dict[str, Any]:
    """Confusion matrix, ROC and precision-recall, the threshold sweep, and per-outcome timelines."""
    test = predictions[predictions["split"] == "test"]
    config = model_meta["feature_config"]
    mode = metrics["mode"]
    threshold = metrics["threshold"]
    return {
        "confusion_matrix.png": plots.confusion_figure(metrics),
        "roc_pr_curves.png": plots.roc_pr_figure(test, metrics),
        "threshold_curve.png": plots.threshold_figure(threshold_curve, threshold, mode),
        "file_timelines.png": plots.timeline_figure(
            test,
            segment_scores["test"],
            threshold,
            mode,
            config["long_hop"] / config["sample_rate"],
            int(evaluation["timeline_files_per_outcome"]),
        ),
    }
