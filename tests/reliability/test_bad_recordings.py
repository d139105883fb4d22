"""Every odd or broken recording is either used correctly or rejected with a clear reason."""

import functools
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf

from leak_detection.datasets import RecordingsDataset
from leak_detection.labels import LabelError
from leak_detection.pipelines.feature_extraction.nodes import extract_features, index_recordings, label_recordings

SPLITS = {"ratios": {"train": 0.7, "validation": 0.2, "test": 0.1}, "seed": 0}


def noise(seconds, rate, seed, channels=1, amplitude=0.1):
    rng = np.random.default_rng(seed)
    return (amplitude * rng.normal(size=(int(seconds * rate), channels))).squeeze()


def write_noise(path, rate):
    sf.write(path, noise(2, rate, rate), rate)


@pytest.fixture(scope="module")
def odd_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("odd")
    for label in ("LEAK", "NORMAL", "QUIET"):
        (root / label).mkdir()
    good = root / "LEAK" / "good.wav"
    sf.write(good, noise(2, 8000, 0), 8000)
    cases = {
        "NORMAL/zero bytes.wav": lambda p: p.write_bytes(b""),
        "NORMAL/truncated header.wav": lambda p: p.write_bytes(good.read_bytes()[:30]),
        "NORMAL/random bytes.wav": lambda p: p.write_bytes(np.random.default_rng(1).bytes(4096)),
        "QUIET/nan.wav": lambda p: sf.write(
            p, np.r_[noise(1, 4096, 2), np.nan].astype(np.float32), 4096, subtype="FLOAT"
        ),
        "QUIET/inf.wav": lambda p: sf.write(
            p, np.r_[noise(1, 4096, 3), np.inf].astype(np.float32), 4096, subtype="FLOAT"
        ),
        "QUIET/all zeros.wav": lambda p: sf.write(p, np.zeros(8192), 4096),
        "QUIET/dc only.wav": lambda p: sf.write(p, np.full(8192, 0.25), 4096),
        "QUIET/too short.wav": lambda p: sf.write(p, noise(0.2, 4096, 4), 4096),
        "LEAK/clipped.wav": lambda p: sf.write(p, np.clip(noise(2, 8000, 5, amplitude=3.0), -1, 1), 8000),
        "LEAK/stereo.wav": lambda p: sf.write(p, noise(2, 8000, 6, channels=2), 8000),
        "LEAK/8 bit.wav": lambda p: sf.write(p, noise(2, 8000, 7), 8000, subtype="PCM_U8"),
        "LEAK/24 bit.wav": lambda p: sf.write(p, noise(2, 8000, 8), 8000, subtype="PCM_24"),
        "LEAK/32 float.wav": lambda p: sf.write(p, noise(2, 8000, 9).astype(np.float32), 8000, subtype="FLOAT"),
        "NORMAL/UPPER.WAV": lambda p: sf.write(p, noise(2, 8000, 10), 8000),
        "NORMAL/spaces and ünïcödé ß.wav": lambda p: sf.write(p, noise(2, 8000, 11), 8000),
        **{f"NORMAL/rate {r}.wav": functools.partial(write_noise, rate=r) for r in (8000, 11025, 16000, 44100, 48000)},
        "QUIET/copy of good.wav": lambda p: p.write_bytes(good.read_bytes()),  # same audio, another label
        "LEAK/~stereo copy.wav": lambda p: p.write_bytes((root / "LEAK" / "stereo.wav").read_bytes()),
    }
    for name, make in cases.items():
        make(root / name)
    os.symlink(root / "NORMAL", root / "NORMAL" / "loop")  # a symlink loop
    return root


@pytest.fixture(scope="module")
def outcome(odd_folder):
    recordings = RecordingsDataset(path=odd_folder).load()
    store, rejected = extract_features(recordings, label_recordings(recordings, {}), {}, {"strict": False})
    return store, dict(zip(rejected["file_id"], rejected["reason"], strict=True))


@pytest.mark.parametrize(
    "file_id, reason",
    [
        ("NORMAL/zero bytes.wav", "unreadable"),
        ("NORMAL/truncated header.wav", "unreadable"),
        ("NORMAL/random bytes.wav", "unreadable"),
        ("QUIET/nan.wav", "non-finite samples: 1 NaN or infinite"),
        ("QUIET/inf.wav", "non-finite samples: 1 NaN or infinite"),
        ("QUIET/all zeros.wav", "silent"),
        ("QUIET/dc only.wav", "constant: every sample is 0.25"),
        ("QUIET/too short.wav", "too short: 0.200 s"),
        ("LEAK/~stereo copy.wav", "duplicate: the same audio as LEAK/stereo.wav"),
        ("QUIET/copy of good.wav", "conflict: the same audio as LEAK/good.wav, which is labelled LEAK"),
        ("LEAK/good.wav", "conflict: the same audio as QUIET/copy of good.wav, which is labelled QUIET"),
    ],
)
def test_bad_recordings_are_rejected_with_their_reason(outcome, file_id, reason):
    _, rejected = outcome
    assert rejected[file_id].startswith(reason)


@pytest.mark.parametrize(
    "file_id, seconds, rate",
    [
        ("LEAK/clipped.wav", 2, 8000),
        ("LEAK/stereo.wav", 2, 8000),
        ("LEAK/8 bit.wav", 2, 8000),
        ("LEAK/24 bit.wav", 2, 8000),
        ("LEAK/32 float.wav", 2, 8000),
        ("NORMAL/UPPER.WAV", 2, 8000),
        ("NORMAL/spaces and ünïcödé ß.wav", 2, 8000),
        *[(f"NORMAL/rate {r}.wav", 2, r) for r in (8000, 11025, 16000, 44100, 48000)],
    ],
)
def test_odd_but_valid_recordings_are_used(outcome, file_id, seconds, rate):
    store, rejected = outcome
    assert file_id not in rejected
    i = store.file_ids.index(file_id)
    assert store.sample_rates[i] == rate
    assert store.durations_s[i] == pytest.approx(seconds)
    assert store.long_segments_per_file()[i] == 15  # 2 s at 4096 Hz
    assert np.isfinite(store.file_segments(i)).all()


def test_everything_is_accounted_for_and_the_rest_is_intact(outcome, odd_folder):
    store, rejected = outcome
    on_disk = {
        p.relative_to(odd_folder).as_posix()
        for p in odd_folder.rglob("*")
        if p.is_file() and not p.relative_to(odd_folder).as_posix().startswith("NORMAL/loop")
    }
    assert set(store.file_ids) | set(rejected) == on_disk
    assert not set(store.file_ids) & set(rejected)
    index = index_recordings(store, {**SPLITS, "ratios": {"train": 0.5, "validation": 0.3, "test": 0.2}})
    assert len(index) == store.n_files


def test_a_label_folder_not_in_the_mapping_stops_the_run(odd_folder, tmp_path):
    (tmp_path / "HISS").mkdir()
    sf.write(tmp_path / "HISS" / "a.wav", noise(1, 4096, 0), 4096)
    sf.write(tmp_path / "LEAK.wav", noise(1, 4096, 0), 4096)
    recordings = RecordingsDataset(path=tmp_path).load()
    with pytest.raises(LabelError, match=r"\['HISS'\].*label_mapping"):
        label_recordings(recordings, {"CRACK": "LEAK"})


def test_a_one_hour_recording_is_processed_in_bounded_memory(tmp_path):
    path = tmp_path / "one hour.wav"
    rate = 8000
    with sf.SoundFile(path, "w", samplerate=rate, channels=1, subtype="PCM_16") as f:
        rng = np.random.default_rng(0)
        for _ in range(60):
            f.write(0.1 * rng.normal(size=rate * 60))
    script = textwrap.dedent(f"""
        import resource, json
        import numpy as np
        from leak_detection.datasets import RecordingsDataset
        from leak_detection.audio.front_end import FrontEndConfig, analyse_recording
        from leak_detection.audio.recordings import RecordingCollection
        import pandas as pd
        from pathlib import Path
        config = FrontEndConfig()
        analyse_recording([np.random.default_rng(0).normal(size=20000)], 8000, config)  # warm up imports
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        collection = RecordingCollection(root=Path({str(tmp_path)!r}), table=pd.DataFrame())
        rate, blocks = collection.open_blocks("one hour.wav")
        analysed = analyse_recording(blocks, rate, config)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({{"grew_mb": (after - before) / 1024, "n_long": analysed.features.shape[0],
                           "duration": analysed.duration_s}}))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=300)
    measured = __import__("json").loads(result.stdout.strip().splitlines()[-1])
    assert measured["duration"] == pytest.approx(3600)
    assert measured["n_long"] == 1 + (3600 * 4096 - 1024) // 512
    # Decoding the hour whole would take 115 MB as float32 (230 MB as float64 for the
    # resampler), and the whole 4096 Hz signal 59 MB; streamed, only the features
    # (11 MB) and one block's working set are held (about 55 MB measured).
    assert measured["grew_mb"] < 100, measured
