import numpy as np
import pytest

from leak_detection.labels import LabelError, check_mode_classes, leak_output_idx, mode_targets, resolve_label_mapping


def test_class_names_map_to_themselves_and_others_through_the_mapping():
    mapping = resolve_label_mapping(["LEAK", "crack", "BACKGROUND", "Normal"], {"CRACK": "LEAK", "background": "quiet"})
    assert mapping == {"LEAK": "LEAK", "crack": "LEAK", "BACKGROUND": "QUIET", "Normal": "NORMAL"}


def test_an_unmapped_label_lists_the_labels_found_and_the_mapping():
    with pytest.raises(LabelError) as err:
        resolve_label_mapping(["LEAK", "HISS", "NORMAL"], {"CRACK": "LEAK"})
    message = str(err.value)
    assert "['HISS']" in message
    assert "Labels found: ['HISS', 'LEAK', 'NORMAL']" in message
    assert "'CRACK': 'LEAK'" in message


def test_a_mapping_onto_a_non_class_is_refused():
    with pytest.raises(LabelError, match="BANG"):
        resolve_label_mapping(["X"], {"X": "BANG"})


def test_binary_targets_make_leak_one_whatever_its_five_class_index():
    labels = ["LEAK", "NORMAL", "QUIET", "RANDOM", "MECHANICAL", "LEAK"]
    np.testing.assert_array_equal(mode_targets(labels, "binary"), [1, 0, 0, 0, 0, 1])
    np.testing.assert_array_equal(mode_targets(labels, "multiclass"), [0, 1, 2, 3, 4, 0])
    assert leak_output_idx("binary") == 1
    assert leak_output_idx("multiclass") == 0


def test_unknown_mode_names_the_allowed_values():
    with pytest.raises(ValueError, match=r"\['binary', 'multiclass'\]"):
        mode_targets(["LEAK"], "ternary")


@pytest.mark.parametrize(
    "classes, problem",
    [
        (["NORMAL", "QUIET"], "must hold LEAK"),
        (["LEAK"], "must hold LEAK and at least one other"),
        (["LEAK", "CRACK"], "distinct names"),
        (["LEAK", "LEAK"], "distinct names"),
        ("LEAK,NORMAL", "must be a list"),
    ],
)
def test_a_mode_class_list_needs_leak_and_another_known_class(classes, problem):
    with pytest.raises(ValueError, match=problem):
        check_mode_classes(classes)
