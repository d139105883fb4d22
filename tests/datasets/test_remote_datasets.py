"""Tests for ``MelFeatureStoreDataset`` and ``OnnxModelDataset`` on a remote filesystem:
fsspec's in-memory one stands for object storage (no network, no s3fs)."""

from __future__ import annotations

import copy
import errno
import gc
import importlib
import os
import pickle
import tempfile
import uuid

import fsspec
import numpy as np
import onnx
import pytest
from kedro.io.core import DatasetError, Version
from onnx import TensorProto, helper

from leak_detection.datasets import MelFeatureStoreDataset, OnnxModelDataset, TorchModelDataset
from leak_detection.features.hdf5_layout import BUILD_HINT
from leak_detection.features.lazy_rows import H5Rows
from tests.conftest import synthetic_store
from tests.datasets.test_mel_feature_store_dataset import _assert_same_metadata

MEMORY = fsspec.filesystem("memory")


@pytest.fixture(autouse=True)
def empty_memory_filesystem():
    MEMORY.store.clear()
    MEMORY.pseudo_dirs.clear()
    MEMORY.pseudo_dirs.append("")
    yield
    MEMORY.store.clear()
    MEMORY.pseudo_dirs.clear()
    MEMORY.pseudo_dirs.append("")


@pytest.fixture
def own_tmpdir(tmp_path, monkeypatch):
    """The folder the datasets' temporary copies go to, as TMPDIR would choose it."""
    folder = tmp_path / "tmpdir"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture
def url() -> str:
    return f"memory:///bucket-{uuid.uuid4().hex[:8]}/04_feature/mel_features.h5"


@pytest.fixture(scope="module")
def store():
    return synthetic_store(files_per_class=2, n_long=3)[0]


def _copies(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("leak-detection-store-"))


def _assert_same_store(loaded, original) -> None:
    np.testing.assert_array_equal(np.asarray(loaded.segments_mel), original.segments_mel)
    _assert_same_metadata(loaded, original)


def _float32(url: str, **kwargs) -> MelFeatureStoreDataset:
    return MelFeatureStoreDataset(filepath=url, save_args={"dtype": "float32"}, **kwargs)


def _count_downloads(dataset: MelFeatureStoreDataset, monkeypatch) -> list[str]:
    """The remote paths ``dataset`` downloads from now on, one entry per download."""
    calls: list[str] = []
    get_file = dataset._fs.get_file

    def counting(rpath, lpath, **kwargs):
        calls.append(rpath)
        return get_file(rpath, lpath, **kwargs)

    monkeypatch.setattr(dataset._fs, "get_file", counting)
    return calls


def test_eager_round_trip_keeps_the_uploaded_file_as_the_datasets_copy(url, store, own_tmpdir, monkeypatch):
    dataset = _float32(url)
    assert not dataset.exists()
    dataset.save(store)
    assert dataset.exists()
    assert MEMORY.isfile(url)
    assert len(_copies(own_tmpdir)) == 1

    downloads = _count_downloads(dataset, monkeypatch)
    loaded = dataset.load()
    assert isinstance(loaded.segments_mel, np.ndarray)
    _assert_same_store(loaded, store)
    assert downloads == []
    assert len(_copies(own_tmpdir)) == 1

    del dataset
    gc.collect()
    assert _copies(own_tmpdir) == []


def test_two_loads_from_one_dataset_download_once(url, store, own_tmpdir, monkeypatch):
    _float32(url).save(store)
    assert _copies(own_tmpdir) == []
    for lazy in (False, True):
        dataset = _float32(url, load_args={"lazy": lazy})
        downloads = _count_downloads(dataset, monkeypatch)
        first, second = dataset.load(), dataset.load()
        assert len(downloads) == 1
        assert len(_copies(own_tmpdir)) == 1
        _assert_same_store(first, store)
        _assert_same_store(second, store)
        del dataset, first, second
        gc.collect()
        assert _copies(own_tmpdir) == []


def test_a_replaced_remote_object_is_downloaded_again(url, store, own_tmpdir, monkeypatch):
    other = synthetic_store(files_per_class=1, n_long=2, seed=1)[0]
    _float32(url).save(store)
    dataset = _float32(url, load_args={"lazy": True})
    downloads = _count_downloads(dataset, monkeypatch)
    before = dataset.load()

    _float32(url).save(other)
    after = dataset.load()
    assert len(downloads) == 2
    _assert_same_store(after, other)
    # The store loaded before keeps reading its own copy.
    assert len(_copies(own_tmpdir)) == 2
    _assert_same_store(before, store)

    _assert_same_store(dataset.load(), other)
    assert len(downloads) == 2
    del before
    gc.collect()
    assert len(_copies(own_tmpdir)) == 1
    del dataset, after
    gc.collect()
    assert _copies(own_tmpdir) == []


def test_a_filesystem_that_reports_no_change_is_downloaded_every_time(url, store, own_tmpdir, monkeypatch):
    _float32(url).save(store)
    dataset = _float32(url)
    info = dataset._fs.info
    monkeypatch.setattr(dataset._fs, "info", lambda path, **kw: {k: v for k, v in info(path).items() if k != "created"})
    downloads = _count_downloads(dataset, monkeypatch)
    dataset.load()
    dataset.load()
    assert len(downloads) == 2
    # Each load's copy goes once the next one replaces it.
    assert len(_copies(own_tmpdir)) == 1


def test_lazy_store_reads_the_datasets_copy_until_both_are_collected(url, store, own_tmpdir):
    _float32(url).save(store)
    loaded = _float32(url, load_args={"lazy": True}).load()

    assert isinstance(loaded.segments_mel, H5Rows)
    copies = _copies(own_tmpdir)
    assert len(copies) == 1
    assert loaded.segments_mel.filepath.parent == own_tmpdir / copies[0]
    # The dataset is gone already: the rows keep the copy they read.
    gc.collect()
    np.testing.assert_array_equal(loaded.segments_mel[2:5], store.segments_mel[2:5])
    _assert_same_store(loaded, store)

    del loaded
    gc.collect()
    assert _copies(own_tmpdir) == []


def test_lazy_copy_stays_while_another_store_shares_its_rows(url, store, own_tmpdir):
    _float32(url).save(store)
    dataset = _float32(url, load_args={"lazy": True})
    loaded = dataset.load()
    rows = loaded.segments_mel
    del loaded, dataset
    gc.collect()
    np.testing.assert_array_equal(rows[0], store.segments_mel[0])
    del rows
    gc.collect()
    assert _copies(own_tmpdir) == []


def test_released_dataset_lets_go_of_its_copy(url, store, own_tmpdir, monkeypatch):
    dataset = _float32(url)
    dataset.save(store)
    downloads = _count_downloads(dataset, monkeypatch)
    dataset.release()
    gc.collect()
    assert _copies(own_tmpdir) == []
    _assert_same_store(dataset.load(), store)
    assert len(downloads) == 1
    assert len(_copies(own_tmpdir)) == 1


def test_a_copied_dataset_downloads_its_own_copy(url, store, own_tmpdir, monkeypatch):
    dataset = _float32(url)
    dataset.save(store)
    downloads = _count_downloads(dataset, monkeypatch)
    clones = [pickle.loads(pickle.dumps(dataset)), copy.deepcopy(dataset)]
    for clone in clones:
        _assert_same_store(clone.load(), store)
    assert len(downloads) == 2
    assert len(_copies(own_tmpdir)) == 3
    del clones, clone
    gc.collect()
    assert len(_copies(own_tmpdir)) == 1


def test_failed_download_leaves_no_local_copy(url, store, own_tmpdir, monkeypatch):
    _float32(url).save(store)
    dataset = _float32(url)

    def broken_download(*args, **kwargs):
        raise ConnectionError("connection reset by peer")

    monkeypatch.setattr(dataset._fs, "get_file", broken_download)
    with pytest.raises(DatasetError, match="Could not download") as caught:
        dataset.load()
    assert url in str(caught.value) and "connection reset by peer" in str(caught.value)
    assert _copies(own_tmpdir) == []


@pytest.mark.parametrize("error", [ConnectionError("refused"), PermissionError("Access Denied"), OSError("DNS")])
def test_unreachable_storage_is_never_taken_for_a_missing_store(url, store, own_tmpdir, monkeypatch, error):
    _float32(url).save(store)
    dataset = _float32(url)

    def unreachable(path, **kwargs):
        raise error

    monkeypatch.setattr(dataset._fs, "info", unreachable)
    expected = f"Cannot reach the mel feature store at {url}: {type(error).__name__}: {error}; check the network"
    with pytest.raises(DatasetError, match="Cannot reach") as caught:
        dataset.exists()
    assert expected in str(caught.value)
    with pytest.raises(DatasetError) as caught:
        dataset.load()
    assert str(caught.value).startswith(expected)
    assert "does not exist" not in str(caught.value)
    assert "\n" not in str(caught.value)
    assert _copies(own_tmpdir) == []


def test_a_store_not_found_still_reads_as_missing(url, monkeypatch):
    dataset = _float32(url)

    def not_found(path, **kwargs):
        raise FileNotFoundError(path)

    monkeypatch.setattr(dataset._fs, "info", not_found)
    assert not dataset.exists()
    with pytest.raises(DatasetError) as caught:
        dataset.load()
    assert str(caught.value) == f"The mel feature store does not exist at {url}; {BUILD_HINT}."
    assert "data_indexing" in str(caught.value)


def test_a_folder_is_not_a_store(url, store, own_tmpdir):
    _float32(url).save(store)
    folder = url.rsplit("/", 1)[0]
    dataset = MelFeatureStoreDataset(filepath=folder)
    assert not dataset.exists()
    with pytest.raises(DatasetError, match="is a folder, not a mel feature store file") as caught:
        dataset.load()
    assert folder in str(caught.value)
    assert _copies(own_tmpdir) == []


def test_guard_hook_stops_a_run_when_the_store_cannot_be_reached(url, monkeypatch):
    from kedro.io import DataCatalog
    from kedro.pipeline import node, pipeline

    from leak_detection.hooks import FeatureStoreGuardHook

    dataset = _float32(url)
    monkeypatch.setattr(dataset._fs, "info", lambda path, **kwargs: (_ for _ in ()).throw(ConnectionError("refused")))
    catalog = DataCatalog(datasets={"mel_features": dataset})
    extraction = pipeline([node(lambda: None, inputs=None, outputs="mel_features")])
    with pytest.raises(DatasetError, match=f"Cannot reach the mel feature store at {url}") as refused:
        FeatureStoreGuardHook().before_pipeline_run(
            run_params={"runtime_params": {"feature_store": url}}, pipeline=extraction, catalog=catalog
        )
    assert str(refused.value).startswith(f"feature_store={url}: ") and "exists check" not in str(refused.value)


def test_remote_save_keeps_the_save_args(url, store):
    MelFeatureStoreDataset(filepath=url, save_args={"compression": "gzip"}).save(store)
    loaded = MelFeatureStoreDataset(filepath=url).load()
    np.testing.assert_allclose(loaded.segments_mel, store.segments_mel.astype(np.float16), rtol=0)


def test_missing_remote_store_names_the_url_and_how_to_build_it(url, own_tmpdir):
    with pytest.raises(DatasetError) as caught:
        MelFeatureStoreDataset(filepath=url).load()
    assert str(caught.value) == f"The mel feature store does not exist at {url}; {BUILD_HINT}."
    assert _copies(own_tmpdir) == []


def test_unreadable_remote_store_names_the_url_not_the_local_copy(url, own_tmpdir):
    MEMORY.pipe_file(url, b"not an HDF5 file")
    with pytest.raises(DatasetError, match="as HDF5") as caught:
        MelFeatureStoreDataset(filepath=url).load()
    assert url in str(caught.value)
    assert str(own_tmpdir) not in str(caught.value)
    assert _copies(own_tmpdir) == []


def test_failed_upload_leaves_the_remote_store_and_no_local_copy(url, store, own_tmpdir, monkeypatch):
    dataset = _float32(url)
    dataset.save(store)
    before = MEMORY.cat_file(url)

    def broken_upload(*args, **kwargs):
        raise ConnectionError("connection reset by peer")

    monkeypatch.setattr(type(dataset._fs), "put_file", broken_upload)
    other = synthetic_store(files_per_class=1, n_long=2, seed=1)[0]
    with pytest.raises(DatasetError, match="upload") as caught:
        dataset.save(other)
    assert url in str(caught.value)
    assert "connection reset by peer" in str(caught.value)
    assert MEMORY.cat_file(url) == before
    # Only the copy of the store saved before remains.
    assert len(_copies(own_tmpdir)) == 1
    monkeypatch.undo()
    _assert_same_store(dataset.load(), store)


def test_store_refused_on_save_is_never_uploaded(url, store, own_tmpdir):
    bad = synthetic_store(files_per_class=1, n_long=2)[0]
    bad.segments_mel[0, 0, 0, 0] = np.nan
    with pytest.raises(DatasetError, match="Refusing to save") as caught:
        _float32(url).save(bad)
    assert url in str(caught.value)
    assert str(own_tmpdir) not in str(caught.value)
    assert not MEMORY.exists(url)
    assert _copies(own_tmpdir) == []


def test_full_local_disk_on_remote_save_points_at_tmpdir(url, store, own_tmpdir, monkeypatch):
    from leak_detection.datasets import mel_feature_store_dataset as module

    def full_disk(path, data, options):
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as exc:
            raise DatasetError(f"Failed to save the mel feature store to {path}: no space left on device.") from exc

    monkeypatch.setattr(module, "save_store_file", full_disk)
    with pytest.raises(DatasetError) as caught:
        _float32(url).save(store)
    message = str(caught.value)
    assert f"to {url}: no space left" in message
    assert "TMPDIR" in message and str(own_tmpdir) in message
    assert not MEMORY.exists(url)
    assert _copies(own_tmpdir) == []


def test_a_forked_process_never_removes_its_parents_copy(tmp_path):
    from leak_detection.datasets.remote_copy import remove_local_copy

    copy = tmp_path / "leak-detection-store-x"
    copy.mkdir()
    remove_local_copy(str(copy), os.getpid() + 1)
    assert copy.is_dir()
    remove_local_copy(str(copy), os.getpid())
    assert not copy.exists()


def test_remote_dataset_describes_its_url(url):
    dataset = MelFeatureStoreDataset(filepath=url)
    assert str(dataset._filepath) == url
    assert "memory" in repr(dataset)
    assert url in repr(dataset)


def test_local_store_is_unchanged_by_the_remote_options(tmp_path, store, own_tmpdir):
    path = tmp_path / "mel_features.h5"
    dataset = MelFeatureStoreDataset(filepath=path, save_args={"dtype": "float32"}, load_args={"lazy": True})
    assert not dataset.exists()
    dataset.save(store)
    assert dataset.exists()
    loaded = dataset.load()
    assert loaded.segments_mel.filepath == path
    _assert_same_store(loaded, store)
    assert _copies(own_tmpdir) == []
    with pytest.raises(DatasetError, match=f"does not exist at {tmp_path / 'other.h5'}"):
        MelFeatureStoreDataset(filepath=tmp_path / "other.h5").load()


# ---- OnnxModelDataset ----------------------------------------------------------------


def _onnx_bytes(name: str = "x") -> bytes:
    graph = helper.make_graph(
        [helper.make_node("Identity", [name], ["y"])],
        "identity",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    return model.SerializeToString()


@pytest.fixture
def onnx_url() -> str:
    return f"memory:///bucket-{uuid.uuid4().hex[:8]}/06_models/binary/model.onnx"


def test_onnx_versions_round_trip_through_object_storage(onnx_url):
    older, newer = "2024-01-01T00.00.00.000Z", "2024-02-01T00.00.00.000Z"
    assert not OnnxModelDataset(filepath=onnx_url, version=Version(None, None)).exists()

    OnnxModelDataset(filepath=onnx_url, version=Version(None, older)).save(_onnx_bytes("a"))
    OnnxModelDataset(filepath=onnx_url, version=Version(None, newer)).save(_onnx_bytes("b"))

    latest = OnnxModelDataset(filepath=onnx_url, version=Version(None, None))
    assert latest.exists()
    assert latest.load() == _onnx_bytes("b")
    assert OnnxModelDataset(filepath=onnx_url, version=Version(older, None)).load() == _onnx_bytes("a")
    assert latest.list_versions(full_path=False) == [newer, older]
    path = onnx_url.removeprefix("memory://")
    assert MEMORY.isfile(f"{path}/{older}/model.onnx")
    assert MEMORY.isfile(f"{path}/{newer}/model.onnx")
    assert "inputs" in latest.preview()


def test_onnx_unversioned_remote_save_and_exists(onnx_url):
    dataset = OnnxModelDataset(filepath=onnx_url)
    assert not dataset.exists()
    dataset.save(_onnx_bytes())
    assert dataset.exists()
    assert MEMORY.cat_file(onnx_url) == _onnx_bytes()
    assert dataset.load() == _onnx_bytes()


def test_onnx_invalid_bytes_are_refused_and_nothing_is_written(onnx_url):
    dataset = OnnxModelDataset(filepath=onnx_url, version=Version(None, "2024-01-01T00.00.00.000Z"))
    with pytest.raises(DatasetError, match="not a valid ONNX model") as caught:
        dataset.save(b"definitely not onnx")
    assert "memory://" in str(caught.value)
    assert MEMORY.find("/") == []
    assert not OnnxModelDataset(filepath=onnx_url, version=Version(None, None)).exists()


def test_onnx_corrupted_remote_file_is_refused_on_load(onnx_url):
    MEMORY.pipe_file(onnx_url, b"\x00garbage")
    with pytest.raises(DatasetError, match="not a valid ONNX model") as caught:
        OnnxModelDataset(filepath=onnx_url).load()
    assert onnx_url in str(caught.value)


def test_onnx_local_save_is_still_atomic_and_versioned(tmp_path, monkeypatch):
    path = tmp_path / "model.onnx"
    version = "2024-01-01T00.00.00.000Z"
    OnnxModelDataset(filepath=path, version=Version(None, version)).save(_onnx_bytes())
    assert (tmp_path / "model.onnx" / version / "model.onnx").read_bytes() == _onnx_bytes()
    assert OnnxModelDataset(filepath=path, version=Version(None, None)).load() == _onnx_bytes()

    dataset = OnnxModelDataset(filepath=tmp_path / "plain.onnx")
    dataset.save(_onnx_bytes("a"))
    # A disk that fills up halfway through the write: half the new model is on disk, then it fails.
    real_open = open

    class HalfWritten:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc_info):
            return self.handle.__exit__(*exc_info)

        def write(self, data):
            self.handle.write(data[: len(data) // 2])
            self.handle.flush()
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(
        "leak_detection.datasets.onnx_model_dataset.open",
        lambda *args, **kwargs: HalfWritten(real_open(*args, **kwargs)),
        raising=False,
    )
    with pytest.raises(DatasetError, match="No space left on device"):
        dataset.save(_onnx_bytes("b"))
    monkeypatch.undo()
    assert dataset.load() == _onnx_bytes("a")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "plain.onnx"]  # no temporary file left


def test_onnx_remote_save_is_one_upload_and_a_failed_one_leaves_nothing(onnx_url, monkeypatch):
    older, newer = "2024-01-01T00.00.00.000Z", "2024-02-01T00.00.00.000Z"
    OnnxModelDataset(filepath=onnx_url, version=Version(None, older)).save(_onnx_bytes("a"))

    def dropped(path, value, **kwargs):
        raise ConnectionError("connection reset by peer")

    # Not fs.open: its file object would flush what it holds on the way out of a failed write.
    monkeypatch.setattr(MEMORY, "open", lambda *args, **kwargs: pytest.fail("saved through fs.open"))
    monkeypatch.setattr(MEMORY, "pipe_file", dropped)
    with pytest.raises(DatasetError, match="connection reset by peer"):
        OnnxModelDataset(filepath=onnx_url, version=Version(None, newer)).save(_onnx_bytes("b"))
    monkeypatch.undo()
    latest = OnnxModelDataset(filepath=onnx_url, version=Version(None, None))
    assert latest.list_versions(full_path=False) == [older]
    assert latest.load() == _onnx_bytes("a")


def _refused(*args, **kwargs):
    raise ConnectionError("connection refused")


def test_an_onnx_store_out_of_reach_is_a_failure_naming_it_never_a_missing_model(onnx_url, monkeypatch):
    version = "2024-01-01T00.00.00.000Z"
    OnnxModelDataset(filepath=onnx_url, version=Version(None, version)).save(_onnx_bytes())
    pinned = OnnxModelDataset(filepath=onnx_url, version=Version(version, None))
    monkeypatch.setattr(MEMORY, "info", _refused)
    with pytest.raises(DatasetError, match=f"Cannot reach {onnx_url}/{version}/model.onnx: ConnectionError"):
        pinned.exists()
    monkeypatch.setattr(MEMORY, "_open", _refused)
    with pytest.raises(DatasetError) as caught:
        pinned.load()
    assert str(caught.value).startswith(f"Cannot reach {onnx_url}/{version}/model.onnx: ConnectionError")
    # The listing: fsspec's find answers nothing when it cannot list, so the folder is asked directly.
    monkeypatch.setattr(MEMORY, "find", lambda *args, detail=False, **kwargs: {} if detail else [])
    with pytest.raises(DatasetError, match=f"Cannot reach the version folders of {onnx_url}: ConnectionError"):
        OnnxModelDataset(filepath=onnx_url, version=Version(None, None)).load()


def test_an_onnx_model_that_is_not_there_says_how_to_export_one(onnx_url):
    with pytest.raises(DatasetError, match=f"There is no ONNX model at {onnx_url}; export one with"):
        OnnxModelDataset(filepath=onnx_url).load()


@pytest.mark.parametrize(
    ("make", "url"),
    [
        (lambda url: MelFeatureStoreDataset(filepath=url), "s3://bucket/04_feature/mel_features.h5"),
        (lambda url: OnnxModelDataset(filepath=url), "s3://bucket/06_models/binary/model.onnx"),
        (lambda url: TorchModelDataset(filepath=url), "s3://bucket/06_models/binary/best.pth"),
    ],
    ids=["mel_feature_store", "onnx", "torch"],
)
def test_a_missing_s3fs_names_the_url_and_the_extra_not_the_network(monkeypatch, make, url):
    # As on a machine without s3fs, whether or not this one has it.
    registry = importlib.import_module("fsspec.registry")  # the module: fsspec.registry is its mapping
    monkeypatch.delitem(registry._registry, "s3", raising=False)
    monkeypatch.setitem(
        registry.known_implementations,
        "s3",
        {"class": "s3fs_not_installed.S3FileSystem", "err": "Install s3fs to access S3"},
    )
    with pytest.raises(DatasetError) as caught:
        make(url)
    message = str(caught.value)
    assert message.startswith(f"Cannot open {url}: Install s3fs to access S3")
    assert 'pip install -e ".[s3]"' in message and "reach" not in message and "\n" not in message
