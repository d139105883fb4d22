"""A NaN feature, a NaN model or a hand-edited model_meta.json is refused, naming what is wrong."""

import copy
import logging
import math

import h5py
import numpy as np
import pytest
import torch
from kedro.io import DatasetError

from leak_detection.audio.front_end import FrontEndConfig
from leak_detection.datasets import MelFeatureStoreDataset, TorchModelDataset
from leak_detection.features import store as feature_store
from leak_detection.features.lazy_rows import H5Rows
from leak_detection.features.store import MelFeatureStore
from leak_detection.model.meta import feature_config_sha256
from leak_detection.model.network import LeakCNNMulti, model_from_state, state_dict_sha256
from leak_detection.pipelines.data_indexing.nodes import file_targets, summarise_classes
from leak_detection.pipelines.deployment.nodes import export_onnx_model
from leak_detection.pipelines.evaluation.nodes import score_segments
from leak_detection.pipelines.predict.nodes import predict_recordings
from leak_detection.pipelines.training.nodes import train_model
from leak_detection.training.config import TrainerConfig
from tests.conftest import synthetic_store


def train(folder, mode="binary", store_and_index=None, **overrides):
    store, index = store_and_index or synthetic_store()
    targets = file_targets(index, mode)
    params = {"epochs": 1, "batch_size": 64, "eval_batch_size": 256, "checkpoint_dir": str(folder), **overrides}
    return train_model(store, targets, summarise_classes(targets, mode), params, mode)


@pytest.fixture(scope="module")
def binary_model(tmp_path_factory):
    state, meta, _ = train(tmp_path_factory.mktemp("binary"), "binary")
    return state, meta


def rows_of(store, file_id):
    i = store.file_ids.index(file_id)
    return slice(store.file_offsets[i], store.file_offsets[i + 1])


def saved_store_with_nan(tmp_path, file_id):
    store, index = synthetic_store()
    path = tmp_path / "mel_features.h5"
    MelFeatureStoreDataset(filepath=str(path)).save(store)
    first = rows_of(store, file_id).start
    with h5py.File(path, "a") as h5:
        h5["segments_mel"][first : first + 2] = np.nan
    return path, index


# 1. NaN features, NaN losses, NaN weights


@pytest.mark.parametrize("lazy", [False, True])
def test_a_store_with_nan_features_in_a_training_file_is_refused_on_load_naming_the_file(tmp_path, lazy):
    path, index = saved_store_with_nan(tmp_path, "LEAK/002.wav")
    assert index.set_index("file_id").loc["LEAK/002.wav", "split"] == "train"
    with pytest.raises(DatasetError, match=r"non-finite features .* in 1 of 40 files: LEAK/002.wav \(2 of 6"):
        MelFeatureStoreDataset(filepath=str(path), load_args={"lazy": lazy}).load()


def test_evaluating_a_store_with_nan_test_rows_is_refused_naming_the_test_files(tmp_path):
    path, index = saved_store_with_nan(tmp_path, "QUIET/003.wav")
    assert index.set_index("file_id").loc["QUIET/003.wav", "split"] == "test"
    with pytest.raises(DatasetError, match="QUIET/003.wav"):
        MelFeatureStoreDataset(filepath=str(path), load_args={"lazy": True}).load()


def test_a_lazy_store_is_checked_block_by_block_and_never_read_whole(tmp_path, monkeypatch):
    path, _ = saved_store_with_nan(tmp_path, "MECHANICAL/007.wav")  # the store's last rows
    monkeypatch.setattr(feature_store, "FINITE_CHECK_ROWS", 16)
    monkeypatch.setattr(H5Rows, "__array__", lambda *args, **kwargs: pytest.fail("the whole store was read"))
    blocks = []
    checked = feature_store.non_finite_in
    monkeypatch.setattr(
        "leak_detection.features.lazy_rows.non_finite_in",
        lambda block: blocks.append(len(block)) or checked(block),
    )
    with pytest.raises(DatasetError, match="MECHANICAL/007.wav"):
        MelFeatureStoreDataset(filepath=str(path), load_args={"lazy": True}).load()
    assert max(blocks) == 16 and sum(blocks) == 240


def test_a_store_built_with_an_infinite_feature_is_refused_naming_the_file():
    store, _ = synthetic_store()
    segments = store.segments_mel.copy()
    segments[rows_of(store, "RANDOM/004.wav").start] = np.inf
    with pytest.raises(ValueError, match="non-finite features .* RANDOM/004.wav"):
        MelFeatureStore(segments, store.file_offsets, store.labels, store.file_ids, store.groups, store.label_names)


def test_a_nan_training_loss_stops_training_before_anything_is_saved(tmp_path):
    store, index = synthetic_store()
    # Past the store check, as a store changed in memory after loading would be.
    store.segments_mel[rows_of(store, "LEAK/002.wav")][:2] = np.nan
    with pytest.raises(FloatingPointError, match=r"epoch 1: the training loss .* feature store"):
        train(tmp_path / "checkpoints", "binary", store_and_index=(store, index), epochs=2)
    assert not list((tmp_path / "checkpoints").glob("*.pth"))


def test_a_model_with_nan_weights_is_neither_saved_nor_loaded(tmp_path):
    state = LeakCNNMulti(n_classes=2).state_dict()
    state["fc.weight"][0, 0] = math.nan
    with pytest.raises(DatasetError, match="NaN or infinite values .*'fc.weight'"):
        TorchModelDataset(filepath=str(tmp_path / "saved.pth")).save(state)
    assert not (tmp_path / "saved.pth").exists()
    torch.save(state, tmp_path / "best.pth")
    with pytest.raises(DatasetError, match="NaN or infinite values .*'fc.weight'"):
        TorchModelDataset(filepath=str(tmp_path / "best.pth")).load()


def test_nan_weights_with_their_own_meta_are_refused_by_every_consumer(binary_model):
    state, meta = binary_model
    state = {k: v.clone() for k, v in state.items()}
    state["head.bias"][1] = math.inf
    meta = {**meta, "state_dict_sha256": state_dict_sha256(state)}
    with pytest.raises(ValueError, match=r"NaN or infinite values \(in head.bias\)"):
        model_from_state(state, meta)


# 2. model_meta.json checked on load


THIS_FRONT_END = FrontEndConfig(f_max=2048.0).to_dict()


def edited(meta, change):
    meta = copy.deepcopy(meta)
    change(meta)
    return meta


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda m: m.update(threshold=5), r"threshold = 5: must be a number in \(0, 1\)"),
        (lambda m: m.update(threshold=-1), r"threshold = -1: must be a number in \(0, 1\)"),
        (lambda m: m.update(threshold=True), "threshold = True"),
        (lambda m: m.update(threshold=math.nan), "threshold = nan"),
        (lambda m: m.update(leak_output_idx=0), r"leak_output_idx = 0: LEAK is output 1 of class_names"),
        (lambda m: m.pop("state_dict_sha256"), "state_dict_sha256 is missing"),
        (lambda m: m.update(state_dict_sha256="0" * 64), "different versions"),
        (lambda m: m["feature_config"].update(sample_rate=0), r"feature_config.sample_rate = 0: must be a positive"),
        (lambda m: m["feature_config"].update(sample_rate="4096"), "feature_config.sample_rate = '4096'"),
        (
            lambda m: m.update(feature_config=THIS_FRONT_END | {"sample_rate": 1000}, front_end_problem=None),
            r"feature_config: .*f_max=2048.0\), yet front_end_problem says it can",
        ),
        (
            lambda m: (
                m.update(feature_config_sha256=feature_config_sha256(m["feature_config"]))
                or m["feature_config"].update(sample_rate=8000)
            ),
            "feature_config was changed after training",
        ),
        (lambda m: m["feature_config"].update(n_mels=64), "feature_config.n_mels = 64: the weights take 32"),
        (lambda m: m.update(num_classes=5), "num_classes = 5: the weights have 2 outputs"),
        (lambda m: m.update(class_names=["LEAK", "NOLEAK"]), r"class_names = \['LEAK', 'NOLEAK'\]"),
        (lambda m: m.update(mode="ternary"), "mode = 'ternary'"),
        (lambda m: m.update(binary_mode=False), "binary_mode = False contradicts mode = 'binary'"),
        (lambda m: m.update(decision_score="loudness"), "decision_score = 'loudness'"),
        (lambda m: m.update(model_type="ResNet"), "model_type = 'ResNet'"),
        (lambda m: m["familiarity"].update(std=[0.0] * 32), "familiarity"),
    ],
)
def test_a_hand_edited_meta_is_refused_naming_the_field(binary_model, change, field):
    state, meta = binary_model
    with pytest.raises(ValueError, match=field):
        model_from_state(state, edited(meta, change))


@pytest.mark.parametrize(
    "consumer",
    [
        lambda state, meta: score_segments(state, meta, None, None, {}),
        lambda state, meta: export_onnx_model(state, meta, None, None, {}),
        lambda state, meta: predict_recordings(None, state, meta, {}),
    ],
    ids=["evaluation", "deployment", "predict"],
)
def test_evaluation_deployment_and_predict_all_refuse_a_bad_meta(binary_model, consumer):
    state, meta = binary_model
    with pytest.raises(ValueError, match="threshold = 5"):
        consumer(state, edited(meta, lambda m: m.update(threshold=5)))


def test_metas_written_by_training_load_in_both_modes(binary_model, tmp_path):
    state, meta = binary_model
    assert model_from_state(state, meta).n_classes == 2
    multi_state, multi_meta, _ = train(tmp_path, "multiclass")
    assert model_from_state(multi_state, multi_meta).n_classes == 5


def test_a_meta_from_before_the_optional_keys_existed_still_loads(binary_model):
    state, meta = binary_model
    optional = ("decision_score", "split_file_ids", "familiarity", "front_end_problem")
    old = {k: v for k, v in meta.items() if k not in optional}
    assert model_from_state(state, old).n_classes == 2


def test_a_meta_of_a_front_end_this_project_cannot_reproduce_loads_for_evaluation(binary_model):
    state, meta = binary_model
    meta = {k: v for k, v in meta.items() if k != "feature_config_sha256"}  # configs are swapped on purpose
    foreign = {"n_mels": 32, "sr": 16000, "hop_length": 160}
    problem = "its front end is not this project's (unknown front_end parameters ['hop_length', 'sr'])"
    assert model_from_state(state, {**meta, "feature_config": foreign, "front_end_problem": problem})
    assert model_from_state(state, {**meta, "feature_config": THIS_FRONT_END, "front_end_problem": None})
    with pytest.raises(ValueError, match="yet front_end_problem says it can"):
        model_from_state(state, {**meta, "feature_config": foreign, "front_end_problem": None})


# 3. Smaller defects


def test_a_last_checkpoint_with_an_extra_weight_falls_back_to_the_newest_epoch_file(tmp_path, caplog):
    train(tmp_path, "binary", epochs=2)
    last = torch.load(tmp_path / "last.pth", weights_only=True)
    last["model"]["extra.weight"] = torch.zeros(3)
    torch.save(last, tmp_path / "last.pth")
    with caplog.at_level(logging.INFO):
        _, meta, _ = train(tmp_path, "binary", epochs=3)
    assert "last.pth does not fit this model (extra weights ['extra.weight'])" in caplog.text
    assert meta["resumed_from_epoch"] == 2


@pytest.mark.parametrize(
    "key, value, allowed",
    [
        ("learning_rate", math.inf, r"training.learning_rate = inf: must be a finite number in \(0, 1\]"),
        ("learning_rate", 2.0, r"training.learning_rate = 2.0: must be a finite number in \(0, 1\]"),
        ("weight_decay", 1e308, r"training.weight_decay = 1e\+308: must be a finite number in \[0, 1\]"),
        ("weight_decay", math.nan, "training.weight_decay = nan"),
        ("grad_clip", math.inf, "training.grad_clip = inf"),
        ("augment_gain_db", math.inf, "training.augment_gain_db = inf"),
        ("memory_budget_mb", math.inf, r"training.memory_budget_mb = inf: must be a finite number in \(0, 1e\+09\]"),
        ("learning_rate", "1e-3", "training.learning_rate = '1e-3'"),
    ],
)
def test_absurd_training_numbers_get_a_range_message(key, value, allowed):
    with pytest.raises(ValueError, match=allowed):
        TrainerConfig.from_params({key: value})
