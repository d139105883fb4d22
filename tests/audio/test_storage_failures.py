"""A store that fails while recordings are read stops the run with one line; it never shortens a recording.

fsspec's in-memory filesystem stands in for a bucket; failures are injected into it.
"""

import os
import pickle
import sys

import fsspec
import numpy as np
import pytest
from fsspec.implementations.memory import MemoryFile, MemoryFileSystem

from leak_detection.audio.analysis_pool import analyse_files
from leak_detection.audio.front_end import FrontEndConfig
from leak_detection.audio.recordings import StorageUnreachable, read_recording
from leak_detection.datasets import RecordingsDataset
from leak_detection.decisions.explain import explain_recording

FOLDER = "memory://outage-bucket/pipes"
FRAMES = 40960  # 10 s at 4096 Hz: 81964 bytes as 16-bit WAV


@pytest.fixture
def bucket(tmp_path, make_wav):
    memory = fsspec.filesystem("memory")
    memory.store.clear()
    memory.pseudo_dirs[:] = [""]
    for i in range(8):
        make_wav(tmp_path / "LEAK" / f"{i}.wav", seconds=FRAMES / 4096, seed=i)
    memory.put(str(tmp_path), "/outage-bucket/pipes", recursive=True)
    yield memory
    memory.store.clear()
    memory.pseudo_dirs[:] = [""]


def cut_off_after(monkeypatch, limit):
    """Every object read past ``limit`` bytes fails, as a connection reset mid-download does."""
    original = MemoryFile.readinto

    def readinto(self, buffer):
        if self.tell() + len(buffer) > limit:
            raise ConnectionError("connection reset by peer")
        return original(self, buffer)

    monkeypatch.setattr(MemoryFile, "readinto", readinto)


def refuse_opening(monkeypatch):
    def refused(self, path, *args, **kwargs):
        raise ConnectionError("connection refused")

    monkeypatch.setattr(MemoryFileSystem, "_open", refused)


@pytest.fixture
def unraisable(monkeypatch):
    """What soundfile's cffi callbacks would have printed and dropped."""
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)
    return seen


def test_a_recording_cut_off_mid_read_is_an_error_not_a_short_recording(bucket, monkeypatch, unraisable):
    recordings = RecordingsDataset(path=FOLDER).load()
    assert recordings.read("LEAK/0.wav")[0].shape == (FRAMES,)
    cut_off_after(monkeypatch, 20000)
    url = f"{FOLDER}/LEAK/0.wav"
    with pytest.raises(StorageUnreachable, match=f"^Cannot reach {url}: ConnectionError: connection reset by peer;"):
        recordings.read("LEAK/0.wav")
    rate, blocks = recordings.open_blocks("LEAK/0.wav", block_frames=2048)
    assert rate == 4096
    with pytest.raises(StorageUnreachable, match=f"Cannot reach {url}"):
        list(blocks)
    with pytest.raises(StorageUnreachable, match=f"Cannot reach {url}"):
        explain_recording(url, {}, {})
    assert unraisable == []


def test_a_store_failing_before_the_header_is_read_is_unreachable_not_a_bad_file(bucket, monkeypatch):
    cut_off_after(monkeypatch, 0)
    with pytest.raises(StorageUnreachable, match="connection reset"):
        RecordingsDataset(path=FOLDER).load().open_blocks("LEAK/1.wav")


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("failure", [refuse_opening, lambda monkeypatch: cut_off_after(monkeypatch, 20000)])
def test_an_outage_stops_extraction_in_one_line_naming_the_url(bucket, monkeypatch, workers, failure):
    recordings = RecordingsDataset(path=FOLDER).load()
    file_ids = list(recordings.table["file_id"])
    failure(monkeypatch)
    with pytest.raises(StorageUnreachable, match=f"Cannot reach {FOLDER}/LEAK/[0-7].wav: ConnectionError") as raised:
        list(analyse_files(recordings, file_ids, FrontEndConfig(), workers=workers))
    assert "\n" not in str(raised.value)


def test_a_recording_removed_since_the_listing_stays_that_files_own_problem(bucket):
    recordings = RecordingsDataset(path=FOLDER).load()
    bucket.rm("/outage-bucket/pipes/LEAK/3.wav")
    results = list(analyse_files(recordings, list(recordings.table["file_id"]), FrontEndConfig(), workers=1))
    reasons = {r.file_id: r.reason for r in results}
    assert reasons.pop("LEAK/3.wav").startswith("unreadable: FileNotFoundError")
    assert set(reasons.values()) == {None}


def test_the_outage_crosses_the_worker_pool_whole():
    sent = StorageUnreachable("Cannot reach memory://b/x.wav: ConnectionError: reset; check the network")
    received = pickle.loads(pickle.dumps(sent))
    assert type(received) is StorageUnreachable and str(received) == str(sent)


def open_descriptors():
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts open files through /proc")
def test_blocks_close_their_file_whether_or_not_they_were_read(tmp_path, make_wav):
    make_wav(tmp_path / "LEAK" / "a.wav", seconds=2.0)
    recordings = RecordingsDataset(path=tmp_path).load()
    before = open_descriptors()
    rate, blocks = recordings.open_blocks("LEAK/a.wav")
    assert open_descriptors() == before + 1
    blocks.close()  # never iterated: a recording rejected on its header alone
    assert open_descriptors() == before
    rate, blocks = recordings.open_blocks("LEAK/a.wav", block_frames=1000)
    assert sum(len(block) for block in blocks) == 2 * rate and open_descriptors() == before
    assert next(blocks, None) is None


def test_a_local_recording_reads_as_before(tmp_path, make_wav):
    make_wav(tmp_path / "a.wav")
    samples, rate = read_recording(tmp_path / "a.wav", {})
    assert rate == 4096 and samples.shape == (4096,) and np.isfinite(samples).all()
