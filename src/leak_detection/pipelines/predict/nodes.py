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
from leak_detection.decisions.rules import DecisionRule, decide_files, is_binary
from leak_detection.decisions.scoring import long_segment_scores
from leak_detection.features.familiarity import Familiarity, recording_summary, unfamiliar_advice
from leak_detection.features.store_contract import front_end_problem
from leak_detection.labels import LEAK, NOLEAK
from leak_detection.model.network import model_from_state

logger = logging.getLogger(__name__)


def _front_end(model_meta: dict[str, Any]) -> FrontEndConfig:
    problem = model_meta.get("front_end_problem") or front_end_problem(model_meta["feature_config"])
    if problem:
        raise ValueError(
            f"{model_meta.get('mode')} model {model_meta.get('model_version')} was trained on a feature store this "
            f"project cannot reproduce from audio: {problem}. predict needs features made by that same front end. "
            "Train a model on recordings (`kedro run --pipelines train_both --params recordings_dir=PATH`) or on a "
            "store built by this project to classify new recordings"
        )
    return FrontEndConfig.from_params(model_meta["feature_config"])


def _flag_unfamiliar(table: pd.DataFrame, familiarity: Familiarity | None, model_meta: dict) -> pd.DataFrame:
    if "unfamiliarity" not in table:
        table["unfamiliarity"] = np.nan
    table["unfamiliar"] = table["unfamiliarity"] > familiarity.threshold if familiarity else False
    n_unfamiliar = int(table["unfamiliar"].sum())
    if familiarity is None:
        logger.info(
            "%s: model %s predates familiarity statistics", model_meta.get("mode"), model_meta.get("model_version")
        )
    elif n_unfamiliar:
        logger.warning("%s", unfamiliar_advice(n_unfamiliar, int(table["error"].eq("").sum()), familiarity.threshold))
    return table


def _score_files(table, scored, features, network, rule, config, model_meta, batch_size) -> None:  # noqa: PLR0913
    """Fill in the scores, decision and class of the readable files (rows ``scored``) in place."""
    class_names = list(model_meta["class_names"])
    segments = torch.from_numpy(np.concatenate(features)).reshape(-1, 1, config.n_mels, config.n_frames)
    predictions = predict_segments(
        network, [(segments, None, None)], model_meta["leak_output_idx"], batch_size=batch_size
    )
    decided = decide_files(
        rule,
        long_segment_scores(predictions.leak_probability, config.n_short),
        predictions.class_probabilities.reshape(-1, config.n_short, len(class_names)).mean(axis=1),
        np.concatenate([[0], np.cumsum(table.loc[scored, "long_segments"])]),
        class_names,
        model_meta["leak_output_idx"],
    )
    table.loc[scored, "mean_leak_score"] = decided.votes.mean_leak_score
    table.loc[scored, "fraction_over_threshold"] = decided.votes.fraction_over_threshold
    table.loc[scored, "decision"] = np.where(decided.votes.is_leak, LEAK, NOLEAK)
    table.loc[scored, "predicted_class"] = decided.predicted_class
    if not is_binary(class_names):
        for k, name in enumerate(class_names):
            table.loc[scored, f"p_{name}"] = decided.mean_class_probs[:, k]


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
    config = _front_end(model_meta)
    # An operator may trade precision for recall; by default the validated rule as it is.
    rule = DecisionRule.from_meta(model_meta, predict.get("threshold"))
    familiarity = Familiarity.from_meta(model_meta)
    started = time.perf_counter()
    rows, features = [], []
    file_ids = list(inbox.table["file_id"])
    workers = predict.get("workers", "auto")
    for result in analyse_files(inbox, file_ids, config, workers=workers, desc=f"{model_meta['mode']}: reading"):
        analysed, reason = result.analysed, result.reason
        row = {
            "file": result.file_id,
            "mode": model_meta["mode"],
            "model_version": model_meta.get("model_version", ""),
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
    table = pd.DataFrame(rows)
    scored = table["error"] == ""
    for column in ("mean_leak_score", "fraction_over_threshold"):
        table[column] = np.nan
    table["threshold"] = rule.threshold
    table["decision"] = ""
    table["predicted_class"] = ""
    if features:
        _score_files(table, scored, features, network, rule, config, model_meta, int(predict["batch_size"]))
    table = _flag_unfamiliar(table, familiarity, model_meta)
    elapsed = time.perf_counter() - started
    logger.info(
        "%s: %d recordings in %.1f s (%.1f files/s): %d LEAK, %d NOLEAK, %d not readable",
        model_meta["mode"],
        len(table),
        elapsed,
        len(table) / max(elapsed, 1e-9),
        int((table["decision"] == LEAK).sum()),
        int((table["decision"] == NOLEAK).sum()),
        int((~scored).sum()),
    )
    columns = [c for c in table.columns if c != "error"] + ["error"]
    return table[columns]
