"""Evaluate one mode's model, file by file, the paper's way.

Only the model's own validation and test files are scored (``leak_detection.metrics.model_split``).
Validation chooses the decision rule and threshold; test is scored once, with that rule,
and never influences any choice (the replaced system swept the threshold on test:
docs/architecture.md, D4). Test figures carry bootstrap intervals (``leak_detection.metrics.uncertainty``).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import average_precision_score, classification_report, confusion_matrix, roc_auc_score

from leak_detection.decisions.inference import predict_segments
from leak_detection.decisions.rules import (
    DecisionRule,
    choose_decision_rule,
    decide_files,
    is_binary,
    long_rule_scores,
    macro_f1,
)
from leak_detection.decisions.scoring import leak_detection_metrics
from leak_detection.decisions.split_scores import SplitScores
from leak_detection.features.segment_batches import SegmentSource
from leak_detection.features.store import MelFeatureStore
from leak_detection.labels import CLASS_NAMES, LEAK, NOLEAK
from leak_detection.metrics.model_split import EVALUATED_SPLITS, model_split_targets
from leak_detection.metrics.uncertainty import (
    BootstrapSettings,
    FileSample,
    bootstrap_intervals,
    resampling_description,
)
from leak_detection.model.meta import ModelMeta
from leak_detection.model.network import model_from_state

from . import plots

logger = logging.getLogger(__name__)

RANKING_SCORE = (
    "vote_score: each file's ceil(n/2)-th largest long-segment score under the decision rule, the highest "
    "threshold at which the vote still calls it LEAK; roc_auc and average_precision rank files by it"
)


def score_segments(
    model: dict[str, torch.Tensor],
    model_meta: dict[str, Any],
    mel_features: MelFeatureStore,
    evaluated_targets: pd.DataFrame,
    evaluation: dict[str, Any],
) -> dict[str, SplitScores]:
    """Per split (validation, test): the model's long-segment scores of each file, files in store order."""
    network = model_from_state(model, model_meta)
    meta = ModelMeta.from_dict(model_meta)
    scored = {}
    for split in EVALUATED_SPLITS:
        source = SegmentSource.for_split(
            mel_features, evaluated_targets, split, int(evaluation["memory_budget_mb"] * 2**20)
        )
        predictions = predict_segments(
            network, source.ordered_blocks(), meta.leak_output_idx, batch_size=evaluation["batch_size"]
        )
        scored[split] = SplitScores.from_predictions(
            predictions,
            source.local_offsets,
            source.n_short,
            [mel_features.file_ids[i] for i in source.file_indices],
            meta.class_names,
            source.file_summaries(),
        )
    return scored


def evaluated_files(
    model_meta: dict[str, Any], mel_features: MelFeatureStore, file_targets: pd.DataFrame, evaluation: dict[str, Any]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The model's own validation and test files (``leak_detection.metrics.model_split``) and how the index differs."""
    meta = ModelMeta.from_dict(model_meta)
    own, check = model_split_targets(meta, mel_features, file_targets, evaluation["on_split_mismatch"])
    return own, check.to_dict()


def true_classes(labels: pd.Series, class_names: list[str]) -> np.ndarray:
    """Each file's true class in the model's output names (binary: LEAK or NOLEAK)."""
    if is_binary(class_names):
        return np.where(labels == LEAK, LEAK, NOLEAK)
    return labels.to_numpy(dtype=str)


def choose_rule(
    segment_scores: dict[str, SplitScores], evaluated_targets: pd.DataFrame, model_meta: dict[str, Any]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The model's decision rule, checked against a fresh choice on its validation files."""
    meta = ModelMeta.from_dict(model_meta)
    validation = segment_scores["validation"]
    labels = evaluated_targets.set_index("file_id").loc[validation.file_ids, "label"]
    swept, curve = choose_decision_rule(validation, true_classes(labels, meta.class_names))
    rule = meta.decision_rule()
    if swept.score != rule.score or not np.isclose(swept.threshold, rule.threshold):
        logger.warning(
            "%s: a fresh choice on validation gives %s at %.2f, but model_meta.json says %s at %.2f; using the "
            "model's own rule, as prediction does",
            meta.mode,
            swept.score,
            swept.threshold,
            rule.score,
            rule.threshold,
        )
    logger.info("%s: decision rule (chosen on validation): %s", meta.mode, rule.describe())
    return pd.DataFrame(curve), rule.to_dict()


def predict_files(
    segment_scores: dict[str, SplitScores],
    evaluated_targets: pd.DataFrame,
    decision_rule: dict[str, Any],
    model_meta: dict[str, Any],
) -> pd.DataFrame:
    """One row per validation and test file: scores, the vote and the predicted class."""
    meta = ModelMeta.from_dict(model_meta)
    rule = DecisionRule(**decision_rule)
    targets = evaluated_targets.set_index("file_id")
    tables = []
    for split in EVALUATED_SPLITS:
        scored = segment_scores[split]
        decided = decide_files(scored, rule)
        labels = targets.loc[scored.file_ids, "label"]
        table = pd.DataFrame(
            {
                "file_id": scored.file_ids,
                "split": split,
                "group": targets.loc[scored.file_ids, "group"].to_numpy(),
                "true_label": labels.to_numpy(),
                "true_class": true_classes(labels, meta.class_names),
                "n_long_segments": scored.n_long_segments,
                "mean_leak_score": decided.votes.mean_leak_score,
                "vote_score": decided.votes.vote_score,
                "fraction_over_threshold": decided.votes.fraction_over_threshold,
                "decision_score": rule.score,
                "threshold": rule.threshold,
                "decision": decided.decision,
                "predicted_class": decided.predicted_class,
                **decided.class_probability_columns(),
            }
        )
        tables.append(_with_familiarity(table, scored, meta))
    return pd.concat(tables, ignore_index=True)


def _with_familiarity(table: pd.DataFrame, scored: SplitScores, meta: ModelMeta) -> pd.DataFrame:
    familiarity = meta.familiarity_statistics()
    if familiarity is None or scored.file_summaries is None:
        return table.assign(unfamiliarity=np.nan, unfamiliar=False)
    distance = familiarity.unfamiliarity(scored.file_summaries)
    return table.assign(unfamiliarity=distance, unfamiliar=distance > familiarity.threshold)


def _ranking(truth: np.ndarray, scores: np.ndarray) -> dict[str, float | None]:
    if not 0 < truth.sum() < truth.size:
        return {"roc_auc": None, "average_precision": None}
    return {
        "roc_auc": float(roc_auc_score(truth, scores)),
        "average_precision": float(average_precision_score(truth, scores)),
    }


def _file_level(predictions: pd.DataFrame) -> dict[str, Any]:
    truth = (predictions["true_label"] == LEAK).to_numpy()
    metrics = leak_detection_metrics((predictions["decision"] == LEAK).to_numpy(), truth)
    metrics.update(_ranking(truth, predictions["vote_score"].to_numpy()))
    metrics["n_files"] = len(predictions)
    metrics["n_leak_files"] = int(truth.sum())
    if set(predictions["true_class"]) - {LEAK, NOLEAK}:
        metrics["macro_f1"] = macro_f1(predictions["true_class"].tolist(), predictions["predicted_class"].tolist())
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


def _long_segment_leak_f1(test: pd.DataFrame, scored: SplitScores, rule: DecisionRule) -> float:
    truth = np.repeat(test["true_label"].to_numpy() == LEAK, scored.n_long_segments)
    return leak_detection_metrics(long_rule_scores(rule, scored) >= rule.threshold, truth)["f1"]


def _class_detail(test: pd.DataFrame, class_names: list[str]) -> dict[str, Any]:
    matrix = confusion_matrix(test["true_class"], test["predicted_class"], labels=class_names)
    return {
        "test_confusion_matrix": {"labels": class_names, "rows_true_columns_predicted": matrix.tolist()},
        "test_per_class": classification_report(
            test["true_class"], test["predicted_class"], labels=class_names, output_dict=True, zero_division=0
        ),
        "test_leak_calls_by_true_class": {
            name: int(((test["true_label"] == name) & (test["decision"] == LEAK)).sum()) for name in CLASS_NAMES
        },
    }


def evaluation_metrics(
    predictions: pd.DataFrame,
    segment_scores: dict[str, SplitScores],
    decision_rule: dict[str, Any],
    split_check: dict[str, Any],
    model_meta: dict[str, Any],
    evaluation: dict[str, Any],
) -> dict[str, Any]:
    """File-level leak metrics on the model's own validation and test files, with test intervals."""
    meta = ModelMeta.from_dict(model_meta)
    rule = DecisionRule(**decision_rule)
    test = predictions[predictions["split"] == "test"]
    settings = BootstrapSettings.from_params(evaluation["bootstrap"])
    test_metrics = {
        **_file_level(test),
        "long_segment_leak_f1": _long_segment_leak_f1(test, segment_scores["test"], rule),
        "intervals": bootstrap_intervals(FileSample.from_predictions(test), test["group"].tolist(), settings),
    }
    metrics = {
        "mode": meta.mode,
        "model_version": meta.model_version,
        "dataset_fingerprint": meta.dataset_fingerprint,
        "split_sha256": meta.split_sha256,
        "eval_method": meta.eval_method,
        "model_state_dict_sha256": meta.state_dict_sha256,
        "evaluated_on": split_check,
        "decision_rule": {**rule.to_dict(), "chosen_on": "validation", "description": rule.describe()},
        "threshold": rule.threshold,
        "threshold_chosen_on": "validation",
        "ranking_score": RANKING_SCORE,
        "bootstrap": resampling_description(test["group"].tolist(), settings),
        "validation": _file_level(predictions[predictions["split"] == "validation"]),
        "test": test_metrics,
        **_class_detail(test, meta.class_names),
        "test_by_group": _by_group(test),
        "unfamiliar_files": {
            split: int(predictions.loc[predictions["split"] == split, "unfamiliar"].sum()) for split in EVALUATED_SPLITS
        },
        "training": {k: getattr(meta, k) for k in ("best_epoch", "epochs_run", "training_seconds", "param_count")},
    }
    logger.info("%s", headline(metrics))
    return metrics


def _with_interval(test: dict[str, Any], key: str) -> str:
    value, interval = test.get(key), test.get("intervals", {}).get(key)
    if value is None:
        return f"{key} n/a"
    return f"{key} {value:.3f}" + (f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "")


def headline(metrics: dict[str, Any]) -> str:
    """One log line: the test figures with their intervals."""
    t = metrics["test"]
    keys = ("f1", "precision", "recall", "specificity", "roc_auc", *(("macro_f1",) if "macro_f1" in t else ()))
    return (
        f"{metrics['mode']} test ({t['n_files']} files, {t['n_leak_files']} leaks; "
        f"{metrics['bootstrap']['confidence']:.0%} intervals): " + "  ".join(_with_interval(t, k) for k in keys)
    )


def evaluation_plots(
    predictions: pd.DataFrame,
    segment_scores: dict[str, SplitScores],
    threshold_curve: pd.DataFrame,
    metrics: dict[str, Any],
    training_history: pd.DataFrame,
    model_meta: dict[str, Any],
    evaluation: dict[str, Any],
) -> dict[str, Any]:
    """Confusion matrix, ROC and PR with the operating point, the rule sweep, learning curves, timelines."""
    meta = ModelMeta.from_dict(model_meta)
    test = predictions[predictions["split"] == "test"]
    rule = DecisionRule(metrics["decision_rule"]["score"], metrics["decision_rule"]["threshold"])
    scored = segment_scores["test"]
    return {
        "confusion_matrix.png": plots.confusion_figure(metrics),
        "roc_pr_curves.png": plots.roc_pr_figure(test, metrics),
        "threshold_curve.png": plots.threshold_figure(threshold_curve, rule, metrics["mode"]),
        "learning_curves.png": plots.learning_curves_figure(training_history, metrics),
        "file_timelines.png": plots.timeline_figure(
            test,
            scored,
            long_rule_scores(rule, scored),
            rule,
            metrics["mode"],
            meta.seconds_per_long_hop,
            int(evaluation["timeline_files_per_outcome"]),
        ),
    }
