"""Which mode finds leaks better, on the very same test files, and whether the difference is real.

On the demo's 39 test files, binary / multiclass F1 read 0.923 / 0.857 at one commit and
0.815 / 1.000 a few commits later: one or two files decide a ranking of point figures. So
both models are compared on the test files they share (files neither trained on), with a
paired bootstrap of the differences; a mode is named better only when the interval of a
difference excludes zero.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import pandas as pd

from leak_detection.labels import LEAK
from leak_detection.metrics.uncertainty import (
    DECISION_METRICS,
    RANKING_METRICS,
    BootstrapSettings,
    FileSample,
    bootstrap_intervals,
    paired_differences,
    resampling_description,
)

logger = logging.getLogger(__name__)

MODES = ("binary", "multiclass")
COMPARED = (*DECISION_METRICS, *RANKING_METRICS)
DECIDING = ("f1", "roc_auc")
"""The differences a verdict rests on: leak F1 at the operating point, and the threshold-free ranking."""


def _test_rows(predictions: pd.DataFrame) -> pd.DataFrame:
    return predictions[predictions["split"] == "test"].set_index("file_id")


def shared_test_files(predictions: dict[str, pd.DataFrame]) -> tuple[list[str], str | None]:
    """The test files both models were scored on, and a note when their test splits differ."""
    files = {mode: set(_test_rows(p).index) for mode, p in predictions.items()}
    shared = sorted(set.intersection(*files.values()))
    if not shared:
        raise ValueError(
            "the binary and multiclass models share no test file (they were trained on different splits), so they "
            "cannot be compared fairly; retrain both on the current index with `kedro run --pipelines training`, "
            "then `kedro run --pipelines evaluation`"
        )
    if all(len(f) == len(shared) for f in files.values()):
        return shared, None
    counts = ", ".join(f"{mode} {len(f)}" for mode, f in files.items())
    return shared, (
        f"The two models were trained on different splits (test files: {counts}); they are compared on the "
        f"{len(shared)} test files both never trained on."
    )


def _mode_row(metrics: dict[str, Any], test: pd.DataFrame, settings: BootstrapSettings) -> dict[str, Any]:
    sample = FileSample.from_predictions(test, with_classes=False)
    training = metrics["training"]
    return {
        **sample.observed(),
        "intervals": bootstrap_intervals(sample, test["group"].tolist(), settings),
        "macro_f1": metrics["test"].get("macro_f1"),
        "leaks_found": int((sample.true_leak & sample.predicted_leak).sum()),
        "leaks_missed": int((sample.true_leak & ~sample.predicted_leak).sum()),
        "false_alarms": int((~sample.true_leak & sample.predicted_leak).sum()),
        "decision_rule": metrics["decision_rule"]["description"],
        "threshold": metrics["threshold"],
        "model_version": metrics.get("model_version"),
        "dataset_fingerprint": metrics.get("dataset_fingerprint"),
        "best_epoch": training["best_epoch"],
        "epochs_run": training["epochs_run"],
        "training_seconds": training["training_seconds"],
        "param_count": training["param_count"],
    }


def files_to_settle(n_files: int, difference: dict[str, Any]) -> int | None:
    """Test files at which the interval, shrinking as 1/sqrt(n), would no longer reach zero.

    Uses the interval's reach on zero's side of the estimate (bootstrap intervals are
    not symmetric): that reach must shrink below the observed difference.
    """
    interval, observed = difference["interval"], difference["difference"]
    if interval is None or observed == 0:
        return None
    reach = observed - interval[0] if observed > 0 else interval[1] - observed
    return max(n_files + 1, math.ceil(round(n_files * (reach / abs(observed)) ** 2, 6)))


def verdict(differences: dict[str, dict[str, Any]], n_files: int) -> tuple[str | None, str]:
    """The better mode (or None) and a sentence saying why, from binary - multiclass differences."""

    def better(key: str) -> str:
        return "binary" if differences[key]["difference"] > 0 else "multiclass"

    significant = [k for k in DECIDING if differences[k]["excludes_zero"]]
    if len(significant) == 2 and better("f1") != better("roc_auc"):
        return None, (
            f"**No single better mode**: {better('f1')} has the higher leak F1 at its operating point and "
            f"{better('roc_auc')} ranks files better (AUC), both beyond chance on {n_files} test files. Choose by "
            "what you need: fixed-threshold calls (F1) or a ranked list of sites to visit (AUC)."
        )
    if significant:
        winner, key = better(significant[0]), significant[0]
        d = differences[key]
        name = "leak F1" if key == "f1" else "AUC"
        return winner, (
            f"**{winner}** finds leaks better: its {name} is higher by {abs(d['difference']):.3f} (95 % interval of "
            f"the difference {_interval(d['interval'])}, which excludes zero) on {n_files} shared test files."
        )
    f1 = differences["f1"]
    needed = files_to_settle(n_files, f1)
    settle = (
        f"an interval this wide would need about {needed} test files (with as many groups) to tell a difference of "
        f"{abs(f1['difference']):.3f} from chance"
        if needed
        else "the two models make the same calls on these files"
    )
    return None, (
        f"**No significant difference** on {n_files} test files: leak F1 differs by {f1['difference']:+.3f} "
        f"(binary - multiclass, 95 % interval {_interval(f1['interval'])}) and AUC by "
        f"{differences['roc_auc']['difference']:+.3f} ({_interval(differences['roc_auc']['interval'])}). "
        f"What would settle it: {settle}; more sites in the test split, or the same comparison on another "
        "split seed. Until then choose by cost: the multiclass model also names what a non-leak sounds like."
    )


def _interval(interval: list[float] | None) -> str:
    return "n/a" if interval is None else f"[{interval[0]:+.3f}, {interval[1]:+.3f}]"


def compare_modes(
    binary_metrics: dict[str, Any],
    multiclass_metrics: dict[str, Any],
    binary_predictions: pd.DataFrame,
    multiclass_predictions: pd.DataFrame,
    bootstrap: dict[str, Any],
) -> tuple[dict[str, Any], str]:
    """A JSON and a Markdown report comparing the two modes on their shared test files."""
    settings = BootstrapSettings.from_params(bootstrap)
    files, split_note = shared_test_files({"binary": binary_predictions, "multiclass": multiclass_predictions})
    tests = {
        "binary": _test_rows(binary_predictions).loc[files].reset_index(),
        "multiclass": _test_rows(multiclass_predictions).loc[files].reset_index(),
    }
    metrics = {"binary": binary_metrics, "multiclass": multiclass_metrics}
    rows = {mode: _mode_row(metrics[mode], tests[mode], settings) for mode in MODES}
    groups = tests["binary"]["group"].tolist()
    differences = paired_differences(
        *(FileSample.from_predictions(tests[mode], with_classes=False) for mode in MODES), groups, settings
    )
    better_mode, sentence = verdict(differences, len(files))
    comparison = {
        "test_files": len(files),
        "test_leak_files": int((tests["binary"]["true_label"] == LEAK).sum()),
        "split_note": split_note,
        "bootstrap": resampling_description(groups, settings),
        "modes": rows,
        "difference_binary_minus_multiclass": differences,
        "better_mode": better_mode,
        "verdict": sentence.replace("**", ""),
    }
    logger.info("Mode comparison on %d test files: %s", len(files), comparison["verdict"])
    return comparison, comparison_report(comparison, sentence)


def _cell(row: dict[str, Any], key: str) -> str:
    value = row[key]
    if value is None:
        return "n/a"
    interval = row["intervals"].get(key) if key in row["intervals"] else None
    text = f"{value:.3f}" if isinstance(value, float) and abs(value) < 10 else str(value)
    if isinstance(value, float) and abs(value) >= 10:
        text = f"{value:.0f}"
    return text + (f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "")


def comparison_report(comparison: dict[str, Any], sentence: str) -> str:
    rows, n = comparison["modes"], comparison["test_files"]
    lines = [
        "# Binary vs multiclass: test results",
        "",
        f"Both models scored the same {n} test files ({comparison['test_leak_files']} leaks), none of which either "
        "trained on, each with its own decision rule chosen on validation. Figures in brackets are 95 % bootstrap "
        f"intervals ({comparison['bootstrap']['resamples']} resamples by {comparison['bootstrap']['unit']}, "
        "stratified by class).",
        *(["", comparison["split_note"]] if comparison["split_note"] else []),
        "",
        "| | " + " | ".join(rows) + " |",
        "|---|" + "---|" * len(rows),
    ]
    for key in (*COMPARED, "macro_f1", "leaks_found", "leaks_missed", "false_alarms", "threshold"):
        lines.append(f"| {key} | " + " | ".join(_cell(rows[m], key) for m in rows) + " |")
    for key in ("best_epoch", "epochs_run", "training_seconds", "param_count", "model_version"):
        lines.append(f"| {key} | " + " | ".join(_cell(rows[m], key) for m in rows) + " |")
    lines.append("| data fingerprint | " + " | ".join(f"`{rows[m]['dataset_fingerprint']}`" for m in rows) + " |")
    lines += ["", "| difference (binary - multiclass) | value | 95 % interval |", "|---|---|---|"]
    for key, d in comparison["difference_binary_minus_multiclass"].items():
        lines.append(f"| {key} | {d['difference']:+.3f} | {_interval(d['interval'])} |")
    lines += [
        "",
        sentence,
        "",
        "How to read it: *recall* is the share of leaks found; *precision* the share of LEAK calls that were leaks; "
        "*specificity* the share of non-leaks left alone; *roc_auc* and *average_precision* rank files by their "
        "vote score and do not depend on the threshold. Decision rules: "
        + "; ".join(f"{m}: {rows[m]['decision_rule']}" for m in rows)
        + ". Prefer higher recall when a missed leak costs more than a wasted site visit, higher precision when crews "
        "are scarce; check each mode's `test_by_group` in metrics.json for sites where it fails.",
        "",
    ]
    return "\n".join(lines)


def stale_report(comparison: dict[str, Any], report: str, reason: str) -> tuple[dict[str, Any], str]:
    """The old comparison, kept, with a banner saying why it no longer describes the latest models."""
    if report.startswith("> **Stale**"):
        report = report.split("\n\n", 1)[-1]
    banner = f"> **Stale**: {reason}. Run `kedro run --pipelines evaluation` to compare the latest models.\n\n"
    return {**comparison, "stale": reason}, banner + report
