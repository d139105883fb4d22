"""Worker processes read recordings exactly as the serial path does, in the same order."""

import contextlib

import numpy as np
import pytest

from leak_detection.audio.analysis_pool import analyse_files, resolve_workers
from leak_detection.audio.front_end import FrontEndConfig
from leak_detection.datasets.recordings_dataset import RecordingsDataset


@pytest.fixture(scope="module")
def recordings_with_a_broken_file(tmp_path_factory):
    from tests.conftest import noise_wav

    root = tmp_path_factory.mktemp("pool_recordings")
    for i in range(12):
        noise_wav(
            root / ("LEAK" if i % 2 else "NORMAL") / f"f{i:02d}.wav",
            seconds=1.5,
            rate=(4096, 8000, 16000)[i % 3],
            seed=i,
        )
    (root / "LEAK" / "f99_broken.wav").write_bytes(b"RIFF not really a wave file")
    return RecordingsDataset(path=str(root)).load()


def test_worker_processes_give_the_serial_features_in_the_same_order(recordings_with_a_broken_file):
    recordings = recordings_with_a_broken_file
    file_ids = list(recordings.table["file_id"])
    config = FrontEndConfig()
    serial = list(analyse_files(recordings, file_ids, config, workers=1))
    pooled = list(analyse_files(recordings, file_ids, config, workers=3))
    assert [r.file_id for r in pooled] == [r.file_id for r in serial] == file_ids
    for a, b in zip(serial, pooled, strict=True):
        assert a.reason == b.reason
        if a.analysed is not None:
            assert np.array_equal(a.analysed.features, b.analysed.features)  # the same bytes, not merely close
            assert a.analysed.content_sha256 == b.analysed.content_sha256
    broken = pooled[file_ids.index("LEAK/f99_broken.wav")]
    assert broken.analysed is None and broken.reason.startswith("unreadable:")


def test_stopping_early_stops_the_workers(recordings_with_a_broken_file):
    recordings = recordings_with_a_broken_file
    file_ids = list(recordings.table["file_id"])
    with contextlib.closing(analyse_files(recordings, file_ids, FrontEndConfig(), workers=3)) as results:
        first = next(results)
    assert first.file_id == file_ids[0]
    with pytest.raises(StopIteration):
        next(results)


def test_worker_count_follows_the_parameter_and_the_work():
    assert resolve_workers(1, 1000) == 1
    assert resolve_workers(3, 1000) == 3
    assert resolve_workers(8, 6) == 1  # too few files to be worth a pool
    assert resolve_workers("auto", 1000) >= 1
