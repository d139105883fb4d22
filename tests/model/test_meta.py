"""``ModelMeta`` reads and writes ``model_meta.json`` exactly as it was, and refuses what it always refused."""

import copy
import json

import pytest
import torch

from leak_detection.audio.front_end import FrontEndConfig
from leak_detection.decisions.rules import DecisionRule
from leak_detection.model.meta import ModelMeta, feature_config_sha256
from leak_detection.model.network import LeakCNNMulti, model_from_state, state_dict_sha256

FEATURE_CONFIG = FrontEndConfig(f_max=2048.0).to_dict()
SPLIT_FILE_IDS = {"train": ["a.wav", "b.wav"], "validation": ["c.wav"], "test": ["d.wav"]}


@pytest.fixture(scope="module")
def weights():
    torch.manual_seed(0)
    return LeakCNNMulti(n_classes=2).state_dict()


def saved_meta(state_dict):
    """A binary meta as the training node writes it and ``ModelVersionHook`` stamps it: every key, in order."""
    return {
        "binary_mode": True,
        "num_classes": 2,
        "class_names": ["NOLEAK", "LEAK"],
        "original_class_names": ["LEAK", "NORMAL", "QUIET", "RANDOM", "MECHANICAL"],
        "leak_class_name": "LEAK",
        "leak_idx": 0,
        "best_file_leak_f1": 0.9411764705882353,
        "best_epoch": 5,
        "eval_method": "paper_exact_file_level_50pct_voting",
        "model_type": "LeakCNNMulti",
        "trainer_cfg": {"epochs": 12, "batch_size": 1024, "amp": None},
        "mode": "binary",
        "leak_output_idx": 1,
        "threshold": 0.55,
        "decision_score": "leak_probability",
        "threshold_source": "validation sweep 0.10..0.90 step 0.05",
        "early_stopping_threshold": 0.55,
        "param_count": 617730,
        "feature_config": FEATURE_CONFIG,
        "feature_config_sha256": feature_config_sha256(FEATURE_CONFIG),
        "front_end_problem": None,
        "familiarity": {"statistic": "per-band", "mean": [-40.0] * 64, "std": [3.0] * 64, "threshold": 3.5},
        "split_files": {"train": 2, "validation": 1, "test": 1},
        "split_sha256": "5" * 64,
        "split_file_ids": SPLIT_FILE_IDS,
        "train_files_per_class": {"NOLEAK": 1, "LEAK": 1},
        "split_short_segments": {"train": 600, "validation": 300},
        "class_weights": [0.71, 1.68],
        "leak_pos_weight": 2.36,
        "dataset_fingerprint": "f" * 64,
        "epochs_run": 9,
        "stopped_early": True,
        "resumed_from_epoch": 0,
        "training_seconds": 399.1,
        "samples_per_second": 3601.0,
        "device": "cpu",
        "torch_version": torch.__version__,
        "state_dict_sha256": state_dict_sha256(state_dict),
        "created_at_utc": "2026-11-27T07:27:26+00:00",
        "model_version": "2026-11-27T07.19.40.436Z",
    }


def test_a_saved_meta_writes_back_to_the_same_json_text(weights):
    saved = saved_meta(weights)
    meta = ModelMeta.from_dict(saved, weights)
    assert json.dumps(meta.to_dict()) == json.dumps(saved)  # same keys, values and order
    assert ModelMeta.from_dict(meta.to_dict()) == meta


def test_it_reads_the_file_and_answers_what_the_nodes_ask(weights, tmp_path):
    path = tmp_path / "model_meta.json"
    path.write_text(json.dumps(saved_meta(weights)))
    meta = ModelMeta.from_json(path, weights)
    assert meta.decision_rule() == DecisionRule("leak_probability", 0.55)
    assert meta.decision_rule(threshold=0.3) == DecisionRule("leak_probability", 0.3)
    assert meta.seconds_per_long_hop == pytest.approx(512 / 4096)
    assert meta.unreproducible_front_end() is None
    assert meta.familiarity_statistics().threshold == 3.5


@pytest.mark.parametrize(
    "change",
    [
        lambda m: m.update(threshold=5),
        lambda m: m.update(leak_output_idx=0),
        lambda m: m.pop("state_dict_sha256"),
        lambda m: m.update(state_dict_sha256="0" * 64),
        lambda m: m.update(num_classes=5, decision_score="loudness"),
        lambda m: m["feature_config"].update(n_mels=64),
        lambda m: m["feature_config"].update(sample_rate=8000),
    ],
    ids=["threshold", "leak index", "no hash", "other weights", "two fields", "mel bands", "edited front end"],
)
def test_a_bad_meta_is_refused_with_the_message_model_from_state_gives(weights, change):
    bad = copy.deepcopy(saved_meta(weights))
    change(bad)
    with pytest.raises(ValueError) as from_state:
        model_from_state(weights, bad)
    with pytest.raises(ValueError) as from_dict:
        ModelMeta.from_dict(bad, weights)
    assert str(from_dict.value) == str(from_state.value)
    assert "(model version 2026-11-27T07.19.40.436Z) cannot be used with these weights" in str(from_dict.value)


def test_without_the_weights_everything_that_needs_none_is_still_checked(weights):
    meta = saved_meta(weights)
    with pytest.raises(ValueError, match=r"threshold = 5: must be a number in \(0, 1\)"):
        ModelMeta.from_dict({**meta, "threshold": 5})
    with pytest.raises(ValueError, match="it holds a list, not a JSON object"):
        ModelMeta.from_dict([meta])
    # Only the weights can tell another model's meta or a mel-band count apart.
    assert ModelMeta.from_dict({**meta, "state_dict_sha256": "0" * 64}).num_classes == 2


def test_an_older_meta_loads_as_before_and_writes_back_without_the_newer_keys(weights):
    optional = ("binary_mode", "decision_score", "split_file_ids", "familiarity", "front_end_problem")
    older = {k: v for k, v in saved_meta(weights).items() if k not in (*optional, "feature_config_sha256")}
    meta = ModelMeta.from_dict(older, weights)
    assert meta.to_dict() == older and set(optional) <= meta.absent
    assert meta.decision_rule() == DecisionRule("leak_probability", 0.55)  # the only rule before rules were recorded
    assert meta.familiarity_statistics() is None and meta.split_file_ids is None
    required_only = {k: older[k] for k in ("model_type", "state_dict_sha256", "mode", "num_classes")}
    required_only |= {k: older[k] for k in ("class_names", "leak_output_idx", "threshold", "feature_config")}
    assert ModelMeta.from_dict(required_only, weights).to_dict() == required_only


def test_keys_this_project_does_not_know_are_kept(weights):
    meta = ModelMeta.from_dict({**saved_meta(weights), "site_notes": "pump house"})
    assert meta.extra == {"site_notes": "pump house"} and meta.to_dict()["site_notes"] == "pump house"


def test_a_meta_not_saved_yet_has_no_version_key(weights):
    unsaved = {k: v for k, v in saved_meta(weights).items() if k != "model_version"}
    meta = ModelMeta.from_dict(unsaved)
    assert meta.model_version is None and "model_version" not in meta.to_dict()
