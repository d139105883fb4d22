import logging

import pandas as pd
import pytest

from leak_detection.pipelines.data_indexing.nodes import file_targets, summarise_classes


@pytest.fixture
def recordings_index():
    rows = []
    for split, n in (("train", 4), ("validation", 2), ("test", 1)):
        for label in ("LEAK", "NORMAL", "QUIET", "RANDOM", "MECHANICAL"):
            for i in range(n):
                rows.append(
                    {
                        "file_id": f"{label}/{split}{i}.wav",
                        "label": label,
                        "group": f"{split}{i}",
                        "split": split,
                        "n_long_segments": 10 if label == "LEAK" else 30,
                    }
                )
    return pd.DataFrame(rows)


def test_binary_targets_and_counts(recordings_index):
    targets = file_targets(recordings_index, "binary")
    assert (targets.loc[targets["label"] == "LEAK", "target"] == 1).all()
    assert (targets.loc[targets["label"] != "LEAK", "target"] == 0).all()
    summary = summarise_classes(targets, "binary")
    assert summary["class_names"] == ["NOLEAK", "LEAK"]
    assert summary["leak_output_idx"] == 1
    assert summary["files_per_class"]["train"] == {"NOLEAK": 16, "LEAK": 4}
    assert summary["files_per_split"] == {"train": 20, "validation": 10, "test": 5}
    # Segments in train: LEAK 4*10 = 40, NOLEAK 16*30 = 480; weights n / (2 * n_class).
    assert summary["class_weights"] == pytest.approx([520 / 960, 520 / 80])
    assert summary["leak_pos_weight"] == pytest.approx(480 / 40)


def test_multiclass_targets_follow_the_five_class_order(recordings_index):
    targets = file_targets(recordings_index, "multiclass")
    order = {"LEAK": 0, "NORMAL": 1, "QUIET": 2, "RANDOM": 3, "MECHANICAL": 4}
    assert (targets["target"] == targets["label"].map(order)).all()
    summary = summarise_classes(targets, "multiclass")
    assert summary["leak_output_idx"] == 0
    assert summary["files_per_class"]["test"] == dict.fromkeys(order, 1)


def test_a_class_without_training_recordings_is_left_out_of_that_mode_only(recordings_index, caplog):
    index = recordings_index[recordings_index["label"] != "QUIET"]
    with caplog.at_level(logging.WARNING):
        multi = summarise_classes(file_targets(index, "multiclass"), "multiclass")
        binary = summarise_classes(file_targets(index, "binary"), "binary")
    assert multi["class_names"] == ["LEAK", "NORMAL", "RANDOM", "MECHANICAL"] and multi["leak_output_idx"] == 0
    assert binary["class_names"] == ["NOLEAK", "LEAK"] and binary["files_per_class"]["train"]["NOLEAK"] == 12
    assert "classes ['QUIET'] have no training recordings" in caplog.text
    assert "the model has no output for them" in caplog.text


def test_files_of_a_class_seen_only_outside_training_are_left_out_and_counted(recordings_index, caplog):
    index = recordings_index[~((recordings_index["label"] == "QUIET") & (recordings_index["split"] == "train"))]
    with caplog.at_level(logging.WARNING):
        targets = file_targets(index, "multiclass")
    assert "QUIET" not in set(targets["label"])
    assert "3 files of classes this mode does not use are left out: {'QUIET': 3}" in caplog.text
    assert sorted(set(targets["target"])) == [0, 1, 2, 3]


def test_the_classes_parameter_chooses_what_a_mode_trains_on(recordings_index):
    targets = file_targets(recordings_index, "multiclass", ["LEAK", "MECHANICAL"])
    assert set(targets["label"]) == {"LEAK", "MECHANICAL"}
    assert summarise_classes(targets, "multiclass")["class_names"] == ["LEAK", "MECHANICAL"]


def test_a_class_with_no_test_files_is_reported(recordings_index, caplog):
    index = recordings_index[~((recordings_index["label"] == "RANDOM") & (recordings_index["split"] == "test"))]
    with caplog.at_level(logging.WARNING):
        summary = summarise_classes(file_targets(index, "multiclass"), "multiclass")
    assert summary["classes_without_validation_or_test_files"] == {"RANDOM": ["test"]}
    assert "RANDOM" in caplog.text


@pytest.mark.parametrize(
    "data_source, advice",
    [
        ({"feature_store": "/data/field.h5", "recordings_dir": None}, "feature store /data/field.h5"),
        ({"feature_store": None, "recordings_dir": "/data/pipes"}, "add recordings of those classes"),
    ],
)
def test_no_leak_in_training_stops_with_advice_for_the_input_used(recordings_index, data_source, advice):
    index = recordings_index[recordings_index["label"] != "LEAK"]
    for mode in ("binary", "multiclass"):
        with pytest.raises(ValueError, match=f"{mode}: the training split must hold LEAK") as err:
            file_targets(index, mode, ["LEAK", "NORMAL", "QUIET", "RANDOM", "MECHANICAL"], data_source)
        assert advice in str(err.value)
