"""The built-in demo recordings: layout, determinism, and the physics the classes rely on."""

from __future__ import annotations

import re
from math import gcd
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from scipy import signal

from leak_detection import demo_recordings
from leak_detection.demo_recordings import DEMO_LABELS, demo_is_complete, generate_demo_recordings

ANALYSIS_RATE = 4096


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    root = tmp_path_factory.mktemp("small") / "demo"
    manifest = generate_demo_recordings(
        root, n_recordings=40, n_sites=2, sensors_per_site=3, seed=7, min_duration_s=1.0, max_duration_s=3.0
    )
    return root, manifest


@pytest.fixture(scope="module")
def class_spectra(tmp_path_factory) -> pd.DataFrame:
    """Per-recording level and 4096 Hz Welch spectrum of a ~100-recording generation."""
    root = tmp_path_factory.mktemp("stats") / "demo"
    manifest = generate_demo_recordings(
        root, n_recordings=100, n_sites=3, sensors_per_site=4, seed=11, min_duration_s=1.5, max_duration_s=2.5
    )
    rows = []
    for path, label in zip(manifest["path"], manifest["label"], strict=False):
        samples, rate = sf.read(root / path, dtype="float64")
        at_analysis_rate = _resample(samples, rate)
        freqs, power = signal.welch(at_analysis_rate, ANALYSIS_RATE, nperseg=512)
        rows.append(
            {
                "label": label,
                "rms_db": 20 * np.log10(np.sqrt(np.mean(samples**2))),
                "freqs": freqs,
                "power": power,
            }
        )
    return pd.DataFrame(rows)


def _resample(samples: np.ndarray, rate: int) -> np.ndarray:
    common = gcd(rate, ANALYSIS_RATE)
    return signal.resample_poly(samples, ANALYSIS_RATE // common, rate // common)


def _best_threshold_balanced_accuracy(values: np.ndarray, is_class: np.ndarray) -> float:
    best = 0.5
    for threshold in np.unique(values):
        above = values >= threshold
        balanced = 0.5 * (above[is_class].mean() + (~above[~is_class]).mean())
        best = max(best, balanced, 1.0 - balanced)
    return best


def _no_leftover_siblings(target: Path) -> bool:
    return not [p for p in target.parent.iterdir() if p.name.startswith(f".{target.name}.")]


def test_layout_and_manifest(small_demo):
    root, manifest = small_demo
    on_disk = pd.read_csv(root / "manifest.csv", dtype=str)
    assert list(on_disk.columns) == ["path", "label", "group"]
    pd.testing.assert_frame_equal(on_disk, manifest[["path", "label", "group"]].astype(str))

    assert set(manifest["label"]) == set(DEMO_LABELS)
    assert 0.25 <= (manifest["label"] == "LEAK").mean() <= 0.35
    for path, label, group in zip(manifest["path"], manifest["label"], manifest["group"], strict=False):
        parts = path.split("/")
        assert "\\" not in path and len(parts) == 3
        assert (root / path).is_file()
        assert parts[0] == label
        assert re.fullmatch(r"site\d{2}-sensor\d+", group)
        assert group.startswith(parts[1] + "-") and parts[2].startswith(group + "-")
    assert manifest["group"].nunique() == 6
    # A sensor hears several classes over time, so group splits can still be stratified.
    assert manifest.groupby("group")["label"].nunique().min() >= 2


def test_recordings_have_mixed_rates_and_durations_in_range(small_demo):
    root, manifest = small_demo
    infos = [sf.info(root / path) for path in manifest["path"]]
    rates = {info.samplerate for info in infos}
    assert rates <= set(demo_recordings.SENSOR_SAMPLE_RATES) and len(rates) >= 2
    assert all(info.subtype == "PCM_16" and info.channels == 1 for info in infos)
    assert [info.samplerate for info in infos] == manifest["sample_rate"].tolist()
    durations = np.array([info.frames / info.samplerate for info in infos])
    assert np.all((durations >= 1.0) & (durations <= 3.0))
    np.testing.assert_allclose(durations, manifest["duration_s"])
    # Every sensor keeps one rate across its recordings.
    assert manifest.groupby("group")["sample_rate"].nunique().max() == 1


def test_demo_is_complete(small_demo, tmp_path):
    root, manifest = small_demo
    assert demo_is_complete(root)
    assert not demo_is_complete(tmp_path / "missing")
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "manifest.csv").write_text((root / "manifest.csv").read_text())
    assert not demo_is_complete(copy)


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path):
    arguments = dict(n_recordings=8, n_sites=1, sensors_per_site=3, min_duration_s=0.5, max_duration_s=1.0)
    first = generate_demo_recordings(tmp_path / "a", seed=3, **arguments)
    second = generate_demo_recordings(tmp_path / "b", seed=3, **arguments)
    other = generate_demo_recordings(tmp_path / "c", seed=4, **arguments)

    assert first["path"].tolist() == second["path"].tolist()
    for name in first["path"].tolist() + ["manifest.csv"]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    first_audio = [(tmp_path / "a" / p).read_bytes() for p in first["path"]]
    other_audio = [(tmp_path / "c" / p).read_bytes() for p in other["path"]]
    assert not set(first_audio) & set(other_audio)


def test_loudness_alone_does_not_separate_classes(class_spectra):
    rms_db = class_spectra["rms_db"].to_numpy()
    for label in DEMO_LABELS:
        is_class = (class_spectra["label"] == label).to_numpy()
        assert _best_threshold_balanced_accuracy(rms_db, is_class) < 0.8, label


def test_leak_energy_over_background_lies_in_leak_band(class_spectra):
    freqs = class_spectra["freqs"].iloc[0]
    leak_band = (freqs >= 100) & (freqs <= 1600)

    def mean_spectrum_shape(label: str) -> np.ndarray:
        powers = np.stack(class_spectra.loc[class_spectra["label"] == label, "power"].to_list())
        return (powers / powers.sum(axis=1, keepdims=True)).mean(axis=0)

    leak, normal = mean_spectrum_shape("LEAK"), mean_spectrum_shape("NORMAL")
    excess = np.clip(leak - normal, 0.0, None)
    assert excess[leak_band].sum() / excess.sum() > 0.8
    assert leak[leak_band].sum() > normal[leak_band].sum() + 0.3
    # Flow noise stays low: most of NORMAL's power is below the leak band.
    assert normal[freqs < 100].sum() > 0.5


def test_mechanical_recordings_show_tonal_peaks(class_spectra):
    def peak_prominence_db(row) -> float:
        level_db = 10 * np.log10(row["power"] + 1e-20)
        local_median_db = signal.medfilt(level_db, 15)
        audible = (row["freqs"] >= 20) & (row["freqs"] <= 1000)
        return float(np.max((level_db - local_median_db)[audible]))

    prominence = class_spectra.apply(peak_prominence_db, axis=1)
    mechanical = prominence[class_spectra["label"] == "MECHANICAL"]
    broadband = prominence[class_spectra["label"].isin(["LEAK", "NORMAL"])]
    assert mechanical.min() > 6.0
    assert mechanical.median() > broadband.median() + 8.0


def test_existing_target_is_kept_unless_overwrite(tmp_path):
    arguments = dict(n_recordings=5, n_sites=1, sensors_per_site=2, min_duration_s=0.5, max_duration_s=0.6)
    target = tmp_path / "demo"
    target.mkdir()
    (target / "precious.txt").write_text("mine")

    with pytest.raises(FileExistsError):
        generate_demo_recordings(target, **arguments)
    assert (target / "precious.txt").read_text() == "mine"
    assert _no_leftover_siblings(target)

    manifest = generate_demo_recordings(target, overwrite=True, **arguments)
    assert not (target / "precious.txt").exists()
    assert demo_is_complete(target) and len(manifest) == 5
    assert _no_leftover_siblings(target)


def test_failed_generation_leaves_existing_target_untouched(tmp_path, monkeypatch):
    target = tmp_path / "demo"
    target.mkdir()
    (target / "precious.txt").write_text("mine")
    synthesise = demo_recordings._synthesise
    calls = []

    def failing_after_two(*args, **kwargs):
        calls.append(1)
        if len(calls) > 2:
            raise RuntimeError("disk full")
        return synthesise(*args, **kwargs)

    monkeypatch.setattr(demo_recordings, "_synthesise", failing_after_two)
    with pytest.raises(RuntimeError, match="disk full"):
        generate_demo_recordings(
            target,
            n_recordings=5,
            n_sites=1,
            sensors_per_site=2,
            min_duration_s=0.5,
            max_duration_s=0.6,
            overwrite=True,
        )
    assert sorted(p.name for p in target.iterdir()) == ["precious.txt"]
    assert _no_leftover_siblings(target)


@pytest.mark.parametrize(
    "arguments",
    [
        dict(n_recordings=4),
        dict(n_sites=0),
        dict(min_duration_s=3.0, max_duration_s=2.0),
        dict(min_duration_s=0.1, max_duration_s=1.0),
    ],
)
def test_invalid_arguments_are_refused(tmp_path, arguments):
    with pytest.raises(ValueError):
        generate_demo_recordings(tmp_path / "demo", **arguments)
    assert not (tmp_path / "demo").exists()
