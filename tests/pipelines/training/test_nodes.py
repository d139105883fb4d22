import logging

import pytest
import torch

from leak_detection.decisions.scoring import EVAL_METHOD
from leak_detection.model.meta import ModelMeta
from leak_detection.pipelines.data_indexing.nodes import file_targets, summarise_classes
from leak_detection.pipelines.training.nodes import train_model
from leak_detection.training.checkpoints import CheckpointFolder
from tests.conftest import synthetic_store

REFERENCE_META_FIELDS = {
    "binary_mode",
    "num_classes",
    "class_names",
    "original_class_names",
    "leak_class_name",
    "leak_idx",
    "best_file_leak_f1",
    "best_epoch",
    "eval_method",
    "model_type",
    "trainer_cfg",
    "leak_output_idx",
    "threshold",
    "feature_config",
    "param_count",
    "dataset_fingerprint",
    "split_files",
    "split_file_ids",
    "decision_score",
}
META_KEYS = [
    *("binary_mode", "num_classes", "class_names", "original_class_names", "leak_class_name", "leak_idx"),
    *("best_file_leak_f1", "best_epoch", "eval_method", "model_type", "trainer_cfg", "mode", "leak_output_idx"),
    *("threshold", "decision_score", "threshold_source", "early_stopping_threshold", "param_count"),
    *("feature_config", "feature_config_sha256", "front_end_problem", "familiarity", "split_files"),
    *("split_sha256", "split_file_ids", "train_files_per_class", "split_short_segments", "class_weights"),
    *("leak_pos_weight", "dataset_fingerprint", "epochs_run", "stopped_early", "resumed_from_epoch"),
    *("training_seconds", "samples_per_second", "device", "torch_version", "state_dict_sha256", "created_at_utc"),
]
"""``model_meta.json`` as users know it, in its order (``ModelVersionHook`` adds ``model_version`` at save)."""


def train(tmp_path, mode="binary", store_and_index=None, **overrides):
    store, index = store_and_index or synthetic_store()
    targets = file_targets(index, mode)
    params = {
        "epochs": 3,
        "batch_size": 64,
        "patience": 5,
        "checkpoint_dir": str(tmp_path / mode / "checkpoints"),
        "eval_batch_size": 256,
        **overrides,
    }
    return train_model(store, targets, summarise_classes(targets, mode), params, mode)


def test_binary_model_finds_the_leak_files(tmp_path):
    # The replaced system's binary mode found 0 of 1,687 leaks (docs/architecture.md, D1).
    _, meta, history = train(tmp_path, "binary")
    assert history["val_file_leak_recall"].max() > 0
    assert meta["best_file_leak_f1"] >= 0.8


def test_model_meta_has_every_field_of_both_modes(tmp_path):
    state, meta, _ = train(tmp_path, "binary", epochs=1)
    assert REFERENCE_META_FIELDS <= set(meta) and list(meta) == META_KEYS
    assert ModelMeta.from_dict(meta, state).to_dict() == meta
    assert meta["binary_mode"] is True and meta["num_classes"] == 2
    assert meta["class_names"] == ["NOLEAK", "LEAK"] and meta["leak_output_idx"] == 1
    assert meta["original_class_names"] == ["LEAK", "NORMAL", "QUIET", "RANDOM", "MECHANICAL"]
    assert meta["leak_idx"] == 0 and meta["leak_class_name"] == "LEAK"
    assert meta["eval_method"] == EVAL_METHOD == "paper_exact_file_level_50pct_voting"
    assert meta["model_type"] == "LeakCNNMulti" and meta["param_count"] == 617_730
    assert meta["trainer_cfg"]["epochs"] == 1
    assert 0.1 <= meta["threshold"] <= 0.9
    assert meta["split_files"] == {"train": 25, "validation": 10, "test": 5}
    assert set(state) >= {"input_mean", "input_std", "head.weight"}
    _, multi_meta, _ = train(tmp_path, "multiclass", epochs=1)
    assert multi_meta["binary_mode"] is False and multi_meta["num_classes"] == 5
    assert multi_meta["leak_output_idx"] == 0 and multi_meta["param_count"] == 618_758


def test_an_interrupted_run_resumed_gives_the_same_weights(tmp_path, monkeypatch):
    uninterrupted, meta_a, _ = train(tmp_path / "a", "multiclass", epochs=3)

    original_save = CheckpointFolder.save

    def save_then_crash(self, checkpoint):
        original_save(self, checkpoint)
        if checkpoint["epoch"] == 1:
            raise KeyboardInterrupt("simulated interruption after epoch 1")

    monkeypatch.setattr(CheckpointFolder, "save", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        train(tmp_path / "b", "multiclass", epochs=3)
    monkeypatch.setattr(CheckpointFolder, "save", original_save)
    resumed, meta_b, history = train(tmp_path / "b", "multiclass", epochs=3)

    assert meta_b["resumed_from_epoch"] == 1
    assert list(history["epoch"]) == [1, 2, 3]
    assert meta_b["best_epoch"] == meta_a["best_epoch"]
    for key in uninterrupted:
        assert torch.equal(uninterrupted[key], resumed[key]), key
    last = torch.load(tmp_path / "b/multiclass/checkpoints/last.pth", weights_only=True)
    assert last["epoch"] == 3
    assert sorted(p.name for p in (tmp_path / "b/multiclass/checkpoints").glob("epoch_*.pth")) == [
        "epoch_001.pth",
        "epoch_002.pth",
        "epoch_003.pth",
    ]


def test_changed_data_starts_fresh_and_says_why(tmp_path, caplog):
    train(tmp_path, "binary", epochs=1)
    with caplog.at_level(logging.INFO):
        _, meta, _ = train(tmp_path, "binary", store_and_index=synthetic_store(seed=5), epochs=1)
    assert meta["resumed_from_epoch"] == 0
    assert "different data_fingerprint" in caplog.text


def test_a_corrupted_last_checkpoint_falls_back_to_the_newest_intact_epoch(tmp_path, caplog):
    train(tmp_path, "binary", epochs=2)
    folder = tmp_path / "binary/checkpoints"
    (folder / "last.pth").write_bytes((folder / "last.pth").read_bytes()[:100])
    with caplog.at_level(logging.INFO):
        _, meta, _ = train(tmp_path, "binary", epochs=3)
    assert "last.pth is unreadable" in caplog.text
    assert meta["resumed_from_epoch"] == 2


def test_fresh_start_parameter_ignores_the_checkpoint(tmp_path):
    train(tmp_path, "binary", epochs=1)
    _, meta, _ = train(tmp_path, "binary", epochs=1, fresh_start=True)
    assert meta["resumed_from_epoch"] == 0
    assert (tmp_path / "binary/checkpoints/superseded/last.pth").exists()


def test_early_stopping_stops(tmp_path):
    # A learning rate too small to change anything: validation F1 cannot improve.
    _, meta, history = train(tmp_path, "binary", epochs=20, patience=2, learning_rate=1e-12)
    assert meta["stopped_early"] is True
    assert len(history) == 3 and meta["best_epoch"] == 1


@pytest.mark.parametrize("key, value", [("epochs", -1), ("batch_size", 0), ("amp", "fp8"), ("nope", 1)])
def test_bad_training_parameters_name_the_key(tmp_path, key, value):
    with pytest.raises(ValueError, match=key):
        train(tmp_path, "binary", **{key: value})


def evaluate(state, meta, store, targets):
    """The evaluation template's nodes, called in order on in-memory objects."""
    from leak_detection.pipelines.evaluation import nodes as ev

    params = {"batch_size": 512, "memory_budget_mb": 64, "on_split_mismatch": "stop", "bootstrap": {"seed": 1}}
    own, check = ev.evaluated_files(meta, store, targets, params)
    scores = ev.score_segments(state, meta, store, own, params)
    _, rule = ev.choose_rule(scores, own, meta)
    predictions = ev.predict_files(scores, own, rule, meta)
    return predictions, ev.evaluation_metrics(predictions, scores, rule, check, meta, params)


def test_two_runs_of_one_definition_give_identical_weights_and_metrics(tmp_path):
    timing = {"seconds", "samples_per_second"}
    runs = []
    for name in ("first", "second"):
        store, index = synthetic_store()
        targets = file_targets(index, "multiclass")
        state, meta, history = train(tmp_path / name, "multiclass", (store, index), epochs=2)
        predictions, metrics = evaluate(state, meta, store, targets)
        metrics["training"].pop("training_seconds")
        runs.append((state, history.drop(columns=sorted(timing)), predictions, metrics))
    (state_a, history_a, predictions_a, metrics_a), (state_b, history_b, predictions_b, metrics_b) = runs
    assert state_a.keys() == state_b.keys()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert history_a.equals(history_b)
    assert predictions_a.equals(predictions_b)
    assert metrics_a == metrics_b
