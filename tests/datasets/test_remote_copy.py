"""Tests for ``RemoteFile``, the local copy a remote store goes through, on fsspec's
in-memory filesystem (no network)."""

from __future__ import annotations

import gc
import pickle
import tempfile
import uuid

import fsspec
import pytest
from kedro.io.core import DatasetError

from leak_detection.audio.remote import unreachable
from leak_detection.datasets.remote_copy import TEMP_PREFIX, LocalCopy, RemoteFile, signature

MEMORY = fsspec.filesystem("memory")


@pytest.fixture
def remote(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    path = f"/bucket-{uuid.uuid4().hex[:8]}/store.h5"
    yield RemoteFile(MEMORY, path, f"memory://{path}")
    if MEMORY.exists(path):
        MEMORY.rm(path)


def _copies(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(TEMP_PREFIX))


def test_signature_needs_something_that_changes_with_the_object():
    assert signature({"size": 10, "type": "file"}) is None
    assert signature({"size": 10, "ETag": "abc", "mtime": None}) == (10, ("ETag", "abc"))


def test_a_missing_object_is_none_and_not_a_file(remote):
    assert remote.info() is None
    assert not remote.is_file()
    with pytest.raises(DatasetError, match="^nothing here$"):
        remote.local_copy("nothing here")


def test_a_look_up_that_fails_is_the_projects_one_cannot_reach_line(remote, monkeypatch):
    def refused(path, **kwargs):
        raise ConnectionError("connection\nrefused")

    monkeypatch.setattr(remote.fs, "info", refused)
    with pytest.raises(DatasetError) as caught:
        remote.is_file()
    expected = unreachable(remote.url, ConnectionError("connection refused"), what="the mel feature store at ")
    assert str(caught.value) == str(expected)  # on one line
    assert str(caught.value).startswith(f"Cannot reach the mel feature store at {remote.url}: ConnectionError")


def test_an_unchanged_object_is_downloaded_once_and_a_changed_one_again(remote, tmp_path):
    MEMORY.pipe_file(remote.path, b"first")
    first = remote.local_copy("missing")
    assert remote.local_copy("missing") is first
    assert first.path.read_bytes() == b"first"

    MEMORY.pipe_file(remote.path, b"second")
    second = remote.local_copy("missing")
    assert second is not first
    assert second.path.read_bytes() == b"second"
    del first
    gc.collect()
    assert len(_copies(tmp_path)) == 1


def test_an_uploaded_copy_is_kept_and_a_pickled_remote_file_keeps_none(remote, tmp_path):
    local = remote.new_copy()
    local.path.write_bytes(b"saved")
    remote.upload(local)
    assert MEMORY.cat_file(remote.path) == b"saved"
    assert remote.local_copy("missing") is local

    clone = pickle.loads(pickle.dumps(remote))
    assert clone.local_copy("missing") is not local
    del local, clone
    remote.release()
    gc.collect()
    assert _copies(tmp_path) == []


def test_a_copy_outlives_what_it_was_made_for(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    class Holder:
        pass

    holder = Holder()
    LocalCopy("store.h5").outlive(holder)
    gc.collect()
    assert len(_copies(tmp_path)) == 1
    del holder
    gc.collect()
    assert _copies(tmp_path) == []
