"""Train one mode's LeakCNNMulti from the shared feature store.

The namespace decides the mode; the model's output order, the leak index and the
targets all come from that mode's own definitions, never from another mode's.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import torch

from leak_detection.feature_store import MelFeatureStore
from leak_detection.labels import CLASS_NAMES, LEAK, leak_output_idx, mode_class_names
from leak_detection.model import LeakCNNMulti, param_count, state_dict_sha256
from leak_detection.scoring import EVAL_METHOD
from leak_detection.segment_batches import SegmentSource
from leak_detection.trainer import LeakLoss, TrainerConfig, fit

logger = logging.getLogger(__name__)


def dataset_fingerprint(mel_features: MelFeatureStore, file_targets: pd.DataFrame) -> str:
    """Changes when the features, the split or the targets do."""
    digest = hashlib.sha256()
    digest.update(mel_features.source_fingerprint.encode())
    digest.update(json.dumps(mel_features.feature_config, sort_keys=True).encode())
    for row in file_targets.sort_values("file_id").itertuples(index=False):
        digest.update(f"{row.file_id}\0{row.split}\0{row.target}\n".encode())
    return digest.hexdigest()


def _check_classes(class_summary: dict, mode: str) -> None:
    names = list(mode_class_names(mode))
    if class_summary.get("class_names") != names:
        raise ValueError(
            f"{mode}: class_summary lists classes {class_summary.get('class_names')}, expected {names}; "
            "rebuild it with `kedro run --pipelines data_indexing`"
        )


def train_model(
    mel_features: MelFeatureStore,
    file_targets: pd.DataFrame,
    class_summary: dict[str, Any],
    training: dict[str, Any],
    mode: str,
) -> tuple[dict[str, torch.Tensor], dict[str, Any], pd.DataFrame]:
    """The best model of the run (by validation file-level leak F1), its metadata and the epoch log."""
    config = TrainerConfig.from_params(training)
    _check_classes(class_summary, mode)
    names = list(mode_class_names(mode))
    budget = int(config.memory_budget_mb * 2**20)
    train = SegmentSource.for_split(mel_features, file_targets, "train", budget)
    validation = SegmentSource.for_split(mel_features, file_targets, "validation", budget)

    torch.manual_seed(config.seed)
    model = LeakCNNMulti(n_classes=len(names), n_mels=train.n_mels, dropout=config.dropout)
    model.set_normalisation(*train.mean_std())
    loss_fn = LeakLoss(class_summary["class_weights"], config.leak_aux_weight, class_summary["leak_pos_weight"])
    fingerprint = dataset_fingerprint(mel_features, file_targets)
    logger.info("%s: LeakCNNMulti(n_classes=%d), %d parameters", mode, len(names), param_count(model))

    result = fit(model, train, validation, loss_fn, leak_output_idx(mode), config, fingerprint, label=f"{mode}: ")
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
    meta = {
        # The reference system's fields, as its users know them.
        "binary_mode": mode == "binary",
        "num_classes": len(names),
        "class_names": names,
        "original_class_names": list(CLASS_NAMES),
        "leak_class_name": LEAK,
        "leak_idx": CLASS_NAMES.index(LEAK),
        "best_file_leak_f1": result.best_file_leak_f1,
        "best_epoch": result.best_epoch,
        "eval_method": EVAL_METHOD,
        "model_type": type(model).__name__,
        "trainer_cfg": config.to_dict(),
        # Added: what a deployment needs to reproduce the training-time behaviour.
        "mode": mode,
        "leak_output_idx": leak_output_idx(mode),
        "threshold": result.best_threshold,
        "threshold_source": "validation sweep 0.10..0.90 step 0.05, best file-level leak F1",
        "feature_config": mel_features.feature_config,
        "param_count": param_count(model),
        "dataset_fingerprint": fingerprint,
        "split_files": {s: int((file_targets["split"] == s).sum()) for s in ("train", "validation", "test")},
        "split_short_segments": {"train": train.n_samples, "validation": validation.n_samples},
        "class_weights": class_summary["class_weights"],
        "leak_pos_weight": class_summary["leak_pos_weight"],
        "epochs_run": result.epochs_run,
        "stopped_early": result.stopped_early,
        "resumed_from_epoch": result.resumed_from_epoch,
        "training_seconds": result.train_seconds,
        "samples_per_second": result.samples_per_second,
        "device": result.device,
        "torch_version": torch.__version__,
        "state_dict_sha256": state_dict_sha256(result.best_state),
        "created_at_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return result.best_state, meta, pd.DataFrame(result.history)
