"""Tests for ``MelFeatureStoreDataset``: round trips, atomic saves, legacy stores,
consistency checks and the Kedro catalog entry."""

from __future__ import annotations

import copy
import json
import logging
import os
import pickle

import h5py
import numpy as np
import pytest
from kedro.io import DataCatalog
from kedro.io.core import DatasetError

from leak_detection.datasets import MelFeatureStoreDataset
from leak_detection.features.hdf5_layout import FORMAT_VERSION
from leak_detection.features.lazy_rows import H5Rows
from leak_detection.features.store import MelFeatureStore

N_SHORT, N_MELS, N_FRAMES = 3, 8, 5


def _leftovers(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".tmp-" in p.name)


@pytest.fixture
def store() -> MelFeatureStore:
    rng = np.random.default_rng(0)
    per_file = [4, 1, 7, 2]  # different lengths, one file with a single segment
    offsets = np.concatenate([[0], np.cumsum(per_file)])
    return MelFeatureStore(
        segments_mel=rng.normal(size=(offsets[-1], N_SHORT, N_MELS, N_FRAMES)).astype(np.float32),
        file_offsets=offsets,
        labels=[0, 2, 1, 2],
        file_ids=["site A/rec 1.wav", "ünïcödé/漏水.wav", "b.wav", "sub dir/c d.wav"],
        groups=["site A", "site Ü", "site B", "site A"],
        label_names=["no_leak", "leak small", "leak-große"],
        feature_config={"sample_rate": 8000, "n_mels": N_MELS, "fmax": 4000.0, "window": "hann"},
        source_fingerprint="sha256:0123abcd",
        created_at_utc="2024-05-01T12:34:56+00:00",
    )


def _assert_same_metadata(loaded: MelFeatureStore, original: MelFeatureStore) -> None:
    assert loaded.file_offsets.dtype == np.int64
    np.testing.assert_array_equal(loaded.file_offsets, original.file_offsets)
    np.testing.assert_array_equal(loaded.labels, original.labels)
    assert loaded.file_ids == original.file_ids
    assert loaded.groups == original.groups
    assert loaded.label_names == original.label_names
    assert loaded.feature_config == original.feature_config
    assert loaded.source_fingerprint == original.source_fingerprint
    assert loaded.created_at_utc == original.created_at_utc


def test_float32_round_trip_is_exact(tmp_path, store):
    dataset = MelFeatureStoreDataset(filepath=tmp_path / "features.h5", save_args={"dtype": "float32"})
    dataset.save(store)
    loaded = dataset.load()

    _assert_same_metadata(loaded, store)
    assert loaded.segments_mel.dtype == np.float32
    np.testing.assert_array_equal(loaded.segments_mel, store.segments_mel)
    np.testing.assert_array_equal(loaded.file_segments(1), store.file_segments(1))
    assert loaded.file_segments(1).shape == (1, N_SHORT, N_MELS, N_FRAMES)


def test_float16_default_round_trip_within_float16_tolerance(tmp_path, store):
    path = tmp_path / "features.h5"
    dataset = MelFeatureStoreDataset(filepath=path, save_args={"chunk_long_segments": 3})
    dataset.save(store)

    with h5py.File(path, "r") as h5:
        assert h5["segments_mel"].dtype == np.float16
        assert h5["segments_mel"].chunks[0] == 3
        assert h5.attrs["format_version"] == FORMAT_VERSION
        assert json.loads(h5.attrs["label_names"]) == store.label_names

    loaded = dataset.load()
    _assert_same_metadata(loaded, store)
    assert loaded.segments_mel.dtype == np.float32
    # Exactly what a float16 cast gives, and close to the original.
    np.testing.assert_array_equal(loaded.segments_mel, store.segments_mel.astype(np.float16).astype(np.float32))
    np.testing.assert_allclose(loaded.segments_mel, store.segments_mel, rtol=1e-3, atol=1e-4)


def test_chunk_rows_never_exceed_segments(tmp_path, store):
    path = tmp_path / "features.h5"
    MelFeatureStoreDataset(filepath=path).save(store)
    with h5py.File(path, "r") as h5:
        assert h5["segments_mel"].chunks[0] == store.n_long_segments


def test_save_creates_parent_dirs_and_exists(tmp_path, store):
    path = tmp_path / "04_feature" / "nested" / "mel_features.h5"
    dataset = MelFeatureStoreDataset(filepath=str(path))
    assert not dataset.exists()
    dataset.save(store)
    assert dataset.exists()
    assert path.is_file()
    assert _leftovers(path.parent) == []


def test_gzip_compression_round_trip(tmp_path, store):
    path = tmp_path / "features.h5"
    dataset = MelFeatureStoreDataset(filepath=path, save_args={"dtype": "float32", "compression": "gzip"})
    dataset.save(store)
    with h5py.File(path, "r") as h5:
        assert h5["segments_mel"].compression == "gzip"
    np.testing.assert_array_equal(dataset.load().segments_mel, store.segments_mel)


def test_empty_store_round_trip(tmp_path):
    empty = MelFeatureStore(
        segments_mel=np.zeros((0, N_SHORT, N_MELS, N_FRAMES), dtype=np.float32),
        file_offsets=[0],
        labels=[],
        file_ids=[],
        groups=[],
        label_names=["no_leak", "leak"],
    )
    dataset = MelFeatureStoreDataset(filepath=tmp_path / "empty.h5")
    dataset.save(empty)
    loaded = dataset.load()
    assert loaded.segments_mel.shape == (0, N_SHORT, N_MELS, N_FRAMES)
    assert loaded.n_files == 0
    assert loaded.label_names == ["no_leak", "leak"]


def test_failure_mid_write_leaves_no_file_and_no_temp(tmp_path, store, monkeypatch):
    path = tmp_path / "features.h5"
    dataset = MelFeatureStoreDataset(filepath=path, save_args={"chunk_long_segments": 2})
    real_setitem = h5py.Dataset.__setitem__
    calls = []

    def failing_setitem(self, key, value):
        calls.append(key)
        if len(calls) == 2:  # the second slab of segments
            raise RuntimeError("disk on fire")
        return real_setitem(self, key, value)

    monkeypatch.setattr(h5py.Dataset, "__setitem__", failing_setitem)
    with pytest.raises(DatasetError, match="disk on fire") as excinfo:
        dataset.save(store)

    assert str(path) in str(excinfo.value)
    assert len(calls) == 2
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_failed_save_keeps_previous_store_intact(tmp_path, store, monkeypatch):
    path = tmp_path / "features.h5"
    dataset = MelFeatureStoreDataset(filepath=path, save_args={"dtype": "float32", "chunk_long_segments": 2})
    dataset.save(store)
    before = path.read_bytes()

    changed = MelFeatureStore(
        segments_mel=store.segments_mel[:5] + 1.0,
        file_offsets=[0, 4, 5],
        labels=[1, 1],
        file_ids=["x.wav", "y.wav"],
        groups=["x", "y"],
        label_names=store.label_names,
    )
    real_setitem = h5py.Dataset.__setitem__
    calls = []

    def failing_setitem(self, key, value):
        calls.append(key)
        if len(calls) == 2:
            raise OSError("no space left on device")
        return real_setitem(self, key, value)

    monkeypatch.setattr(h5py.Dataset, "__setitem__", failing_setitem)
    with pytest.raises(DatasetError, match="no space left"):
        dataset.save(changed)
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []
    loaded = dataset.load()
    _assert_same_metadata(loaded, store)
    np.testing.assert_array_equal(loaded.segments_mel, store.segments_mel)


def test_failure_at_rename_removes_temp_and_keeps_previous(tmp_path, store, monkeypatch):
    path = tmp_path / "features.h5"
    dataset = MelFeatureStoreDataset(filepath=path)
    dataset.save(store)
    before = path.read_bytes()

    def failing_replace(src, dst):
        raise PermissionError("read-only target")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(DatasetError, match="read-only target"):
        dataset.save(store)
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []


def test_interrupt_during_save_cleans_up_and_propagates(tmp_path, store, monkeypatch):
    path = tmp_path / "features.h5"
    dataset = MelFeatureStoreDataset(filepath=path)

    def interrupted_replace(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted_replace)
    with pytest.raises(KeyboardInterrupt):
        dataset.save(store)
    assert list(tmp_path.iterdir()) == []


def _write_legacy(path, n_files=3, per_file=2, **extra_attrs) -> np.ndarray:
    rng = np.random.default_rng(1)
    segments = rng.normal(size=(n_files, per_file, N_SHORT, N_MELS, N_FRAMES)).astype(np.float16)
    with h5py.File(path, "w") as h5:
        h5.create_dataset("segments_mel", data=segments)
        h5.create_dataset("labels", data=np.array([1, 0, 1][:n_files], dtype=np.int32))
        h5.attrs["labels_json"] = json.dumps(["normal", "leak"])
        for key, value in extra_attrs.items():
            h5.attrs[key] = value
    return segments


def test_legacy_fixed_shape_store_is_read_as_ragged(tmp_path, caplog):
    path = tmp_path / "legacy.h5"
    segments = _write_legacy(path)

    with caplog.at_level(logging.INFO):
        loaded = MelFeatureStoreDataset(filepath=path).load()

    assert "legacy" in caplog.text
    np.testing.assert_array_equal(loaded.file_offsets, [0, 2, 4, 6])
    np.testing.assert_array_equal(loaded.labels, [1, 0, 1])
    assert loaded.label_names == ["normal", "leak"]
    assert loaded.file_ids == ["file_00000", "file_00001", "file_00002"]
    assert loaded.groups == loaded.file_ids
    assert loaded.feature_config == {}
    assert loaded.segments_mel.dtype == np.float32
    assert loaded.segments_mel.shape == (6, N_SHORT, N_MELS, N_FRAMES)
    np.testing.assert_array_equal(loaded.file_segments(1), segments[1].astype(np.float32))


def test_legacy_store_uses_ids_groups_and_config_when_present(tmp_path):
    path = tmp_path / "legacy.h5"
    _write_legacy(path, feature_config=json.dumps({"n_mels": N_MELS}))
    with h5py.File(path, "a") as h5:
        h5.create_dataset("file_ids", data=np.array([b"a.wav", b"b.wav", b"c.wav"]))
        h5.create_dataset(
            "groups",
            data=np.array(["s1", "s1", "s2"], dtype=object),
            dtype=h5py.string_dtype("utf-8"),
        )

    loaded = MelFeatureStoreDataset(filepath=path).load()
    assert loaded.file_ids == ["a.wav", "b.wav", "c.wav"]
    assert loaded.groups == ["s1", "s1", "s2"]
    assert loaded.feature_config == {"n_mels": N_MELS}


def test_legacy_store_with_wrong_label_count_is_refused(tmp_path):
    path = tmp_path / "legacy.h5"
    _write_legacy(path)
    with h5py.File(path, "a") as h5:
        del h5["labels"]
        h5.create_dataset("labels", data=np.array([0, 1]))
    with pytest.raises(DatasetError, match="labels has 2 entries for 3 files") as excinfo:
        MelFeatureStoreDataset(filepath=path).load()
    assert str(path) in str(excinfo.value)


def _save_then_edit(tmp_path, store, edit):
    path = tmp_path / "features.h5"
    MelFeatureStoreDataset(filepath=path).save(store)
    with h5py.File(path, "a") as h5:
        edit(h5)
    return path


def test_offsets_not_matching_segments_are_refused(tmp_path, store):
    def edit(h5):
        offsets = h5["file_offsets"][...]
        offsets[-1] -= 1
        h5["file_offsets"][...] = offsets

    path = _save_then_edit(tmp_path, store, edit)
    with pytest.raises(DatasetError, match="file_offsets") as excinfo:
        MelFeatureStoreDataset(filepath=path).load()
    assert str(path) in str(excinfo.value)
    assert "13" in str(excinfo.value) and "14" in str(excinfo.value)


def test_label_out_of_range_is_refused(tmp_path, store):
    def edit(h5):
        h5["labels"][0] = 7

    path = _save_then_edit(tmp_path, store, edit)
    with pytest.raises(DatasetError, match="labels hold values outside"):
        MelFeatureStoreDataset(filepath=path).load()


def test_duplicate_file_ids_are_refused(tmp_path, store):
    def edit(h5):
        h5["file_ids"][1] = store.file_ids[0]

    path = _save_then_edit(tmp_path, store, edit)
    with pytest.raises(DatasetError, match="file_ids are not unique"):
        MelFeatureStoreDataset(filepath=path).load()


@pytest.mark.parametrize("missing", ["groups", "file_ids", "labels"])
def test_missing_dataset_is_refused(tmp_path, store, missing):
    def edit(h5):
        del h5[missing]

    path = _save_then_edit(tmp_path, store, edit)
    with pytest.raises(DatasetError, match=f"missing /{missing}") as excinfo:
        MelFeatureStoreDataset(filepath=path).load()
    assert str(path) in str(excinfo.value)


def test_missing_attribute_is_refused(tmp_path, store):
    def edit(h5):
        del h5.attrs["label_names"]

    path = _save_then_edit(tmp_path, store, edit)
    with pytest.raises(DatasetError, match="attribute 'label_names'"):
        MelFeatureStoreDataset(filepath=path).load()


def test_newer_format_version_is_refused(tmp_path, store):
    def edit(h5):
        h5.attrs["format_version"] = FORMAT_VERSION + 1

    path = _save_then_edit(tmp_path, store, edit)
    with pytest.raises(DatasetError, match="format_version"):
        MelFeatureStoreDataset(filepath=path).load()


def test_missing_file_says_how_to_build_it(tmp_path):
    path = tmp_path / "04_feature" / "mel_features.h5"
    dataset = MelFeatureStoreDataset(filepath=path)
    assert not dataset.exists()
    with pytest.raises(DatasetError, match="does not exist") as excinfo:
        dataset.load()
    assert str(path) in str(excinfo.value)
    assert "kedro run --pipelines data_indexing" in str(excinfo.value)


def test_not_an_hdf5_file_is_refused(tmp_path):
    path = tmp_path / "features.h5"
    path.write_text("not hdf5")
    with pytest.raises(DatasetError, match="as HDF5") as excinfo:
        MelFeatureStoreDataset(filepath=path).load()
    assert str(path) in str(excinfo.value)


@pytest.mark.parametrize("dtype", ["float64", "int8", "bfloat16"])
def test_bad_dtype_save_arg(tmp_path, dtype):
    with pytest.raises(DatasetError, match=r"'dtype'.*float16.*float32"):
        MelFeatureStoreDataset(filepath=tmp_path / "f.h5", save_args={"dtype": dtype})


@pytest.mark.parametrize(
    "save_args, match",
    [
        ({"chunk_long_segments": 0}, "chunk_long_segments"),
        ({"chunk_long_segments": 2.5}, "chunk_long_segments"),
        ({"compression": "zstd-please"}, "compression"),
        ({"dtpye": "float16"}, "dtpye"),
    ],
)
def test_other_bad_save_args(tmp_path, save_args, match):
    with pytest.raises(DatasetError, match=match):
        MelFeatureStoreDataset(filepath=tmp_path / "f.h5", save_args=save_args)


def test_a_protocol_whose_package_is_missing_names_the_url_and_the_package(monkeypatch):
    import fsspec

    def missing(protocol, **kwargs):
        raise ImportError("Install s3fs to access S3")

    monkeypatch.setattr(fsspec, "filesystem", missing)
    with pytest.raises(DatasetError, match=r"s3://bucket/mel_features\.h5: Install s3fs"):
        MelFeatureStoreDataset(filepath="s3://bucket/mel_features.h5")


def test_saving_something_else_is_refused(tmp_path):
    path = tmp_path / "f.h5"
    with pytest.raises(DatasetError, match="MelFeatureStore"):
        MelFeatureStoreDataset(filepath=path).save({"segments_mel": np.zeros(3)})
    assert not path.exists()


def test_saving_a_store_modified_into_inconsistency_is_refused(tmp_path, store):
    path = tmp_path / "f.h5"
    store.labels = store.labels[:-1]
    with pytest.raises(DatasetError, match="labels has 3 entries for 4 files"):
        MelFeatureStoreDataset(filepath=path).save(store)
    assert list(tmp_path.iterdir()) == []


def test_load_as_float16(tmp_path, store):
    dataset = MelFeatureStoreDataset(filepath=tmp_path / "f.h5", load_args={"dtype": "float16"})
    dataset.save(store)
    loaded = dataset.load()
    assert loaded.segments_mel.dtype == np.float16
    np.testing.assert_array_equal(loaded.segments_mel, store.segments_mel.astype(np.float16))


def test_describe_names_the_file(tmp_path):
    dataset = MelFeatureStoreDataset(filepath=tmp_path / "f.h5")
    assert "f.h5" in repr(dataset)
    assert dataset._describe()["save_args"]["dtype"] == "float16"


def test_catalog_entry_round_trip(tmp_path, store):
    path = tmp_path / "data" / "04_feature" / "mel_features.h5"
    catalog = DataCatalog.from_config(
        {
            "mel_features": {
                "type": "leak_detection.datasets.MelFeatureStoreDataset",
                "filepath": str(path),
                "save_args": {"dtype": "float32", "compression": None},
                "metadata": {"owner": "feature team"},
            }
        }
    )
    assert isinstance(catalog["mel_features"], MelFeatureStoreDataset)
    assert catalog["mel_features"].metadata == {"owner": "feature team"}
    catalog.save("mel_features", store)
    assert path.is_file()

    loaded = catalog.load("mel_features")
    _assert_same_metadata(loaded, store)
    np.testing.assert_array_equal(loaded.segments_mel, store.segments_mel)


def test_catalog_entry_with_bad_dtype_fails_at_construction(tmp_path):
    with pytest.raises(DatasetError, match="dtype"):
        catalog = DataCatalog.from_config(
            {
                "mel_features": {
                    "type": "leak_detection.datasets.MelFeatureStoreDataset",
                    "filepath": str(tmp_path / "f.h5"),
                    "save_args": {"dtype": "int16"},
                }
            }
        )
        catalog["mel_features"]  # datasets may be built lazily


# Lazy loading: segments_mel read from the file on demand.


def _lazy_and_eager(tmp_path, store, dtype="float32"):
    path = tmp_path / "features.h5"
    MelFeatureStoreDataset(filepath=path, save_args={"chunk_long_segments": 3}).save(store)
    eager = MelFeatureStoreDataset(filepath=path, load_args={"dtype": dtype}).load()
    lazy = MelFeatureStoreDataset(filepath=path, load_args={"dtype": dtype, "lazy": True}).load()
    return path, lazy, eager


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_lazy_load_reads_the_same_values_as_eager(tmp_path, store, dtype):
    path, lazy, eager = _lazy_and_eager(tmp_path, store, dtype)
    rows = lazy.segments_mel

    assert isinstance(rows, H5Rows)
    assert isinstance(eager.segments_mel, np.ndarray)
    assert rows.shape == eager.segments_mel.shape == (14, N_SHORT, N_MELS, N_FRAMES)
    assert rows.ndim == 4
    assert len(rows) == 14
    assert rows.size == eager.segments_mel.size
    assert rows.dtype == eager.segments_mel.dtype == np.dtype(dtype)
    assert lazy.n_long_segments == 14
    _assert_same_metadata(lazy, store)

    for key in [slice(0, 5), slice(3, 10), slice(-3, None), slice(None), slice(5, 5), slice(9, 2), slice(12, 100)]:
        got = rows[key]
        assert isinstance(got, np.ndarray) and got.dtype == np.dtype(dtype), key
        np.testing.assert_array_equal(got, eager.segments_mel[key])
    for index in [0, 7, 13, -1, np.int64(4)]:
        np.testing.assert_array_equal(rows[index], eager.segments_mel[index])
    for i in range(lazy.n_files):
        np.testing.assert_array_equal(lazy.file_segments(i), eager.file_segments(i))
    np.testing.assert_array_equal(np.asarray(rows), eager.segments_mel)


def test_lazy_read_rows_concatenates_ranges_one_read_each(tmp_path, store, monkeypatch):
    _, lazy, eager = _lazy_and_eager(tmp_path, store)
    starts, stops = np.array([0, 6, 9, 1, 12]), np.array([4, 9, 9, 2, 14])
    expected = np.concatenate([eager.segments_mel[a:b] for a, b in zip(starts, stops, strict=False)])

    reads = []
    real_read_direct = h5py.Dataset.read_direct

    def counting_read_direct(self, *args, **kwargs):
        reads.append(kwargs.get("source_sel", args[1] if len(args) > 1 else None))
        return real_read_direct(self, *args, **kwargs)

    monkeypatch.setattr(h5py.Dataset, "read_direct", counting_read_direct)
    got = lazy.segments_mel.read_rows(starts, stops)

    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)
    assert len(reads) == 4  # the empty range 9:9 needs no read
    empty = lazy.segments_mel.read_rows(np.array([], dtype=np.int64), np.array([], dtype=np.int64))
    assert empty.shape == (0, N_SHORT, N_MELS, N_FRAMES)


def test_lazy_rows_refuse_what_they_cannot_read(tmp_path, store):
    _, lazy, _ = _lazy_and_eager(tmp_path, store)
    rows = lazy.segments_mel
    with pytest.raises(IndexError, match="step 1"):
        rows[::2]
    with pytest.raises(IndexError, match="out of range"):
        rows[14]
    with pytest.raises(IndexError, match="out of range"):
        rows[-15]
    with pytest.raises(TypeError):
        rows[1.5]
    with pytest.raises(IndexError, match="3:15"):
        rows.read_rows([0, 3], [2, 15])
    with pytest.raises(IndexError, match="5:4"):
        rows.read_rows([5], [4])
    with pytest.raises(ValueError, match="equal length"):
        rows.read_rows([0, 1], [2])


def _open_paths() -> set[str]:
    fd_dir = "/proc/self/fd"
    paths = set()
    for fd in os.listdir(fd_dir):
        try:
            paths.add(os.readlink(os.path.join(fd_dir, fd)))
        except OSError:
            pass
    return paths


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs Linux /proc")
def test_lazy_store_keeps_no_file_open(tmp_path, store):
    path, lazy, eager = _lazy_and_eager(tmp_path, store)
    assert str(path) not in _open_paths()
    np.testing.assert_array_equal(lazy.segments_mel[2:6], eager.segments_mel[2:6])
    lazy.segments_mel.read_rows([0], [3])
    assert str(path) not in _open_paths()

    path.unlink()
    with pytest.raises(DatasetError, match="lazy") as excinfo:
        lazy.segments_mel[0:2]
    assert str(path) in str(excinfo.value)


def test_lazy_store_refuses_a_replaced_file(tmp_path, store):
    path, lazy, _ = _lazy_and_eager(tmp_path, store)
    # Same shape and metadata, other values: only the file identity tells them apart.
    other = copy.deepcopy(store)
    other.segments_mel = store.segments_mel + 1.0
    MelFeatureStoreDataset(filepath=path, save_args={"chunk_long_segments": 3}).save(other)

    with pytest.raises(DatasetError, match="replaced or modified") as excinfo:
        lazy.segments_mel[0:2]
    assert str(path) in str(excinfo.value)
    with pytest.raises(DatasetError, match="replaced or modified"):
        lazy.segments_mel.read_rows([0], [1])


def test_lazy_store_refuses_a_file_modified_in_place(tmp_path, store):
    path, lazy, _ = _lazy_and_eager(tmp_path, store)
    with h5py.File(path, "a") as h5:
        h5["segments_mel"][0] = 0.0
    with pytest.raises(DatasetError, match="replaced or modified"):
        lazy.segments_mel[0]


def test_lazy_store_deep_copies_and_pickles(tmp_path, store):
    _, lazy, eager = _lazy_and_eager(tmp_path, store)
    for clone in (copy.deepcopy(lazy), pickle.loads(pickle.dumps(lazy))):
        assert isinstance(clone.segments_mel, H5Rows)
        assert clone.segments_mel is not lazy.segments_mel
        assert clone.file_ids == store.file_ids
        np.testing.assert_array_equal(clone.segments_mel[4:11], eager.segments_mel[4:11])
        np.testing.assert_array_equal(clone.file_segments(2), eager.file_segments(2))


def test_lazy_store_can_be_saved_to_another_file(tmp_path, store):
    _, lazy, eager = _lazy_and_eager(tmp_path, store)
    copy_path = tmp_path / "copy.h5"
    MelFeatureStoreDataset(filepath=copy_path, save_args={"dtype": "float32", "chunk_long_segments": 4}).save(lazy)
    again = MelFeatureStoreDataset(filepath=copy_path).load()
    _assert_same_metadata(again, store)
    np.testing.assert_array_equal(again.segments_mel, eager.segments_mel)


def test_lazy_load_still_checks_the_store(tmp_path, store):
    def edit(h5):
        offsets = h5["file_offsets"][...]
        offsets[-1] -= 1
        h5["file_offsets"][...] = offsets

    path = _save_then_edit(tmp_path, store, edit)
    with pytest.raises(DatasetError, match="file_offsets ends at 13") as excinfo:
        MelFeatureStoreDataset(filepath=path, load_args={"lazy": True}).load()
    assert str(path) in str(excinfo.value)


def test_lazy_empty_store(tmp_path):
    empty = MelFeatureStore(
        segments_mel=np.zeros((0, N_SHORT, N_MELS, N_FRAMES), dtype=np.float32),
        file_offsets=[0],
        labels=[],
        file_ids=[],
        groups=[],
        label_names=["no_leak", "leak"],
    )
    path = tmp_path / "empty.h5"
    MelFeatureStoreDataset(filepath=path).save(empty)
    loaded = MelFeatureStoreDataset(filepath=path, load_args={"lazy": True}).load()
    assert loaded.segments_mel.shape == (0, N_SHORT, N_MELS, N_FRAMES)
    assert loaded.segments_mel[:].shape == (0, N_SHORT, N_MELS, N_FRAMES)


def test_lazy_legacy_store_is_read_into_memory(tmp_path):
    path = tmp_path / "legacy.h5"
    segments = _write_legacy(path)
    loaded = MelFeatureStoreDataset(filepath=path, load_args={"lazy": True}).load()
    assert isinstance(loaded.segments_mel, np.ndarray)
    np.testing.assert_array_equal(loaded.file_segments(2), segments[2].astype(np.float32))


@pytest.mark.parametrize("lazy", ["yes", 1, None])
def test_lazy_must_be_a_boolean(tmp_path, lazy):
    with pytest.raises(DatasetError, match="'lazy'"):
        MelFeatureStoreDataset(filepath=tmp_path / "f.h5", load_args={"lazy": lazy})


def test_lazy_catalog_entry(tmp_path, store):
    path = tmp_path / "mel_features.h5"
    MelFeatureStoreDataset(filepath=path).save(store)
    catalog = DataCatalog.from_config(
        {
            "mel_features": {
                "type": "leak_detection.datasets.MelFeatureStoreDataset",
                "filepath": str(path),
                "load_args": {"lazy": True, "dtype": "float16"},
            }
        }
    )
    loaded = catalog.load("mel_features")
    assert isinstance(loaded.segments_mel, H5Rows)
    assert loaded.segments_mel.dtype == np.float16
    np.testing.assert_array_equal(loaded.file_segments(3), store.file_segments(3).astype(np.float16))
