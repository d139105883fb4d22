"""What a mode's MLflow run records, computed from the datasets a run saves (no store here).

- parameters: the mode's parameter block, flattened (``training.learning_rate``);
- learning curves: every numeric column of an epoch log, at ``step=epoch``;
- test metrics: the numbers of ``metrics.json``'s scored blocks, each bootstrap interval
  as ``<metric>.ci_low`` and ``<metric>.ci_high``;
- tags: the model version (the version folder's name), the data fingerprint and, for an
  adapted model, the version it was adapted from.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from numbers import Real
from typing import Any

import pandas as pd
from mlflow.entities import Metric, Param
from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

SCORED_BLOCKS = ("validation", "test", "test_per_class", "training")
"""The blocks of ``metrics.json`` that hold scores; the rest describes how they were made."""
INTERVALS = "intervals"


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` as ``{"a.b": 1}``; lists stay whole."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        flat.update(flatten(value, name) if isinstance(value, Mapping) else {name: value})
    return flat


def mode_params(block: Mapping[str, Any]) -> list[Param]:
    """The mode's parameters; a value longer than MLflow accepts is cut (a run never fails on a long list)."""
    return [Param(key, str(value)[:MAX_PARAM_VAL_LENGTH]) for key, value in sorted(flatten(block).items())]


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def epoch_metrics(history: pd.DataFrame, prefix: str = "", step_column: str | None = "epoch") -> list[Metric]:
    """Each numeric column at each row, ``step`` from ``step_column`` (or the row's position, counted from 1).

    Fine-tuning rounds restart their epochs at 1, so their log is stepped by position.
    """
    now = int(time.time() * 1000)
    steps = history[step_column] if step_column in history.columns else pd.Series(range(1, len(history) + 1))
    columns = [c for c in history.select_dtypes("number").columns if c != step_column]
    return [
        Metric(f"{prefix}{column}", float(value), now, int(step))
        for column in columns
        for step, value in zip(steps, history[column], strict=True)
        if not math.isnan(value)
    ]


def evaluation_scores(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The test and validation numbers of ``metrics.json``, with the test intervals' bounds."""
    scores = {"threshold": float(metrics["threshold"])} if _is_number(metrics.get("threshold")) else {}
    for block in SCORED_BLOCKS:
        for key, value in flatten(metrics.get(block) or {}, block).items():
            if f".{INTERVALS}." in key and isinstance(value, list | tuple) and len(value) == 2:
                name = key.replace(f".{INTERVALS}.", ".")
                scores.update({f"{name}.ci_low": float(value[0]), f"{name}.ci_high": float(value[1])})
            elif _is_number(value):
                scores[key] = float(value)
    return scores


def model_tags(meta: Mapping[str, Any]) -> dict[str, str]:
    """Tags that let a run and a model version folder find each other."""
    adaptation = meta.get("adaptation") or {}
    tags = {
        "model_version": meta.get("model_version"),
        "dataset_fingerprint": meta.get("dataset_fingerprint"),
        "base_model_version": adaptation.get("base_model_version"),
    }
    return {key: str(value) for key, value in tags.items() if value}
