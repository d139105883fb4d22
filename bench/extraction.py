"""Feature extraction throughput: the project's nodes against a per-segment numpy loop.

Both read the same generated demo recordings from the page cache, resample them to
4096 Hz, cut long and short segments, compute log-mel columns and write a store;
throughput is audio seconds per wall second. The baseline is what a straightforward
implementation of the front end looks like: one ``numpy.fft.rfft`` per short
segment in a Python loop. Its features are checked against the project's, so the
two are known to compute the same thing.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import h5py
import numpy as np
import soundfile as sf
from scipy.signal import get_window, resample_poly

from bench.settings import BenchSettings
from leak_detection.audio.front_end import FrontEndConfig, count_long_segments, mel_filterbank
from leak_detection.datasets import MelFeatureStoreDataset, RecordingsDataset
from leak_detection.demo.recordings import generate_demo_recordings
from leak_detection.features.store import MelFeatureStore
from leak_detection.pipelines.feature_extraction.nodes import extract_features, label_recordings

PARITY_TOLERANCE_DB = 0.01
"""Largest allowed |project - baseline| in dB, over mel values within PARITY_RANGE_DB of their
segment's loudest band. The project computes in float32, the baseline in float64: a
float32 FFT's rounding error is relative to the whole frame's energy, so bands ~100 dB
below the loudest one (beyond the resampler's anti-aliasing edge) differ by more
without either being wrong. The unrestricted largest difference is reported too."""
PARITY_RANGE_DB = 80.0


def project_extraction(
    recordings_dir: Path, store_path: Path, workers: int | str = "auto"
) -> tuple[MelFeatureStore, float]:
    """The feature_extraction nodes as ``kedro run`` chains them (``extraction.workers`` as
    shipped: ``auto``); returns the store and wall seconds."""
    started = time.perf_counter()
    recordings = RecordingsDataset(path=recordings_dir).load()
    labelled = label_recordings(recordings, {})
    store, rejected = extract_features(
        recordings, labelled, FrontEndConfig().to_dict(), {"strict": False, "workers": workers}
    )
    MelFeatureStoreDataset(filepath=store_path, save_args={"dtype": "float32"}).save(store)
    elapsed = time.perf_counter() - started
    if len(rejected):
        raise RuntimeError(f"the project rejected {len(rejected)} demo recordings: {rejected.to_dict('records')}")
    return store, elapsed


def baseline_file_features(path: Path, config: FrontEndConfig) -> np.ndarray:
    """Read, resample and featurise one file with a Python loop over every short segment."""
    samples, rate = sf.read(path, dtype="float64", always_2d=True)
    signal = samples.mean(axis=1)
    if rate != config.sample_rate:
        g = math.gcd(rate, config.sample_rate)
        signal = resample_poly(signal, config.sample_rate // g, rate // g)
    window = get_window("hann", config.n_fft)
    filterbank = mel_filterbank(config)
    n_long = count_long_segments(len(signal), config)
    features = np.empty((n_long, config.n_short, config.n_mels, 1), dtype=np.float32)
    for i in range(n_long):
        long_segment = signal[i * config.long_hop : i * config.long_hop + config.long_segment]
        for j in range(config.n_short):
            short = long_segment[j * config.short_hop : j * config.short_hop + config.short_segment]
            power = np.abs(np.fft.rfft(short * window)) ** 2
            features[i, j, :, 0] = 10.0 * np.log10(filterbank @ power + config.log_offset)
    return features


def baseline_extraction(paths: list[Path], store_path: Path) -> tuple[list[np.ndarray], float]:
    """Every file through ``baseline_file_features``, then one HDF5 write; returns features and seconds."""
    config = FrontEndConfig()
    started = time.perf_counter()
    features = [baseline_file_features(p, config) for p in paths]
    with h5py.File(store_path, "w") as h5:
        h5.create_dataset("segments_mel", data=np.concatenate(features))
        h5.create_dataset("file_offsets", data=np.cumsum([0] + [len(f) for f in features]))
    return features, time.perf_counter() - started


def parity(project: np.ndarray, baseline: np.ndarray) -> dict:
    """How far apart two feature arrays of one file are, in dB."""
    if project.shape != baseline.shape:
        return {"same_shape": False, "project_shape": project.shape, "baseline_shape": baseline.shape, "ok": False}
    diff = np.abs(project.astype(np.float64) - baseline)
    loud = baseline >= baseline.max(axis=2, keepdims=True) - PARITY_RANGE_DB
    within = float(diff[loud].max())
    return {
        "same_shape": True,
        "max_abs_diff_db": float(diff.max()),
        "max_abs_diff_db_within_range": within,
        "range_db": PARITY_RANGE_DB,
        "tolerance_db": PARITY_TOLERANCE_DB,
        "share_of_values_in_range": float(loud.mean()),
        "ok": within <= PARITY_TOLERANCE_DB,
    }


def measure_extraction(settings: BenchSettings, workdir: Path) -> dict:
    recordings_dir = workdir / "demo_recordings"
    started = time.perf_counter()
    manifest = generate_demo_recordings(
        recordings_dir,
        n_recordings=settings.demo_recordings,
        seed=settings.seed,
        min_duration_s=settings.demo_min_s,
        max_duration_s=settings.demo_max_s,
    )
    generation_s = time.perf_counter() - started
    audio_s = float(manifest["duration_s"].sum())
    # Rounds alternate project and baseline, so that a busy spell on a shared machine
    # hits both; the fastest round of each is the one compared.
    project_runs, baseline_runs = [], []
    for round_ in range(settings.extraction_rounds):
        store, seconds = project_extraction(recordings_dir, workdir / f"extracted_project_{round_}.h5")
        project_runs.append(seconds)
        paths = [recordings_dir / fid for fid in store.file_ids]
        baseline, seconds = baseline_extraction(paths, workdir / f"extracted_baseline_{round_}.h5")
        baseline_runs.append(seconds)
    project_s, baseline_s = min(project_runs), min(baseline_runs)
    # One file that needs resampling (the highest rate), and all files together.
    checked = int(np.argmax(store.sample_rates))
    return {
        "recordings": {
            "files": len(manifest),
            "audio_seconds": audio_s,
            "sample_rates": {str(k): int(v) for k, v in manifest["sample_rate"].value_counts().items()},
            "generation_seconds": generation_s,
        },
        "project": {
            "what": "RecordingsDataset + label_recordings + extract_features + MelFeatureStoreDataset.save",
            "seconds": project_s,
            "seconds_each_round": project_runs,
            "realtime_factor": audio_s / project_s,
            "long_segments": store.n_long_segments,
        },
        "baseline": {
            "what": "soundfile + resample_poly + per-short-segment numpy.fft.rfft loop + h5py write",
            "seconds": baseline_s,
            "seconds_each_round": baseline_runs,
            "realtime_factor": audio_s / baseline_s,
        },
        "speedup_vs_baseline": baseline_s / project_s,
        "parity_one_file": {
            "file": store.file_ids[checked],
            "sample_rate": int(store.sample_rates[checked]),
            **parity(store.file_segments(checked), baseline[checked]),
        },
        "parity_all_files": parity(store.segments_mel, np.concatenate(baseline)),
    }
