import numpy as np
import pytest

from leak_detection.features.splits import assign_splits, check_holdout_sites, holdout_groups

RATIOS = {"train": 0.7, "validation": 0.2, "test": 0.1}


SPLIT_CODE = {"train": "r", "validation": "v", "test": "t"}


def make_files(n_groups=60, files_per_group=6, seed=0):
    rng = np.random.default_rng(seed)
    classes = np.array(["LEAK", "NORMAL", "QUIET", "RANDOM", "MECHANICAL"])
    labels = rng.choice(classes, size=n_groups * files_per_group, p=[0.3, 0.175, 0.175, 0.175, 0.175])
    groups = np.repeat([f"g{i:03d}" for i in range(n_groups)], files_per_group)
    return labels, groups


def make_site_files(n_sites=6, sensors_per_site=8, files_per_sensor=8, seed=0):
    """Files grouped by sensor, named like the demo's groups: ``site03-sensor5``."""
    rng = np.random.default_rng(seed)
    classes = np.array(["LEAK", "NORMAL", "QUIET", "RANDOM", "MECHANICAL"])
    n_files = n_sites * sensors_per_site * files_per_sensor
    labels = rng.choice(classes, size=n_files, p=[0.3, 0.175, 0.175, 0.175, 0.175])
    sensors = [f"site{s + 1:02d}-sensor{k + 1}" for s in range(n_sites) for k in range(sensors_per_site)]
    return labels, np.repeat(sensors, files_per_sensor)


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


def test_without_holdout_the_assignment_is_exactly_what_it_was_before_holdout_existed():
    # Recorded with the splitter as it was before holdout_sites: a default run must not re-split.
    before = {
        42: "rrrrrrrrrrrrttttrrrrrrrrvvvvvvvvttttvvvvrrrrvvvvrrrrrrrrrrrr"
        "rrrrrrrrvvvvrrrrttttrrrrrrrrrrrrvvvvvvvvrrrrrrrrttttrrrrrrrr",
        7: "rrrrvvvvrrrrrrrrttttrrrrrrrrrrrrvvvvrrrrrrrrvvvvvvvvrrrrrrrr"
        "vvvvvvvvrrrrrrrrttttrrrrrrrrrrrrvvvvvvvvttttrrrrttttrrrrrrrr",
    }
    labels, groups = make_files(n_groups=30, files_per_group=4, seed=3)
    for seed, expected in before.items():
        for splits in (
            assign_splits(labels, groups, RATIOS, seed=seed),
            assign_splits(labels, groups, RATIOS, seed=seed, holdout_sites=[]),
        ):
            assert "".join(SPLIT_CODE[s] for s in splits) == expected


def test_held_out_sites_are_the_whole_test_split_and_the_rest_is_train_and_validation():
    labels, groups = make_site_files()
    splits = assign_splits(labels, groups, RATIOS, seed=0, holdout_sites=["site02-*", "site05-*"])
    held = np.char.startswith(groups, "site02-") | np.char.startswith(groups, "site05-")
    assert (splits[held] == "test").all()
    assert set(splits[~held]) == {"train", "validation"}
    for group in np.unique(groups):
        assert len(set(splits[groups == group])) == 1
    # Train : validation keeps 0.7 : 0.2 among the files left.
    assert abs(np.mean(splits[~held] == "validation") - 0.2 / 0.9) < 0.06
    leak_share = np.mean(labels[~held] == "LEAK")
    for split in ("train", "validation"):
        assert abs(np.mean(labels[splits == split] == "LEAK") - leak_share) < 0.08


def test_holdout_patterns_are_case_sensitive_globs_on_the_group():
    groups = ["site01-sensor1", "site01-sensor2", "site10-sensor1", "Site01-sensor9", "site02-sensor1"]
    assert holdout_groups(groups, ["site01-*"]) == ["site01-sensor1", "site01-sensor2"]
    assert holdout_groups(groups, ["site?1-sensor1"]) == ["site01-sensor1"]
    assert holdout_groups(groups, ["*-sensor1", "site02-sensor1"]) == [
        "site01-sensor1",
        "site02-sensor1",
        "site10-sensor1",
    ]


def test_holdout_is_fixed_by_the_seed():
    labels, groups = make_site_files()
    first = assign_splits(labels, groups, RATIOS, seed=3, holdout_sites=["site01-*"])
    np.testing.assert_array_equal(first, assign_splits(labels, groups, RATIOS, seed=3, holdout_sites=["site01-*"]))
    assert not np.array_equal(first, assign_splits(labels, groups, RATIOS, seed=4, holdout_sites=["site01-*"]))


def test_a_holdout_pattern_that_matches_no_group_is_refused_naming_it_and_the_groups():
    labels, groups = make_site_files()
    with pytest.raises(ValueError, match=r"\['site9-\*', 'SITE01-\*'\] match no group") as caught:
        assign_splits(labels, groups, RATIOS, seed=0, holdout_sites=["site01-*", "site9-*", "SITE01-*"])
    message = str(caught.value)
    assert "site01-sensor1" in message and "(48 in all)" in message
    # Only the first few groups are named, so a big campaign gives a readable message.
    assert "site06-sensor8" not in message


@pytest.mark.parametrize("patterns", [["site*"], ["site0[1-5]-*", "site06-sensor[1-7]"]])
def test_a_holdout_that_leaves_too_few_groups_for_training_is_refused(patterns):
    labels, groups = make_site_files()
    with pytest.raises(ValueError, match="leave [01] group") as caught:
        assign_splits(labels, groups, RATIOS, seed=0, holdout_sites=patterns)
    assert str(patterns) in str(caught.value) and "groups available: site01-sensor1" in str(caught.value)


@pytest.mark.parametrize(
    "value, message",
    [
        ("site01-*", "must be a list"),
        (None, "must be a list"),
        ({"site01-*": 1}, "must be a list"),
        (["site01-*", 3], "non-empty strings"),
        (["site01-*", ""], "non-empty strings"),
        ([["site01-*"]], "non-empty strings"),
    ],
)
def test_holdout_sites_that_are_not_a_list_of_patterns_are_refused(value, message):
    with pytest.raises(ValueError, match=message):
        check_holdout_sites(value)


def test_holdout_sites_are_returned_as_a_list_without_repeats():
    assert check_holdout_sites([]) == []
    assert check_holdout_sites(("site02-*", "site01-*", "site02-*")) == ["site02-*", "site01-*"]
