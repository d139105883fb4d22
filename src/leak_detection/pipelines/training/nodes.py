"""Train one mode's LeakCNNMulti from the shared feature store.

The namespace decides the mode; the model's output order, the leak index and the
targets all come from that mode's own definitions, never from another mode's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pandas as pd
import torch

from leak_detection.decisions.inference import predict_segments
from leak_detection.decisions.rules import DecisionRule, choose_decision_rule
from leak_detection.decisions.scoring import EVAL_METHOD
from leak_detection.decisions.split_scores import SplitScores
from leak_detection.features.familiarity import fit_familiarity
from leak_detection.features.segment_batches import SegmentSource
from leak_detection.features.store import MelFeatureStore
from leak_detection.features.store_contract import front_end_problem
from leak_detection.labels import CLASS_NAMES, LEAK
from leak_detection.metrics.model_split import dataset_fingerprint, split_file_ids, split_sha256
from leak_detection.model.meta import ModelMeta, feature_config_sha256, fit_fields
from leak_detection.model.network import LeakCNNMulti, param_count
from leak_detection.pipelines.data_indexing.nodes import (
    STORE_FINGERPRINT,
    recorded_store_fingerprint,
    store_fingerprint,
)
from leak_detection.training.config import TrainerConfig
from leak_detection.training.loop import FitResult, fit
from leak_detection.training.loss import LeakLoss

logger = logging.getLogger(__name__)


def _class_names(class_summary: dict, mode: str) -> list[str]:
    names = list(class_summary.get("class_names") or [])
    if class_summary.get("mode") != mode or LEAK not in names or len(names) < 2:
        raise ValueError(
            f"{mode}: class_summary.json is not this mode's (mode {class_summary.get('mode')!r}, classes {names}); "
            "rebuild it with `kedro run --pipelines data_indexing` (or `train_from_store` for a store)"
        )
    return names


def check_built_together(
    mel_features: MelFeatureStore, file_targets: pd.DataFrame, class_summary: dict[str, Any], mode: str
) -> None:
    """Refuse a store, file_targets and class_summary that different data_indexing runs left behind.

    They are written by separate nodes; a run that failed between two of them left a new
    store beside an old split, and training would have mixed them without a word.
    """
    pieces = {
        "the feature store": store_fingerprint(mel_features),
        f"{mode}/file_targets.csv": recorded_store_fingerprint(file_targets),
        f"{mode}/class_summary.json": class_summary.get(STORE_FINGERPRINT),
    }
    unrecorded = [name for name, fingerprint in pieces.items() if fingerprint is None]
    if unrecorded:
        logger.warning("%s: %s record no store fingerprint (older files): not checked", mode, unrecorded)
    known = {name: fingerprint for name, fingerprint in pieces.items() if fingerprint is not None}
    problems = []
    if len(set(known.values())) > 1:
        problems.append("built from different stores: " + ", ".join(f"{n} {f[:12]}" for n, f in known.items()))
    summary_split = class_summary.get("split_sha256")
    if summary_split is not None and summary_split != split_sha256(split_file_ids(file_targets)):
        problems.append(f"{mode}/class_summary.json counts another split than {mode}/file_targets.csv holds")
    if problems:
        raise ValueError(
            f"{mode}: the training inputs do not belong together ({'; '.join(problems)}); a data_indexing run "
            "probably stopped between writing them. Rebuild them with `kedro run --pipelines data_indexing` "
            "(for a store: `kedro run --pipelines train_from_store --params feature_store=PATH`)"
        )


def validation_decision_rule(
    model: LeakCNNMulti, validation: SegmentSource, names: list[str], batch_size: int
) -> tuple[DecisionRule, list[dict[str, Any]]]:
    """The best model's file decision rule, chosen on validation (``leak_detection.decisions.rules``)."""
    predictions = predict_segments(model, validation.ordered_blocks(), names.index(LEAK), batch_size=batch_size)
    file_ids = [validation.store.file_ids[i] for i in validation.file_indices]
    scores = SplitScores.from_predictions(predictions, validation.local_offsets, validation.n_short, file_ids, names)
    return choose_decision_rule(scores, [names[t] for t in validation.file_targets])


def _data_meta(
    mel_features: MelFeatureStore,
    file_targets: pd.DataFrame,
    class_summary: dict[str, Any],
    train: SegmentSource,
    validation: SegmentSource,
) -> dict[str, Any]:
    """What the model was trained on: features, split, class counts, familiarity statistics."""
    split_ids = split_file_ids(file_targets)
    familiarity = fit_familiarity(train.file_summaries(), validation.file_summaries())
    return {
        "feature_config": mel_features.feature_config,
        "feature_config_sha256": feature_config_sha256(mel_features.feature_config),
        "front_end_problem": front_end_problem(mel_features.feature_config, mel_features.segments_mel.shape),
        "familiarity": familiarity.to_dict(),
        "split_files": {s: len(ids) for s, ids in split_ids.items()},
        "split_sha256": split_sha256(split_ids),
        "split_file_ids": split_ids,
        "train_files_per_class": class_summary["files_per_class"]["train"],
        "split_short_segments": {"train": train.n_samples, "validation": validation.n_samples},
        "class_weights": class_summary["class_weights"],
        "leak_pos_weight": class_summary["leak_pos_weight"],
    }


def _model_meta(  # noqa: PLR0913
    mode: str,
    names: list[str],
    model: LeakCNNMulti,
    config: TrainerConfig,
    result: FitResult,
    rule: DecisionRule,
    data: dict[str, Any],
) -> ModelMeta:
    """The best model's ``model_meta.json``: reference fields, decision rule, training data (``data``) and run."""
    return ModelMeta(
        # The reference system's fields, as its users know them.
        binary_mode=mode == "binary",
        num_classes=len(names),
        class_names=names,
        original_class_names=list(CLASS_NAMES),
        leak_class_name=LEAK,
        leak_idx=CLASS_NAMES.index(LEAK),
        eval_method=EVAL_METHOD,
        model_type=type(model).__name__,
        trainer_cfg=config.to_dict(),
        # Added: what a deployment needs to reproduce the training-time behaviour.
        mode=mode,
        leak_output_idx=names.index(LEAK),
        threshold=rule.threshold,
        decision_score=rule.score,
        threshold_source="validation sweep 0.10..0.90 step 0.05: best file-level leak F1 (binary), best mean "
        "of leak F1 and macro F1 (multiclass)",
        param_count=param_count(model),
        **data,
        **fit_fields(result),
    )


def train_model(
    mel_features: MelFeatureStore,
    file_targets: pd.DataFrame,
    class_summary: dict[str, Any],
    training: dict[str, Any],
    mode: str,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, Any], pd.DataFrame]:
    """The best model of the run (by validation file-level leak F1), its metadata and the epoch log.

    ``on_epoch`` (not wired in the pipeline) lets a caller such as the tuner watch each epoch (``fit``).
    """
    config = TrainerConfig.from_params(training)
    names = _class_names(class_summary, mode)
    check_built_together(mel_features, file_targets, class_summary, mode)
    budget = int(config.runtime.memory_budget_mb * 2**20)
    train = SegmentSource.for_split(mel_features, file_targets, "train", budget)
    validation = SegmentSource.for_split(mel_features, file_targets, "validation", budget)

    torch.manual_seed(config.trajectory.seed)
    model = LeakCNNMulti(n_classes=len(names), n_mels=train.n_mels, dropout=config.trajectory.dropout)
    model.set_normalisation(*train.mean_std())
    loss_fn = LeakLoss(
        class_summary["class_weights"],
        config.trajectory.leak_aux_weight,
        class_summary["leak_pos_weight"],
        config.trajectory.label_smoothing,
    )
    fingerprint = dataset_fingerprint(mel_features, file_targets)
    logger.info("%s: LeakCNNMulti(n_classes=%d), %d parameters", mode, len(names), param_count(model))

    result = fit(
        model, train, validation, loss_fn, names.index(LEAK), config, fingerprint, label=f"{mode}: ", on_epoch=on_epoch
    )
    logger.info(
        "%s: best validation file-level leak F1 %.3f at epoch %d (threshold %.2f); %d epochs, %.0f s, %.0f samples/s",
        mode,
        result.best_file_leak_f1,
        result.best_epoch,
        result.best_threshold,
        result.epochs_run,
        result.train_seconds,
        result.samples_per_second,
    )
    model.load_state_dict(result.best_state)
    rule, _ = validation_decision_rule(model.cpu(), validation, names, config.runtime.eval_batch_size)
    logger.info("%s: decision rule chosen on validation: %s", mode, rule.describe())
    data = _data_meta(mel_features, file_targets, class_summary, train, validation)
    meta = _model_meta(mode, names, model, config, result, rule, {**data, "dataset_fingerprint": fingerprint})
    return result.best_state, meta.to_dict(), pd.DataFrame(result.history)
