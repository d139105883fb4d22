"""Classify new recordings with a trained model, exactly as evaluation would have.

Features come from the model's own recorded front-end configuration through the one
feature function, and files are decided by the one vote at the model's validation
threshold: the replaced system's train/inference mismatch (docs/architecture.md, D2) has no
second code path to hide in.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd
import torch

from leak_detection.audio.analysis_pool import analyse_files
from leak_detection.audio.front_end import FrontEndConfig
from leak_detection.audio.recordings import RecordingCollection
from leak_detection.decisions.inference import predict_segments
from leak_detection.decisions.rules import DecisionRule, decide_files
from leak_detection.decisions.split_scores import SplitScores
from leak_detection.features.familiarity import Familiarity, recording_summary, unfamiliar_advice
from leak_detection.labels import LEAK, NOLEAK
from leak_detection.model.meta import ModelMeta
from leak_detection.model.network import model_from_state

logger = logging.getLogger(__name__)


def _front_end(meta: ModelMeta) -> FrontEndConfig:
    problem = meta.unreproducible_front_end()
    if problem:
        raise ValueError(
            f"{meta.mode} model {meta.model_version} was trained on a feature store this "
            f"project cannot reproduce from audio: {problem}. predict needs features made by that same front end. "
            "Train a model on recordings (`kedro run --pipelines train_both --params recordings_dir=PATH`) or on a "
            "store built by this project to classify new recordings"
        )
    return FrontEndConfig.from_params(meta.feature_config)


def _flag_unfamiliar(table: pd.DataFrame, familiarity: Familiarity | None, meta: ModelMeta) -> pd.DataFrame:
    if "unfamiliarity" not in table:
        table["unfamiliarity"] = np.nan
    table["unfamiliar"] = table["unfamiliarity"] > familiarity.threshold if familiarity else False
    n_unfamiliar = int(table["unfamiliar"].sum())
    if familiarity is None:
        logger.info("%s: model %s predates familiarity statistics", meta.mode, meta.model_version)
    elif n_unfamiliar:
        logger.warning("%s", unfamiliar_advice(n_unfamiliar, int(table["error"].eq("").sum()), familiarity.threshold))
    return table


def _score_files(  # noqa: PLR0913
    table: pd.DataFrame,
    scored: pd.Series,
    features: list[np.ndarray],
    network: torch.nn.Module,
    rule: DecisionRule,
    config: FrontEndConfig,
    meta: ModelMeta,
    batch_size: int,
) -> None:
    """Fill in the scores, decision and class of the readable files (rows ``scored``) in place."""
    segments = torch.from_numpy(np.concatenate(features)).reshape(-1, 1, config.n_mels, config.n_frames)
    predictions = predict_segments(network, [(segments, None, None)], meta.leak_output_idx, batch_size=batch_size)
    decided = decide_files(
        SplitScores.from_predictions(
            predictions,
            np.concatenate([[0], np.cumsum(table.loc[scored, "long_segments"])]),
            config.n_short,
            table.loc[scored, "file"],
            meta.class_names,
        ),
        rule,
    )
    table.loc[scored, "mean_leak_score"] = decided.votes.mean_leak_score
    table.loc[scored, "fraction_over_threshold"] = decided.votes.fraction_over_threshold
    table.loc[scored, "decision"] = decided.decision
    table.loc[scored, "predicted_class"] = decided.predicted_class
    for column, values in decided.class_probability_columns().items():
        table.loc[scored, column] = values


def _read_recordings(
    inbox: RecordingCollection, config: FrontEndConfig, meta: ModelMeta, familiarity: Familiarity | None, workers
) -> tuple[pd.DataFrame, list[np.ndarray]]:
    """One row per recording (its error when unusable) and the features of the usable ones, in row order."""
    rows, features = [], []
    file_ids = list(inbox.table["file_id"])
    for result in analyse_files(inbox, file_ids, config, workers=workers, desc=f"{meta.mode}: reading"):
        analysed, reason = result.analysed, result.reason
        row = {
            "file": result.file_id,
            "mode": meta.mode,
            "model_version": meta.model_version or "",
            "duration_s": analysed.duration_s if analysed is not None else np.nan,
            "sample_rate": analysed.sample_rate if analysed is not None else np.nan,
            "long_segments": 0,
            "error": "",
        }
        if reason is None:
            row["long_segments"] = analysed.features.shape[0]
            summary = recording_summary(analysed.features)
            row["unfamiliarity"] = familiarity.unfamiliarity(summary)[0] if familiarity else np.nan
            features.append(analysed.features)
        else:
            row["error"] = reason
            logger.warning("%s: %s", result.file_id, reason)
        rows.append(row)
    return pd.DataFrame(rows), features


def predict_recordings(
    inbox: RecordingCollection,
    model: dict[str, torch.Tensor],
    model_meta: dict[str, Any],
    predict: dict[str, Any],
) -> pd.DataFrame:
    """One row per recording: scores, the decision and, in multiclass, the class probabilities.

    A recording that cannot be used gets a row with its error; the others are scored.
    """
    network = model_from_state(model, model_meta)
    meta = ModelMeta.from_dict(model_meta)
    config = _front_end(meta)
    # An operator may trade precision for recall; by default the validated rule as it is.
    rule = meta.decision_rule(predict.get("threshold"))
    familiarity = meta.familiarity_statistics()
    started = time.perf_counter()
    table, features = _read_recordings(inbox, config, meta, familiarity, predict.get("workers", "auto"))
    scored = table["error"] == ""
    for column in ("mean_leak_score", "fraction_over_threshold"):
        table[column] = np.nan
    table["threshold"] = rule.threshold
    table["decision"] = ""
    table["predicted_class"] = ""
    if features:
        _score_files(table, scored, features, network, rule, config, meta, int(predict["batch_size"]))
    table = _flag_unfamiliar(table, familiarity, meta)
    elapsed = time.perf_counter() - started
    logger.info(
        "%s: %d recordings in %.1f s (%.1f files/s): %d LEAK, %d NOLEAK, %d not readable",
        meta.mode,
        len(table),
        elapsed,
        len(table) / max(elapsed, 1e-9),
        int((table["decision"] == LEAK).sum()),
        int((table["decision"] == NOLEAK).sum()),
        int((~scored).sum()),
    )
    columns = [c for c in table.columns if c != "error"] + ["error"]
    return table[columns]
