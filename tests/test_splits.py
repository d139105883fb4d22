import numpy as np
import pytest

from leak_detection.splits import assign_splits

RATIOS = {"train": 0.7, "validation": 0.2, "test": 0.1}


def make_files(n_groups=60, files_per_group=6, seed=0):
    rng = np.random.default_rng(seed)
    classes = np.array(["LEAK", "NORMAL", "QUIET", "RANDOM", "MECHANICAL"])
    labels = rng.choice(classes, size=n_groups * files_per_group, p=[0.3, 0.175, 0.175, 0.175, 0.175])
    groups = np.repeat([f"g{i:03d}" for i in range(n_groups)], files_per_group)
    return labels, groups


def test_no_group_spans_two_splits():
    labels, groups = make_files()
    splits = assign_splits(labels, groups, RATIOS, seed=42)
    for group in np.unique(groups):
        assert len(set(splits[groups == group])) == 1


def test_split_sizes_and_class_proportions_hold():
    labels, groups = make_files()
    splits = assign_splits(labels, groups, RATIOS, seed=42)
    for split, ratio in RATIOS.items():
        assert abs(np.mean(splits == split) - ratio) < 0.05
        leak_share_overall = np.mean(labels == "LEAK")
        leak_share_split = np.mean(labels[splits == split] == "LEAK")
        assert abs(leak_share_split - leak_share_overall) < 0.08


def test_split_is_fixed_by_the_seed():
    labels, groups = make_files()
    np.testing.assert_array_equal(
        assign_splits(labels, groups, RATIOS, seed=1), assign_splits(labels, groups, RATIOS, seed=1)
    )
    assert not np.array_equal(
        assign_splits(labels, groups, RATIOS, seed=1), assign_splits(labels, groups, RATIOS, seed=2)
    )


@pytest.mark.parametrize(
    "ratios, message",
    [
        ({"train": 0.7, "validation": 0.2, "test": 0.2}, "sum to 1"),
        ({"train": 0.8, "validation": 0.2}, "keys"),
        ({"train": 1.0, "validation": 0.0, "test": 0.0}, "ratio 'train'"),
        ({"train": 0.7, "validation": "a", "test": 0.1}, "validation"),
    ],
)
def test_bad_ratios_are_refused(ratios, message):
    labels, groups = make_files()
    with pytest.raises(ValueError, match=message):
        assign_splits(labels, groups, ratios, seed=0)


def test_too_few_groups_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="group"):
        assign_splits(["LEAK", "NORMAL"], ["a", "a"], RATIOS, seed=0)
