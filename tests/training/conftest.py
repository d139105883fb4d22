"""A tiny training run (ten training files, 60 short segments) for unit tests of the loop."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch

from leak_detection.features.segment_batches import SegmentSource
from leak_detection.labels import LEAK
from leak_detection.model.network import LeakCNNMulti
from leak_detection.pipelines.data_indexing.nodes import file_targets, summarise_classes
from leak_detection.training.config import TrainerConfig
from leak_detection.training.loop import FitResult, fit
from leak_detection.training.loss import LeakLoss
from leak_detection.training.runtime import TrainingRuntime
from leak_detection.training.schedule import optimiser_and_schedule
from leak_detection.training.state import TrainingState
from tests.conftest import synthetic_store

TIMING = ("seconds", "samples_per_second")


@dataclass
class TinyRun:
    """A fresh model, its loss, its data and its config: what ``fit`` takes."""

    model: LeakCNNMulti
    loss_fn: LeakLoss
    train: SegmentSource
    validation: SegmentSource
    leak_output_idx: int
    config: TrainerConfig

    def fit(self, data_fingerprint: str = "tiny") -> FitResult:
        return fit(
            self.model,
            self.train,
            self.validation,
            self.loss_fn,
            self.leak_output_idx,
            self.config,
            data_fingerprint,
            label="tiny: ",
        )

    def fresh_state(self) -> tuple[TrainingRuntime, torch.nn.Module, TrainingState]:
        """The runtime, the stepping module and the state ``fit`` starts from without a checkpoint."""
        runtime = TrainingRuntime.build(self.config.runtime, self.config.trajectory.amp)
        step_model = runtime.prepare(self.model, self.loss_fn)
        steps_per_epoch = math.ceil(self.train.n_samples / self.config.trajectory.batch_size)
        optimizer, scheduler = optimiser_and_schedule(
            self.model, self.config.trajectory, steps_per_epoch, self.config.stopping.epochs
        )
        return runtime, step_model, TrainingState(self.model, optimizer, scheduler, runtime.scaler)


def tiny_run(checkpoint_dir, mode: str = "binary", **params) -> TinyRun:
    store, index = synthetic_store(files_per_class=4, n_long=2)
    targets = file_targets(index, mode)
    summary = summarise_classes(targets, mode)
    config = TrainerConfig.from_params(
        {
            "epochs": 3,
            "batch_size": 16,
            "patience": 5,
            "eval_batch_size": 64,
            "device": "cpu",
            "checkpoint_dir": str(checkpoint_dir),
            **params,
        }
    )
    train = SegmentSource.for_split(store, targets, "train", 2**30)
    validation = SegmentSource.for_split(store, targets, "validation", 2**30)
    trajectory = config.trajectory
    torch.manual_seed(trajectory.seed)
    model = LeakCNNMulti(n_classes=len(summary["class_names"]), n_mels=train.n_mels, dropout=trajectory.dropout)
    model.set_normalisation(*train.mean_std())
    loss_fn = LeakLoss(
        summary["class_weights"], trajectory.leak_aux_weight, summary["leak_pos_weight"], trajectory.label_smoothing
    )
    return TinyRun(model, loss_fn, train, validation, summary["class_names"].index(LEAK), config)


@pytest.fixture
def make_run(tmp_path):
    """``make_run(mode="binary", **training_params)``: a tiny run checkpointing under ``tmp_path``."""

    def make(mode: str = "binary", **params) -> TinyRun:
        return tiny_run(tmp_path / "checkpoints", mode, **params)

    return make


def without_timing(history: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{k: v for k, v in row.items() if k not in TIMING} for row in history]
