"""The training block: flat for users and model_meta.json, split by concern inside."""

from dataclasses import fields, replace
from pathlib import Path

import pytest
import yaml

from leak_detection.model.network import LeakCNNMulti
from leak_detection.training.checkpoints import checkpoint_compatibility
from leak_detection.training.config import RuntimeConfig, StoppingConfig, TrainerConfig, TrajectoryConfig

PROJECT = Path(__file__).resolve().parents[2]

# The keys of trajectory fingerprints in checkpoints written before the config was split:
# they must stay the same for those checkpoints to be resumed.
EARLIER_TRAJECTORY_KEYS = {
    "batch_size",
    "learning_rate",
    "weight_decay",
    "warmup_epochs",
    "min_lr_ratio",
    "grad_clip",
    "leak_aux_weight",
    "dropout",
    "seed",
    "amp",
    "augment_gain_db",
    "augment_tilt_db",
    "label_smoothing",
}

OTHER_VALUES = {
    "batch_size": 512,
    "learning_rate": 2e-3,
    "weight_decay": 0.0,
    "warmup_epochs": 2.0,
    "min_lr_ratio": 0.5,
    "grad_clip": 5.0,
    "leak_aux_weight": 1.0,
    "dropout": 0.1,
    "seed": 7,
    "amp": "off",
    "augment_gain_db": 6.0,
    "augment_tilt_db": 3.0,
    "label_smoothing": 0.1,
    "epochs": 60,
    "patience": 12,
    "checkpoint_dir": "elsewhere",
    "keep_checkpoints": 1,
    "fresh_start": True,
    "device": "cpu",
    "channels_last": False,
    "compile": True,
    "memory_budget_mb": 64,
    "eval_batch_size": 256,
}


def shipped_training_block() -> dict:
    parameters = yaml.safe_load((PROJECT / "conf/base/parameters_training.yml").read_text())
    return parameters["binary"]["training"]


def fingerprint(config: TrainerConfig) -> dict:
    return checkpoint_compatibility(LeakCNNMulti(n_classes=2), "data", config.trajectory, 10)


def test_the_shipped_block_reads_and_writes_back_flat_and_unchanged():
    block = shipped_training_block()
    config = TrainerConfig.from_params(block)
    assert config.to_dict() == block
    assert set(OTHER_VALUES) == set(block) == set(TrainerConfig().to_dict())


def test_each_key_lands_in_exactly_one_concern():
    names = [f.name for part in (TrajectoryConfig, RuntimeConfig, StoppingConfig) for f in fields(part)]
    assert len(names) == len(set(names)) == len(OTHER_VALUES)
    config = TrainerConfig.from_params({"seed": 7, "eval_batch_size": 256, "patience": 2})
    assert (config.trajectory.seed, config.runtime.eval_batch_size, config.stopping.patience) == (7, 256, 2)


def test_an_unknown_key_is_refused_with_the_allowed_keys():
    with pytest.raises(ValueError, match=r"unknown training parameters \['learnig_rate'\]; allowed keys are \["):
        TrainerConfig.from_params({"learnig_rate": 0.1})


def test_the_trajectory_fingerprint_is_the_whole_trajectory_part_with_the_earlier_keys():
    assert set(fingerprint(TrainerConfig())["trajectory"]) == EARLIER_TRAJECTORY_KEYS


@pytest.mark.parametrize("key", sorted(OTHER_VALUES))
def test_the_fingerprint_changes_with_a_trajectory_setting_and_with_nothing_else(key):
    changed = TrainerConfig.from_params({key: OTHER_VALUES[key]})
    assert (fingerprint(changed) != fingerprint(TrainerConfig())) == (key in EARLIER_TRAJECTORY_KEYS)


def test_a_bad_value_names_its_key_whichever_concern_holds_it():
    for key, value in [("batch_size", 0), ("eval_batch_size", 0), ("patience", 0), ("device", "gpu")]:
        with pytest.raises(ValueError, match=f"training.{key} = "):
            TrainerConfig.from_params({key: value})
    with pytest.raises(ValueError, match="training.dropout = 1.0: must be in"):
        replace(TrajectoryConfig(), dropout=1.0)
