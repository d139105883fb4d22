"""Figures that let a user see how a model decides, and why a file was called."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: figures are only ever written to files

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.metrics import precision_recall_curve, roc_curve  # noqa: E402

from leak_detection.decisions.rules import DecisionRule  # noqa: E402
from leak_detection.decisions.split_scores import SplitScores  # noqa: E402
from leak_detection.labels import LEAK  # noqa: E402

OUTCOMES = ("TP", "FP", "FN", "TN")


def confusion_figure(metrics: dict[str, Any]) -> Figure:
    """Test files as counts and as shares of each true class (rows sum to 1)."""
    cm = metrics["test_confusion_matrix"]
    counts = np.array(cm["rows_true_columns_predicted"], dtype=float)
    labels = cm["labels"]
    row_totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, row_totals, out=np.zeros_like(counts), where=row_totals > 0)
    size = 1.1 * len(labels) + 2
    fig, axes = plt.subplots(1, 2, figsize=(2 * size + 1, size))
    for ax, values, title, text in (
        (axes[0], counts, "counts", lambda v: f"{v:.0f}"),
        (axes[1], shares, "share of each true class", lambda v: f"{v:.0%}"),
    ):
        ax.imshow(values, cmap="Blues", vmin=0)
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
        ax.set_yticks(range(len(labels)), [f"{n} ({int(t)})" for n, t in zip(labels, row_totals[:, 0], strict=True)])
        for (i, j), v in np.ndenumerate(values):
            ax.text(j, i, text(v), ha="center", va="center", color="white" if v > values.max() / 2 else "black")
        ax.set(xlabel="predicted (file level)", ylabel="true (files)", title=title)
    fig.suptitle(f"{metrics['mode']}: test files, {metrics['decision_rule']['description']}", fontsize=9)
    fig.tight_layout()
    return fig


def _interval_text(metrics: dict[str, Any], key: str) -> str:
    value, interval = metrics["test"][key], metrics["test"]["intervals"].get(key)
    return f"{value:.3f}" + (f" [{interval[0]:.2f}, {interval[1]:.2f}]" if interval else "")


def roc_pr_figure(test: pd.DataFrame, metrics: dict[str, Any]) -> Figure:
    """ROC and PR of the vote score; the marker is the decision rule's operating point."""
    truth = (test["true_label"] == LEAK).to_numpy()
    score = test["vote_score"].to_numpy()
    called = (test["decision"] == LEAK).to_numpy()
    fig, (roc_ax, pr_ax) = plt.subplots(1, 2, figsize=(10, 4.5))
    if 0 < truth.sum() < truth.size:
        fpr, tpr, _ = roc_curve(truth, score)
        roc_ax.plot(fpr, tpr, label=f"AUC {_interval_text(metrics, 'roc_auc')}")
        precision, recall, _ = precision_recall_curve(truth, score)
        pr_ax.plot(recall, precision, label=f"AP {_interval_text(metrics, 'average_precision')}")
        point = {"fpr": (called & ~truth).sum() / (~truth).sum(), "recall": (called & truth).sum() / truth.sum()}
        point["precision"] = (called & truth).sum() / called.sum() if called.any() else 1.0
        at = f"operating point (threshold {metrics['threshold']:.2f})"
        roc_ax.plot(point["fpr"], point["recall"], "o", color="tab:red", label=at)
        pr_ax.plot(point["recall"], point["precision"], "o", color="tab:red", label=at)
    roc_ax.plot([0, 1], [0, 1], "k:", linewidth=0.8)
    roc_ax.set(xlabel="false positive rate", ylabel="true positive rate (recall)", title="ROC, test files")
    pr_ax.set(xlabel="recall", ylabel="precision", title="precision-recall, test files", ylim=(0, 1.02))
    for ax in (roc_ax, pr_ax):
        ax.legend(loc="lower right" if ax is roc_ax else "lower left", fontsize=8)
    fig.suptitle(f"{metrics['mode']}: files ranked by their vote score ({len(test)} test files)")
    fig.tight_layout()
    return fig


def threshold_figure(curve: pd.DataFrame, rule: DecisionRule, mode: str) -> Figure:
    """The validation sweep of each candidate score, the chosen rule marked."""
    scores = list(dict.fromkeys(curve["score"]))
    fig, axes = plt.subplots(1, len(scores), figsize=(7 * len(scores), 4.5), squeeze=False)
    for ax, name in zip(axes[0], scores, strict=True):
        part = curve[curve["score"] == name]
        columns = ("f1", "precision", "recall") + (("macro_f1", "objective") if len(scores) > 1 else ())
        for column in columns:
            label = "leak F1" if column == "f1" else column
            ax.plot(part["threshold"], part[column], marker="o", markersize=3, label=label)
        if name == rule.score:
            ax.axvline(rule.threshold, color="k", linestyle="--", linewidth=1, label=f"chosen {rule.threshold:.2f}")
        ax.set(xlabel=f"threshold on {name}", ylabel="file-level score", ylim=(0, 1.02), title=name)
        ax.legend(fontsize=8)
    fig.suptitle(f"{mode}: decision rule sweep on validation files")
    fig.tight_layout()
    return fig


def learning_curves_figure(history: pd.DataFrame, metrics: dict[str, Any]) -> Figure:
    """Loss and validation file-level leak F1 per epoch, the kept epoch marked."""
    fig, (loss_ax, f1_ax) = plt.subplots(1, 2, figsize=(10, 4))
    loss_ax.plot(history["epoch"], history["train_loss"], marker="o", markersize=3, label="train")
    loss_ax.plot(history["epoch"], history["val_loss"], marker="o", markersize=3, label="validation")
    f1_ax.plot(history["epoch"], history["val_file_leak_f1"], marker="o", markersize=3, label="file leak F1")
    best = metrics["training"].get("best_epoch")
    for ax in (loss_ax, f1_ax):
        if best:
            ax.axvline(best, color="k", linestyle="--", linewidth=1, label=f"kept epoch {best}")
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
    loss_ax.set(ylabel="loss", title="loss")
    f1_ax.set(ylabel="validation", ylim=(0, 1.02), title="validation file-level leak F1 (best threshold)")
    fig.suptitle(f"{metrics['mode']}: learning curves")
    fig.tight_layout()
    return fig


def file_outcomes(test: pd.DataFrame) -> pd.Series:
    truth = test["true_label"] == LEAK
    called = test["decision"] == LEAK
    return pd.Series(
        np.select([truth & called, ~truth & called, truth & ~called], ["TP", "FP", "FN"], "TN"), index=test.index
    )


def _timeline_panel(ax, scores: np.ndarray, file: pd.Series, outcome: str, threshold: float, dt: float | None) -> None:
    t = np.arange(scores.size) * (dt or 1.0)
    ax.plot(t, scores, linewidth=1, marker="o" if scores.size == 1 else None)
    ax.fill_between(t, threshold, scores, where=scores >= threshold, alpha=0.3, color="tab:red")
    ax.axhline(threshold, color="k", linestyle="--", linewidth=0.8)
    ax.set_ylim(0, 1)
    ax.set_title(
        f"{outcome}: {file['file_id']}\n{file['true_label']}, {file['fraction_over_threshold']:.0%} over", fontsize=8
    )
    ax.set(xlabel="time (s)" if dt else "long segment (time not available for this store)", ylabel="score")


def timeline_figure(  # noqa: PLR0913
    test: pd.DataFrame,
    scored_test: SplitScores,
    long_rule_scores: np.ndarray,
    rule: DecisionRule,
    mode: str,
    seconds_per_long_hop: float | None,
    per_outcome: int,
) -> Figure:
    """Long-segment scores under ``rule`` over time for a few test files of each outcome that occurred."""
    outcomes = file_outcomes(test)
    position = {fid: i for i, fid in enumerate(scored_test.file_ids)}
    offsets = scored_test.long_offsets
    rows = [(o, test[outcomes == o].sort_values("file_id").head(per_outcome)) for o in OUTCOMES]
    rows = [(o, chosen) for o, chosen in rows if len(chosen)]
    n_cols = max(len(chosen) for _, chosen in rows)
    fig = plt.figure(figsize=(4.5 * n_cols, 2.6 * len(rows) + 0.8))
    for r, (outcome, chosen) in enumerate(rows):
        for c, (_, file) in enumerate(chosen.iterrows()):
            i = position[file["file_id"]]
            ax = fig.add_subplot(len(rows), n_cols, r * n_cols + c + 1)
            scores = long_rule_scores[offsets[i] : offsets[i + 1]]
            _timeline_panel(ax, scores, file, outcome, rule.threshold, seconds_per_long_hop)
    missing = [o for o in OUTCOMES if o not in dict(rows)]
    fig.suptitle(
        f"{mode}: long-segment {rule.score} against the threshold ({rule.threshold:.2f}); a file is LEAK when at "
        "least half of its long segments reach it"
        + (f"\nno {', '.join(missing)} file in the test split" if missing else ""),
        fontsize=9,
    )
    fig.tight_layout()
    return fig
