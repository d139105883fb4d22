"""The ragged HDF5 layout and the store file, without Kedro's dataset: round trips, options, failures."""

from __future__ import annotations

import errno
import os

import h5py
import numpy as np
import pytest
from kedro.io.core import DatasetError

from leak_detection.features import store_file
from leak_detection.features.hdf5_layout import (
    FORMAT_VERSION,
    LoadOptions,
    SaveOptions,
    read_ragged,
    write_ragged,
)
from leak_detection.features.store import MelFeatureStore
from leak_detection.features.store_file import load_store_file, save_store_file
from tests.conftest import synthetic_store


@pytest.fixture
def store() -> MelFeatureStore:
    store, _ = synthetic_store(files_per_class=3, n_long=4)
    store.durations_s = np.arange(store.n_files, dtype=np.float64) + 0.5
    store.sample_rates = np.full(store.n_files, 8000, dtype=np.int64)
    store.feature_config = {"n_mels": 32, "fmax": np.float64(4000.0)}
    store.source_fingerprint = "sha256:feed"
    store.created_at_utc = "2024-05-01T12:34:56+00:00"
    return store


def assert_same_store(got: MelFeatureStore, expected: MelFeatureStore, segments: np.ndarray) -> None:
    """``got`` holds ``expected``'s files and metadata, and ``segments`` (values and dtype)."""
    assert got.segments_mel.dtype == segments.dtype
    np.testing.assert_array_equal(np.asarray(got.segments_mel), segments)
    for name in ("file_offsets", "labels", "durations_s", "sample_rates"):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name))
    assert got.file_ids == expected.file_ids
    assert got.groups == expected.groups
    assert got.label_names == expected.label_names
    assert got.feature_config == expected.feature_config
    assert (got.source_fingerprint, got.created_at_utc) == (expected.source_fingerprint, expected.created_at_utc)


@pytest.mark.parametrize("save_dtype", ["float32", "float16"])
@pytest.mark.parametrize("lazy", [False, True])
def test_a_ragged_store_round_trips_through_an_open_hdf5_file(tmp_path, store, save_dtype, lazy):
    path = tmp_path / "features.h5"
    with h5py.File(path, "w") as h5:
        write_ragged(h5, store, SaveOptions(dtype=save_dtype, chunk_long_segments=5))
    with h5py.File(path, "r") as h5:
        assert h5.attrs["format_version"] == FORMAT_VERSION
        assert h5["segments_mel"].chunks[0] == 5
        parts = read_ragged(h5, path, LoadOptions(lazy=lazy))
    assert_same_store(MelFeatureStore(**parts), store, store.segments_mel.astype(save_dtype).astype(np.float32))


@pytest.mark.parametrize(
    "options", [SaveOptions(), SaveOptions(dtype="float32", compression="gzip", compression_opts=4)]
)
def test_the_store_file_round_trips_and_leaves_no_temporary_file(tmp_path, store, options):
    path = tmp_path / "sub" / "features.h5"
    save_store_file(path, store, options)
    loaded = load_store_file(path, LoadOptions(dtype="float16"))
    assert_same_store(loaded, store, store.segments_mel.astype(options.dtype).astype(np.float16))
    assert sorted(p.name for p in path.parent.iterdir()) == ["features.h5"]


def test_a_store_the_file_layout_cannot_hold_is_refused_before_anything_is_written(tmp_path, store):
    store.labels = store.labels[:-1]
    with pytest.raises(DatasetError, match="Refusing to save"):
        save_store_file(tmp_path / "f.h5", store, SaveOptions())
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_is_named_and_leaves_no_file(tmp_path, store, monkeypatch):
    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", full)
    with pytest.raises(DatasetError, match="no space left on device"):
        save_store_file(tmp_path / "f.h5", store, SaveOptions())
    assert list(tmp_path.iterdir()) == []


def test_a_newer_format_version_is_refused(tmp_path, store):
    path = tmp_path / "f.h5"
    save_store_file(path, store, SaveOptions())
    with h5py.File(path, "a") as h5:
        h5.attrs["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(DatasetError, match=f"format_version {FORMAT_VERSION + 1}"):
        load_store_file(path, LoadOptions())


def test_a_file_in_neither_layout_is_refused_naming_what_it_holds(tmp_path):
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset("spectra", data=np.zeros(3))
    with pytest.raises(DatasetError, match=r"neither the ragged layout .* \['spectra'\]"):
        load_store_file(path, LoadOptions())


@pytest.mark.parametrize(
    "options, match",
    [
        (dict(dtype="float64"), "'dtype' must be one of"),
        (dict(chunk_long_segments=0), "'chunk_long_segments'"),
        (dict(chunk_long_segments=True), "'chunk_long_segments'"),
        (dict(compression="zstd"), "'compression'"),
    ],
)
def test_save_options_refuse_what_the_layout_cannot_write(options, match):
    with pytest.raises(ValueError, match=match):
        SaveOptions(**options)


def test_options_name_their_dtype_and_load_options_want_a_boolean():
    assert SaveOptions(dtype=np.float32).dtype == "float32"
    assert LoadOptions(dtype=np.dtype("float16")).dtype == "float16"
    with pytest.raises(ValueError, match="'lazy' must be true or false"):
        LoadOptions(lazy=1)


def test_the_failure_message_finds_a_full_disk_behind_other_errors():
    try:
        try:
            raise OSError(errno.ENOSPC, "full")
        except OSError as exc:
            raise RuntimeError("HDF5 gave up") from exc
    except RuntimeError as wrapped:
        assert "no space left on device" in store_file._save_failure("x.h5", wrapped)
