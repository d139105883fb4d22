import logging

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from leak_detection.datasets import RecordingsDataset
from leak_detection.labels import LabelError
from leak_detection.pipelines.feature_extraction.nodes import (
    BadRecordingError,
    extract_features,
    index_recordings,
    label_recordings,
)

FRONT_END = {}  # the defaults
SPLITS = {"ratios": {"train": 0.7, "validation": 0.2, "test": 0.1}, "seed": 0}


@pytest.fixture
def folder_with_bad_files(tmp_path, make_wav):
    root = tmp_path / "rec"
    make_wav(root / "LEAK" / "good.wav", seconds=2.0, rate=16000)
    make_wav(root / "NORMAL" / "stereo 24bit ü.wav", seconds=1.5, rate=8000, subtype="PCM_24", channels=2)
    (root / "LEAK").mkdir(parents=True, exist_ok=True)
    (root / "LEAK" / "zero_bytes.wav").write_bytes(b"")
    (root / "LEAK" / "random_bytes.wav").write_bytes(np.random.default_rng(0).bytes(2000))
    good = (root / "LEAK" / "good.wav").read_bytes()
    (root / "QUIET").mkdir()
    (root / "QUIET" / "truncated_header.wav").write_bytes(good[:30])
    sf.write(root / "QUIET" / "empty.wav", np.zeros((0,)), 4096)
    make_wav(root / "RANDOM" / "short.wav", seconds=0.1)
    (root / "MECHANICAL").mkdir()
    sf.write(root / "MECHANICAL" / "nan.wav", np.full(8192, np.nan, dtype=np.float32), 4096, subtype="FLOAT")
    sf.write(root / "MECHANICAL" / "silent.wav", np.zeros(8192), 4096)
    return root


def run_extraction(root, strict=False):
    recordings = RecordingsDataset(path=root).load()
    labelled = label_recordings(recordings, {})
    return extract_features(recordings, labelled, FRONT_END, {"strict": strict})


def test_rejected_report_lists_each_kind_of_bad_file(folder_with_bad_files):
    store, rejected = run_extraction(folder_with_bad_files)
    reasons = dict(zip(rejected["file_id"], rejected["reason"], strict=False))
    assert reasons["LEAK/zero_bytes.wav"].startswith("unreadable")
    assert reasons["LEAK/random_bytes.wav"].startswith("unreadable")
    assert reasons["QUIET/truncated_header.wav"].startswith("unreadable")
    assert reasons["QUIET/empty.wav"].startswith("empty")
    assert reasons["RANDOM/short.wav"].startswith("too short")
    assert reasons["MECHANICAL/nan.wav"].startswith("non-finite")
    assert reasons["MECHANICAL/silent.wav"].startswith("silent")
    assert len(rejected) == 7
    assert store.file_ids == ["LEAK/good.wav", "NORMAL/stereo 24bit ü.wav"]
    # 2 s at 16 kHz -> 8192 samples at 4096 Hz -> 15 long segments; 1.5 s -> 6144 -> 11.
    np.testing.assert_array_equal(store.file_offsets, [0, 15, 26])
    np.testing.assert_array_equal(store.sample_rates, [16000, 8000])
    np.testing.assert_allclose(store.durations_s, [2.0, 1.5])
    assert store.segments_mel.shape == (26, 3, 32, 1)
    assert np.isfinite(store.segments_mel).all()


def test_strict_stops_at_the_first_bad_recording_and_names_it(folder_with_bad_files):
    with pytest.raises(BadRecordingError, match=r"LEAK/random_bytes\.wav: unreadable"):
        run_extraction(folder_with_bad_files, strict=True)


def test_an_unmapped_label_stops_before_any_audio_is_read(tmp_path, make_wav):
    make_wav(tmp_path / "HISS" / "a.wav")
    recordings = RecordingsDataset(path=tmp_path).load()
    with pytest.raises(LabelError, match="HISS"):
        label_recordings(recordings, {"CRACK": "LEAK"})


@pytest.fixture
def ten_group_store(tmp_path, make_wav):
    """30 one-second files in groups g0..g9 of three, one per class LEAK, NORMAL, QUIET."""
    for i in range(30):
        label = ["LEAK", "NORMAL", "QUIET"][i % 3]
        make_wav(tmp_path / label / f"g{i // 3}" / f"{i}.wav", seconds=1.0, seed=i)
    manifest = pd.DataFrame(
        {
            "path": [f"{['LEAK', 'NORMAL', 'QUIET'][i % 3]}/g{i // 3}/{i}.wav" for i in range(30)],
            "group": [f"g{i // 3}" for i in range(30)],
        }
    )
    manifest.to_csv(tmp_path / "manifest.csv", index=False)
    recordings = RecordingsDataset(path=tmp_path).load()
    store, rejected = extract_features(recordings, label_recordings(recordings, {}), FRONT_END, {})
    assert rejected.empty
    return store


def test_index_has_one_row_per_featurised_file_with_its_split(ten_group_store):
    index = index_recordings(ten_group_store, SPLITS)
    assert list(index.columns) == [
        "file_id",
        "label",
        "group",
        "duration_s",
        "sample_rate",
        "n_long_segments",
        "split",
        "store_fingerprint",
    ]
    assert len(index) == 30
    assert set(index["split"]) == {"train", "validation", "test"}
    assert (index.groupby("group")["split"].nunique() == 1).all()
    assert (index["n_long_segments"] == 7).all()


def test_an_empty_holdout_gives_the_same_index_as_none(ten_group_store):
    pd.testing.assert_frame_equal(
        index_recordings(ten_group_store, {**SPLITS, "holdout_sites": []}), index_recordings(ten_group_store, SPLITS)
    )


def test_held_out_groups_are_the_test_split_and_are_logged_in_one_line(ten_group_store, caplog):
    with caplog.at_level(logging.INFO, logger="leak_detection.pipelines.feature_extraction.nodes"):
        index = index_recordings(ten_group_store, {**SPLITS, "holdout_sites": ["g1", "g[23]"]})
    held = index["group"].isin(["g1", "g2", "g3"])
    assert (index.loc[held, "split"] == "test").all()
    assert set(index.loc[~held, "split"]) == {"train", "validation"}
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Held out")]
    assert lines == ["Held out 3 group(s) matching ['g1', 'g[23]'] as the test split, 9 files: g1, g2, g3"]


def test_a_holdout_pattern_matching_no_group_stops_the_index_naming_it(ten_group_store):
    with pytest.raises(ValueError, match=r"\['site01-\*'\] match no group; groups available: g0, g1"):
        index_recordings(ten_group_store, {**SPLITS, "holdout_sites": ["site01-*"]})
