"""A model is scored only on its own validation and test files, whatever the current index says."""

import logging

import pandas as pd
import pytest

from leak_detection.features.splits import assign_splits
from leak_detection.metrics.model_split import (
    SplitMismatchError,
    dataset_fingerprint,
    split_file_ids,
)
from leak_detection.metrics.model_split import model_split_targets as model_split_of_meta
from leak_detection.model.meta import ModelMeta
from leak_detection.pipelines.data_indexing.nodes import file_targets
from tests.conftest import synthetic_store


@pytest.fixture
def store_and_targets():
    store, index = synthetic_store()
    targets = file_targets(index, "binary")
    meta = {
        "model_type": "LeakCNNMulti",
        "state_dict_sha256": "0" * 64,
        "num_classes": 2,
        "class_names": ["NOLEAK", "LEAK"],
        "leak_output_idx": 1,
        "threshold": 0.5,
        "feature_config": store.feature_config,
        "mode": "binary",
        "model_version": "V1",
        "split_file_ids": split_file_ids(targets),
        "dataset_fingerprint": dataset_fingerprint(store, targets),
    }
    return store, targets, meta


def model_split_targets(meta, *args):
    """The model's own files, its meta given as the JSON object the catalog loads."""
    return model_split_of_meta(ModelMeta.from_dict(meta), *args)


def resplit(targets, seed):
    return targets.assign(split=assign_splits(targets["label"], targets["group"], _RATIOS, seed))


_RATIOS = {"train": 0.6, "validation": 0.2, "test": 0.2}


def test_an_unchanged_index_scores_the_model_split_as_it_is(store_and_targets, caplog):
    store, targets, meta = store_and_targets
    with caplog.at_level(logging.INFO):
        own, check = model_split_targets(meta, store, targets, "use_model_split")
    assert check.agrees
    assert sorted(own.loc[own["split"] == "test", "file_id"]) == meta["split_file_ids"]["test"]
    assert "holds model V1's own split" in caplog.text


def test_a_re_split_index_never_puts_training_files_in_the_scored_test_set(store_and_targets, caplog):
    store, targets, meta = store_and_targets
    moved = resplit(targets, seed=7)
    trained_on = set(meta["split_file_ids"]["train"])
    assert trained_on & set(moved.loc[moved["split"] == "test", "file_id"])  # the trap is real
    with caplog.at_level(logging.WARNING):
        own, check = model_split_targets(meta, store, moved, "use_model_split")
    assert not check.agrees and check.trained_on_in_current_test > 0
    assert not trained_on & set(own["file_id"])
    assert sorted(own.loc[own["split"] == "test", "file_id"]) == meta["split_file_ids"]["test"]
    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"{check.trained_on_in_current_test} of the index's test files were in its training split" in line


def test_stop_refuses_a_re_split_index_and_names_both_fixes(store_and_targets):
    store, targets, meta = store_and_targets
    with pytest.raises(SplitMismatchError, match="on_split_mismatch=use_model_split.*--pipelines training"):
        model_split_targets(meta, store, resplit(targets, seed=7), "stop")


def test_removed_and_added_files_are_counted_and_only_remaining_own_files_scored(store_and_targets):
    store, targets, meta = store_and_targets
    gone = meta["split_file_ids"]["test"][0]
    changed = targets[targets["file_id"] != gone]
    new_row = changed.iloc[[0]].assign(file_id="LEAK/new.wav", split="test")
    changed = pd.concat([changed, new_row], ignore_index=True)
    own, check = model_split_targets(meta, store, changed, "use_model_split")
    assert check.gone["test"] == 1 and check.new_files == 1
    assert gone not in set(own["file_id"]) and "LEAK/new.wav" not in set(own["file_id"])
    assert check.files_scored["test"] == len(meta["split_file_ids"]["test"]) - 1


def test_a_model_whose_test_files_are_all_gone_cannot_be_scored(store_and_targets):
    store, targets, meta = store_and_targets
    remaining = targets[~targets["file_id"].isin(meta["split_file_ids"]["test"])]
    with pytest.raises(SplitMismatchError, match="none of model V1's own test files"):
        model_split_targets(meta, store, remaining, "use_model_split")


def test_an_older_model_without_a_split_record_is_checked_by_its_data_fingerprint(store_and_targets):
    store, targets, meta = store_and_targets
    older = {k: v for k, v in meta.items() if k != "split_file_ids"}
    own, check = model_split_targets(older, store, targets, "use_model_split")
    assert check.source == "dataset_fingerprint" and len(own) == sum(check.files_scored.values())
    with pytest.raises(SplitMismatchError, match="saved before models recorded their split"):
        model_split_targets(older, store, resplit(targets, seed=7), "use_model_split")
