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


def test_a_class_missing_from_training_is_a_clear_error(recordings_index):
    index = recordings_index[~((recordings_index["label"] == "QUIET") & (recordings_index["split"] == "train"))]
    with pytest.raises(ValueError, match=r"\['QUIET'\] have no recordings in the training split"):
        summarise_classes(file_targets(index, "multiclass"), "multiclass")
