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

from leak_detection.labels import LEAK  # noqa: E402

OUTCOMES = ("TP", "FP", "FN", "TN")


def confusion_figure(metrics: dict[str, Any]) -> Figure:
    cm = metrics["test_confusion_matrix"]
    matrix = np.array(cm["rows_true_columns_predicted"])
    labels = cm["labels"]
    fig, ax = plt.subplots(figsize=(1.2 * len(labels) + 2, 1.1 * len(labels) + 1.5))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for (i, j), n in np.ndenumerate(matrix):
        ax.text(j, i, str(n), ha="center", va="center", color="white" if n > matrix.max() / 2 else "black")
    ax.set_xlabel("predicted (file level)")
    ax.set_ylabel("true")
    ax.set_title(f"{metrics['mode']}: test files, threshold {metrics['threshold']:.2f}")
    fig.tight_layout()
    return fig


def roc_pr_figure(test: pd.DataFrame, metrics: dict[str, Any]) -> Figure:
    truth = (test["true_label"] == LEAK).to_numpy()
    score = test["fraction_over_threshold"].to_numpy()
    fig, (roc_ax, pr_ax) = plt.subplots(1, 2, figsize=(10, 4.5))
    if 0 < truth.sum() < truth.size:
        fpr, tpr, _ = roc_curve(truth, score)
        roc_ax.plot(fpr, tpr, label=f"AUC {metrics['test']['roc_auc']:.3f}")
        precision, recall, _ = precision_recall_curve(truth, score)
        pr_ax.plot(recall, precision)
    roc_ax.plot([0, 1], [0, 1], "k:", linewidth=0.8)
    roc_ax.set(xlabel="false positive rate", ylabel="true positive rate (recall)", title="ROC, test files")
    roc_ax.legend(loc="lower right")
    pr_ax.set(xlabel="recall", ylabel="precision", title="precision-recall, test files", ylim=(0, 1.02))
    fig.suptitle(f"{metrics['mode']}: score = fraction of long segments over the threshold")
    fig.tight_layout()
    return fig


def threshold_figure(curve: pd.DataFrame, threshold: float, mode: str) -> Figure:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for column in ("f1", "precision", "recall"):
        ax.plot(curve["threshold"], curve[column], marker="o", markersize=3, label=column)
    ax.axvline(threshold, color="k", linestyle="--", linewidth=1, label=f"chosen {threshold:.2f}")
    ax.set(xlabel="threshold", ylabel="file-level score", ylim=(0, 1.02), title=f"{mode}: validation sweep")
    ax.legend()
    fig.tight_layout()
    return fig


def file_outcomes(test: pd.DataFrame) -> pd.Series:
    truth = test["true_label"] == LEAK
    called = test["decision"] == LEAK
    return pd.Series(
        np.select([truth & called, ~truth & called, truth & ~called], ["TP", "FP", "FN"], "TN"), index=test.index
    )


def timeline_figure(
    test: pd.DataFrame,
    scored_test: dict[str, Any],
    threshold: float,
    mode: str,
    seconds_per_long_hop: float,
    per_outcome: int,
) -> Figure:
    """Long-segment scores over time for a few test files of each outcome."""
    outcomes = file_outcomes(test)
    position = {fid: i for i, fid in enumerate(scored_test["file_ids"])}
    offsets = scored_test["long_offsets"]
    fig, axes = plt.subplots(
        len(OUTCOMES), per_outcome, figsize=(4.5 * per_outcome, 2.4 * len(OUTCOMES)), squeeze=False, sharey=True
    )
    for row, outcome in enumerate(OUTCOMES):
        chosen = test[outcomes == outcome].sort_values("file_id").head(per_outcome)
        for col in range(per_outcome):
            ax = axes[row, col]
            ax.set_ylim(0, 1)
            if col >= len(chosen):
                ax.text(0.5, 0.5, f"no {outcome} file", ha="center", va="center", transform=ax.transAxes)
                continue
            file = chosen.iloc[col]
            i = position[file["file_id"]]
            scores = scored_test["long_scores"][offsets[i] : offsets[i + 1]]
            t = np.arange(scores.size) * seconds_per_long_hop
            ax.plot(t, scores, linewidth=1)
            ax.fill_between(t, threshold, scores, where=scores >= threshold, alpha=0.3, color="tab:red")
            ax.axhline(threshold, color="k", linestyle="--", linewidth=0.8)
            ax.set_title(
                f"{outcome}: {file['file_id']}\n{file['true_label']}, {file['fraction_over_threshold']:.0%} over",
                fontsize=8,
            )
            if col == 0:
                ax.set_ylabel("leak score")
            if row == len(OUTCOMES) - 1:
                ax.set_xlabel("time (s)")
    fig.suptitle(
        f"{mode}: long-segment leak scores against the threshold ({threshold:.2f})\n"
        "a file is LEAK when at least half of its long segments reach it"
    )
    fig.tight_layout()
    return fig
