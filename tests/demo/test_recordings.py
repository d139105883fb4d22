"""The built-in demo recordings: layout, determinism, and the physics the classes rely on."""

from __future__ import annotations

import re
import shutil
from math import gcd
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from scipy import signal, stats

from leak_detection.demo import recordings as demo_recordings
from leak_detection.demo.recordings import DEMO_LABELS, demo_is_complete, generate_demo_recordings

ANALYSIS_RATE = 4096
ANALYSIS_BAND_HZ = (20.0, 2048.0)


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    root = tmp_path_factory.mktemp("small") / "demo"
    manifest = generate_demo_recordings(
        root, n_recordings=40, n_sites=2, sensors_per_site=3, seed=7, min_duration_s=1.0, max_duration_s=3.0
    )
    return root, manifest


@pytest.fixture(scope="module")
def class_spectra(tmp_path_factory) -> pd.DataFrame:
    """Per-recording level, 4096 Hz Welch spectrum and sensor of a ~100-recording generation."""
    root = tmp_path_factory.mktemp("stats") / "demo"
    manifest = generate_demo_recordings(
        root, n_recordings=100, n_sites=3, sensors_per_site=4, seed=11, min_duration_s=1.5, max_duration_s=2.5
    )
    rows = []
    for recording in manifest.itertuples(index=False):
        samples, rate = sf.read(root / recording.path, dtype="float64")
        at_analysis_rate = _resample(samples, rate)
        freqs, power = signal.welch(at_analysis_rate, ANALYSIS_RATE, nperseg=512)
        in_band = (freqs >= ANALYSIS_BAND_HZ[0]) & (freqs <= ANALYSIS_BAND_HZ[1])
        rows.append(
            {
                "label": recording.label,
                "group": recording.group,
                "sensor_kind": recording.sensor_kind,
                "sensor_tilt_db_per_octave": recording.sensor_tilt_db_per_octave,
                "rms_db": 20 * np.log10(np.sqrt(np.mean(samples**2))),
                "band_db": 10 * np.log10(np.sum(power[in_band]) * freqs[1]),
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


def _slope_db_per_octave(freqs: np.ndarray, power: np.ndarray) -> float:
    """Level of 700-1400 Hz over 175-350 Hz, per octave (the two bands are two octaves apart)."""
    high = power[(freqs >= 700) & (freqs <= 1400)].mean()
    low = power[(freqs >= 175) & (freqs <= 350)].mean()
    return 10 * np.log10(high / low) / 2


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
        assert group.startswith(parts[1] + "-")
        # Nothing in the name beyond the sensor and a shuffled number: not its kind, not its class.
        assert re.fullmatch(re.escape(group) + r"-\d{4}\.wav", parts[2])
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
    (copy / "DEMO_VERSION").write_text((root / "DEMO_VERSION").read_text())
    assert not demo_is_complete(copy)


@pytest.mark.parametrize("marker", [None, "1\n", "garbage"])
def test_a_demo_from_another_generator_version_counts_as_incomplete(small_demo, tmp_path, marker):
    root, _ = small_demo
    old = tmp_path / "old"
    shutil.copytree(root, old)
    (old / "DEMO_VERSION").unlink()
    if marker is not None:
        (old / "DEMO_VERSION").write_text(marker)
    # The project hook rebuilds the demo whenever this is false.
    assert not demo_is_complete(old)


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


def test_sensors_span_at_least_25_db_of_gain_and_differ_in_tilt(class_spectra):
    per_sensor_db = class_spectra.groupby("group")["band_db"].median()
    assert per_sensor_db.max() - per_sensor_db.min() >= 25.0
    assert class_spectra.groupby("group")["sensor_kind"].first().nunique() == 3

    # The sensor's own floor is white, so QUIET recordings show the tilt alone (plus the mount).
    quiet = class_spectra[class_spectra["label"] == "QUIET"]
    measured = quiet.apply(lambda row: _slope_db_per_octave(row["freqs"], row["power"]), axis=1)
    assert measured.max() - measured.min() > 4.0
    assert stats.spearmanr(measured, quiet["sensor_tilt_db_per_octave"]).statistic > 0.7
    by_kind = measured.groupby(quiet["sensor_kind"]).median()
    assert by_kind["accelerometer"] > by_kind["hydrophone"] > by_kind["mems_microphone"]


@pytest.mark.parametrize("db_per_octave", [-6.0, -2.5, 0.0, 3.0, 6.0])
@pytest.mark.parametrize("rate", demo_recordings.SENSOR_SAMPLE_RATES)
def test_tilt_filter_is_stable_flat_at_500_hz_and_keeps_its_slope_at_every_rate(db_per_octave, rate):
    sos = demo_recordings._tilt_sos(db_per_octave, rate)
    poles = np.concatenate([np.roots([1.0, *section[4:]]) for section in sos])
    assert np.all(np.abs(poles) < 1.0)
    octaves = np.array([125.0, 250.0, 500.0, 1000.0])
    _, response = signal.sosfreqz(sos, worN=octaves, fs=rate)
    level_db = 20 * np.log10(np.abs(response))
    assert level_db[2] == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(np.diff(level_db), db_per_octave, atol=0.2 * abs(db_per_octave) + 0.05)


@pytest.mark.parametrize("extreme", ["loudest", "quietest"])
def test_at_the_extreme_gains_nothing_reaches_the_limiter_and_nothing_drowns_in_pcm_steps(
    tmp_path, monkeypatch, extreme
):
    # Collapse every random gain onto its top (or bottom) end: the same signals, at the extreme level.
    sign = 1.0 if extreme == "loudest" else -1.0
    end = 1 if extreme == "loudest" else 0
    shift = sign * (demo_recordings.SITE_GAIN_SPAN_DB + demo_recordings.RECORDING_GAIN_SPAN_DB)
    monkeypatch.setattr(demo_recordings, "REFERENCE_LEVEL_DBFS", demo_recordings.REFERENCE_LEVEL_DBFS + shift)
    monkeypatch.setattr(demo_recordings, "SITE_GAIN_SPAN_DB", 0.0)
    monkeypatch.setattr(demo_recordings, "RECORDING_GAIN_SPAN_DB", 0.0)
    kinds = {kind: ((gains[end], gains[end]), tilts) for kind, (gains, tilts) in demo_recordings.SENSOR_KINDS.items()}
    monkeypatch.setattr(demo_recordings, "SENSOR_KINDS", kinds)
    root = tmp_path / "demo"
    manifest = generate_demo_recordings(
        root, n_recordings=30, n_sites=2, sensors_per_site=3, seed=5, min_duration_s=2.0, max_duration_s=4.0
    )
    for path, label, rate in zip(manifest["path"], manifest["label"], manifest["sample_rate"], strict=False):
        samples, _ = sf.read(root / path, dtype="float64")
        if label != "RANDOM":  # knocks are meant to hit the limiter
            assert np.max(np.abs(samples)) < demo_recordings.LIMITER_KNEE, path
        assert 20 * np.log10(demo_recordings._band_rms(samples, rate)) > -85.0, path


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
