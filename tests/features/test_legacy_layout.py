"""The replaced system's fixed-shape layout, read as a ragged store without Kedro's dataset."""

from __future__ import annotations

import json
import logging

import h5py
import numpy as np
import pytest
from kedro.io.core import DatasetError

from leak_detection.features.hdf5_layout import LoadOptions
from leak_detection.features.legacy_layout import is_legacy_layout, read_legacy
from leak_detection.features.store_file import load_store_file

N_FILES, PER_FILE, ROW = 3, 2, (3, 8, 1)


def write_legacy(path, names_attr="labels_json", **datasets) -> np.ndarray:
    segments = np.random.default_rng(1).normal(size=(N_FILES, PER_FILE, *ROW)).astype(np.float16)
    with h5py.File(path, "w") as h5:
        h5.create_dataset("segments_mel", data=segments)
        h5.create_dataset("labels", data=np.array([1, 0, 1], dtype=np.int32))
        h5.attrs[names_attr] = json.dumps(["normal", "leak"])
        for name, values in datasets.items():
            h5.create_dataset(name, data=values)
    return segments


def test_a_fixed_shape_store_becomes_ragged_with_equal_offsets(tmp_path, caplog):
    path = tmp_path / "legacy.h5"
    segments = write_legacy(path)
    with h5py.File(path, "r") as h5, caplog.at_level(logging.INFO):
        assert is_legacy_layout(h5)
        parts = read_legacy(h5, path, LoadOptions(lazy=True))
    assert "lazy=True does not apply to the legacy layout" in caplog.text
    assert isinstance(parts["segments_mel"], np.ndarray) and parts["segments_mel"].dtype == np.float32
    np.testing.assert_array_equal(parts["segments_mel"], segments.reshape(N_FILES * PER_FILE, *ROW))
    np.testing.assert_array_equal(parts["file_offsets"], [0, 2, 4, 6])
    assert parts["file_ids"] == ["file_00000", "file_00001", "file_00002"] == parts["groups"]
    assert parts["label_names"] == ["normal", "leak"]
    assert parts["feature_config"] == {}


def test_the_store_file_reads_a_legacy_store_with_its_own_ids(tmp_path):
    path = tmp_path / "legacy.h5"
    segments = write_legacy(path, names_attr="label_names", file_ids=np.array([b"a.wav", b"b.wav", b"c.wav"]))
    store = load_store_file(path, LoadOptions(dtype="float16"))
    assert store.file_ids == ["a.wav", "b.wav", "c.wav"]
    assert store.groups == store.file_ids
    np.testing.assert_array_equal(store.file_segments(2), segments[2])


def test_a_legacy_store_without_class_names_is_refused(tmp_path):
    path = tmp_path / "legacy.h5"
    write_legacy(path, names_attr="something_else")
    with h5py.File(path, "r") as h5, pytest.raises(DatasetError, match="missing attribute 'labels_json'"):
        read_legacy(h5, path, LoadOptions())


def test_a_ragged_store_is_not_mistaken_for_a_legacy_one(tmp_path):
    path = tmp_path / "ragged.h5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset("segments_mel", data=np.zeros((4, *ROW)))
        assert not is_legacy_layout(h5)
