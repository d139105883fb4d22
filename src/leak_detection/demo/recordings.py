"""Deterministic synthetic pipe recordings: the project's built-in demo data.

The main job has to run right after install with nothing to download, so this module
synthesises a small field campaign instead: several sites, each with its own mount
response, pipe and gain, and several sensors per site, each with a fixed sample rate.
Every sensor records several of the five classes over time, and a manifest names the
sensor of every recording as its group so that no sensor is split across train and test.

Field sensors differ far more than sites do, and a model trained on one kind finds
nothing with another: a demo-trained model once missed 15 of 15 real leaks whose
mid-band sat 15-30 dB below the demo's. So every sensor is one of three kinds, dealt
over the sensors, with its own gain and spectral tilt (dB per octave about 500 Hz,
applied from 62.5 Hz to 2 kHz):

- hydrophone: in the water, quiet (gain -20..-10 dB), nearly flat (-2..+1 dB/octave);
- accelerometer: on the wall (-6..+4 dB), rising (+2..+6 dB/octave), since wall
  acceleration grows with frequency at a given velocity;
- MEMS microphone: preamplified, loud (+2..+12 dB), falling (-6..-1 dB/octave), since
  the capsule hears the wall through its housing and air gap.

The kinds cover 32 dB of gain (the default demo's 48 sensors span 29 dB). The kind is
kept out of everything a model reads: file names and ``manifest.csv`` name only the
site and the sensor number.

The sounds follow the physics that leak detectors rely on, without pretending to be a
field data set:

- LEAK: turbulent hiss from the orifice, coloured by the pipe: fluid-borne waves travel
  at the Korteweg speed of the water-filled pipe (about 1200 m/s in metal, 300-450 m/s in
  plastic), fittings a few metres apart make resonances every ``c / 2L`` hertz, and
  viscoelastic plastic walls damp high frequencies strongly. Mixed into normal flow or a
  quiet floor at -6..+18 dB SNR.
- NORMAL: flow turbulence, pink to brown and low-passed at 150-300 Hz.
- QUIET: the sensor's own electronic floor.
- RANDOM: knocks, short broadband bursts and traffic rumble at random times.
- MECHANICAL: a pump or motor: shaft rate 25-120 Hz with harmonics, blade-pass tone,
  slight speed wobble, sometimes cycling on and off.

Every recording then gets a random gain independent of its class, on top of its sensor's
and site's, so a detector has to learn spectra, not loudness.

A ``DEMO_VERSION`` file marks the generator that wrote a folder; ``demo_is_complete``
refuses a folder from another version so that an old demo is rebuilt.

Examples:
    >>> from leak_detection.demo.recordings import demo_is_complete, generate_demo_recordings
    >>> manifest = generate_demo_recordings("data/01_raw/demo")  # doctest: +SKIP
    >>> demo_is_complete("data/01_raw/demo")  # doctest: +SKIP
    True
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from scipy import fft as sp_fft
from scipy import signal

from leak_detection.labels import CLASS_NAMES
from leak_detection.runs.progress import progress

logger = logging.getLogger(__name__)

DEMO_LABELS = CLASS_NAMES
SENSOR_SAMPLE_RATES = (4096, 8000, 16000)
MANIFEST_NAME = "manifest.csv"
MANIFEST_COLUMNS = ["path", "label", "group"]
VERSION_FILE_NAME = "DEMO_VERSION"
# Raise whenever the same arguments would give different files, so old demos get rebuilt.
DEMO_FORMAT_VERSION = 2

LEAK_SHARE = 0.30
# Level of every recording is set on the band the analysis front end keeps (4096 Hz
# resampling), so a 16 kHz sensor's out-of-band floor does not make its files quieter.
ANALYSIS_BAND_HZ = (20.0, 2048.0)
# At most +24 dB of site, sensor and recording gain gives -20 dBFS in the band: the
# peaks of every non-RANDOM demo recording, out-of-band floor and infrasonic flow noise
# included, then stay below the limiter knee (measured: 0.3 dB to spare). The quietest
# QUIET recording can sit at -80 dBFS, still a few PCM16 steps above zero.
REFERENCE_LEVEL_DBFS = -44.0
SITE_GAIN_SPAN_DB = 3.0
RECORDING_GAIN_SPAN_DB = 9.0
# (gain dB range, tilt dB/octave range) per kind; see the module docstring for why.
SENSOR_KINDS = {
    "hydrophone": ((-20.0, -10.0), (-2.0, 1.0)),
    "accelerometer": ((-6.0, 4.0), (2.0, 6.0)),
    "mems_microphone": ((2.0, 12.0), (-6.0, -1.0)),
}
TILT_PIVOT_HZ = 500.0
# Outside this band the tilt levels off, so no sensor boosts DC or the anti-aliasing edge.
TILT_BAND_HZ = (62.5, 2000.0)
# Field QUIET recordings are somewhat softer on average; the offset is kept far inside
# the gain span so the level distributions of all classes still overlap.
CLASS_LEVEL_OFFSET_DB = {"QUIET": -4.0}
LIMITER_KNEE = 0.7

# Korteweg wave speed of water in a pipe: c = c0 / sqrt(1 + (K / E) * (D / e)).
WATER_BULK_MODULUS_PA = 2.2e9
WATER_SOUND_SPEED_M_S = 1483.0

_STREAM_LAYOUT = 1
_STREAM_PLAN = 2
_STREAM_RECORDING = 3


@dataclass(frozen=True)
class _Site:
    name: str
    pipe_material: str
    pipe_diameter_mm: float
    wave_speed_m_s: float
    gain_db: float
    mains_hz: float
    has_hum: bool
    response: dict[str, float]
    _response_sos: dict[int, np.ndarray] = field(default_factory=dict, compare=False, repr=False)

    def response_sos(self, sample_rate: int) -> np.ndarray:
        """The sensor response of this site as second-order sections at ``sample_rate``."""
        if sample_rate not in self._response_sos:
            self._response_sos[sample_rate] = _sensor_response_sos(self.response, sample_rate)
        return self._response_sos[sample_rate]


@dataclass(frozen=True)
class _Sensor:
    site: _Site
    number: int
    sample_rate: int
    kind: str
    gain_db: float
    tilt_db_per_octave: float
    _response_sos: list[np.ndarray] = field(default_factory=list, compare=False, repr=False)

    @property
    def group(self) -> str:
        return f"{self.site.name}-sensor{self.number}"

    def response_sos(self) -> np.ndarray:
        """The site's mount response and this sensor's tilt, at the sensor's rate."""
        if not self._response_sos:
            tilt = _tilt_sos(self.tilt_db_per_octave, self.sample_rate)
            self._response_sos.append(np.vstack([self.site.response_sos(self.sample_rate), tilt]))
        return self._response_sos[0]


@dataclass(frozen=True)
class _PlannedRecording:
    index: int
    label: str
    sensor: _Sensor


def generate_demo_recordings(
    target_dir: str | os.PathLike,
    *,
    n_recordings: int = 360,
    n_sites: int = 6,
    sensors_per_site: int = 8,
    seed: int = 20251125,
    min_duration_s: float = 5.0,
    max_duration_s: float = 30.0,
    overwrite: bool = False,
) -> pd.DataFrame:
    """Write a synthetic, labelled recordings folder and return its manifest.

    Layout: ``<target_dir>/<LABEL>/<site>/<site>-sensor<K>-<NNNN>.wav`` (PCM_16 WAV) and
    ``<target_dir>/manifest.csv`` with columns ``path,label,group`` (path relative to
    ``target_dir``, group = the sensor), and ``<target_dir>/DEMO_VERSION``. The folder
    is built next to ``target_dir`` and renamed into place, so a crash never leaves a
    half-written demo behind.

    Args:
        target_dir: folder to create.
        n_recordings: number of recordings; about 30% LEAK, the rest split evenly.
        n_sites: sites, each with its own mount response, pipe and gain.
        sensors_per_site: sensors per site; each is one group, with its own kind, gain and tilt.
        seed: the same arguments give byte-identical files.
        min_duration_s: shortest recording.
        max_duration_s: longest recording; durations lean towards the short end.
        overwrite: replace an existing ``target_dir`` once the new one is complete.

    Returns:
        The manifest, one row per recording in file order, with extra columns
        ``site``, ``sample_rate``, ``duration_s``, ``background``, ``snr_db`` (leak to
        background power in the analysis band before the sensor response; NaN for
        non-leaks), ``pipe_material``, ``pipe_diameter_mm``, ``sensor_kind``,
        ``sensor_gain_db`` and ``sensor_tilt_db_per_octave``; none of these is written
        to disk, so a model cannot learn them.

    Raises:
        FileExistsError: ``target_dir`` exists and ``overwrite`` is false.
        ValueError: invalid counts or durations.
    """
    _check_arguments(n_recordings, n_sites, sensors_per_site, min_duration_s, max_duration_s)
    target = Path(target_dir)
    if target.exists() and not overwrite:
        raise FileExistsError(f"demo recordings folder {target} already exists; pass overwrite=True to replace it")

    started = time.perf_counter()
    sensors = _lay_out_sensors(seed, n_sites, sensors_per_site)
    plan = _plan_recordings(seed, n_recordings, sensors)
    class_counts = pd.Series([p.label for p in plan]).value_counts().reindex(DEMO_LABELS, fill_value=0)
    logger.info(
        "Generating %d demo recordings (%s) from %d sensors at %d sites into %s",
        n_recordings,
        ", ".join(f"{label} {count}" for label, count in class_counts.items()),
        len(sensors),
        n_sites,
        target,
    )

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        manifest = _write_demo_folder(staging, plan, seed, min_duration_s, max_duration_s)
        size_bytes = sum(f.stat().st_size for f in staging.rglob("*") if f.is_file())
        _move_into_place(staging, target, overwrite)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise

    logger.info(
        "Wrote %d demo recordings to %s: %.0f s of audio, %.1f MB, in %.1f s",
        len(manifest),
        target,
        manifest["duration_s"].sum(),
        size_bytes / 1e6,
        time.perf_counter() - started,
    )
    return manifest


def _write_demo_folder(
    staging: Path, plan: list[_PlannedRecording], seed: int, min_duration_s: float, max_duration_s: float
) -> pd.DataFrame:
    """Every planned recording, the manifest and the version marker, written into ``staging``."""
    # mkdtemp makes the folder private (0700); the demo is ordinary project data.
    staging.chmod(0o755)
    width = max(4, len(str(len(plan) - 1)))
    rows = [
        _write_recording(staging, planned, seed, width, min_duration_s, max_duration_s)
        for planned in progress(plan, desc="demo recordings", unit="rec")
    ]
    manifest = pd.DataFrame(rows)
    manifest[MANIFEST_COLUMNS].to_csv(staging / MANIFEST_NAME, index=False, lineterminator="\n")
    (staging / VERSION_FILE_NAME).write_text(f"{DEMO_FORMAT_VERSION}\n")
    return manifest


def demo_is_complete(target_dir: str | os.PathLike) -> bool:
    """True when ``target_dir`` was written by this generator version, and its
    ``manifest.csv`` lists at least one file and all of them exist."""
    root = Path(target_dir)
    try:
        if (root / VERSION_FILE_NAME).read_text().strip() != str(DEMO_FORMAT_VERSION):
            return False
        manifest = pd.read_csv(root / MANIFEST_NAME, dtype=str, keep_default_na=False)
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError):
        return False
    if not set(MANIFEST_COLUMNS).issubset(manifest.columns) or manifest.empty:
        return False
    return all((root / path).is_file() for path in manifest["path"])


def _check_arguments(
    n_recordings: int, n_sites: int, sensors_per_site: int, min_duration_s: float, max_duration_s: float
) -> None:
    if n_recordings < len(DEMO_LABELS):
        raise ValueError(f"n_recordings must be at least {len(DEMO_LABELS)} (one per class), got {n_recordings}")
    if n_sites < 1 or sensors_per_site < 1:
        raise ValueError(f"n_sites and sensors_per_site must be positive, got {n_sites} and {sensors_per_site}")
    # The front end needs at least one long segment (0.25 s at 4096 Hz).
    if not 0.25 <= min_duration_s <= max_duration_s:
        raise ValueError(f"need 0.25 <= min_duration_s <= max_duration_s, got {min_duration_s} and {max_duration_s}")


def _move_into_place(staging: Path, target: Path, overwrite: bool) -> None:
    if not target.exists():
        staging.rename(target)
        return
    if not overwrite:
        raise FileExistsError(f"demo recordings folder {target} appeared while generating; left untouched")
    # A non-empty folder cannot be replaced in one rename: move the old one aside first
    # and put it back if the new one cannot take its place.
    retired = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    target.rename(retired)
    try:
        staging.rename(target)
    except BaseException:
        retired.rename(target)
        raise
    if retired.is_dir() and not retired.is_symlink():
        shutil.rmtree(retired)
    else:
        retired.unlink()


def _lay_out_sensors(seed: int, n_sites: int, sensors_per_site: int) -> list[_Sensor]:
    rng = np.random.default_rng((seed, _STREAM_LAYOUT))
    width = max(2, len(str(n_sites)))
    # Alternating materials guarantee both pipe types as soon as there are two sites.
    first_material = int(rng.integers(2))
    sites = [
        _draw_site(rng, f"site{i + 1:0{width}d}", ("metal", "plastic")[(i + first_material) % 2])
        for i in range(n_sites)
    ]
    # Rates are dealt rather than drawn: any two sensors already have two rates to resample.
    n_sensors = n_sites * sensors_per_site
    rates = rng.permutation([SENSOR_SAMPLE_RATES[i % len(SENSOR_SAMPLE_RATES)] for i in range(n_sensors)])
    # Kinds are dealt too, so that even a small demo mixes quiet and loud, rising and falling sensors.
    kind_names = list(SENSOR_KINDS)
    kinds = rng.permutation([kind_names[i % len(kind_names)] for i in range(n_sensors)])
    sensors = []
    for s, site in enumerate(sites):
        for k in range(sensors_per_site):
            kind = str(kinds[s * sensors_per_site + k])
            gain_range, tilt_range = SENSOR_KINDS[kind]
            sensors.append(
                _Sensor(
                    site=site,
                    number=k + 1,
                    sample_rate=int(rates[s * sensors_per_site + k]),
                    kind=kind,
                    gain_db=float(rng.uniform(*gain_range)),
                    tilt_db_per_octave=float(rng.uniform(*tilt_range)),
                )
            )
    return sensors


def _draw_site(rng: np.random.Generator, name: str, material: str) -> _Site:
    diameter_mm = float(rng.uniform(80.0, 400.0))
    if material == "metal":  # ductile / cast iron, steel
        youngs_modulus_pa, diameter_to_wall = rng.uniform(100e9, 200e9), rng.uniform(15.0, 45.0)
    else:  # PE (soft) to PVC (stiffer)
        youngs_modulus_pa, diameter_to_wall = rng.uniform(0.9e9, 3.3e9), rng.uniform(11.0, 26.0)
    wave_speed = WATER_SOUND_SPEED_M_S / np.sqrt(1.0 + WATER_BULK_MODULUS_PA / youngs_modulus_pa * diameter_to_wall)
    response = {
        # AC coupling and the magnet mount remove the lowest frequencies.
        "highpass_hz": rng.uniform(5.0, 20.0),
        "peak1_hz": np.exp(rng.uniform(np.log(150.0), np.log(700.0))),
        "peak1_db": rng.uniform(3.0, 12.0),
        "peak1_q": rng.uniform(1.5, 6.0),
        "peak2_hz": np.exp(rng.uniform(np.log(700.0), np.log(1800.0))),
        "peak2_db": rng.uniform(3.0, 12.0),
        "peak2_q": rng.uniform(1.5, 6.0),
        "tilt_hz": rng.uniform(400.0, 1200.0),
        "tilt_db": rng.uniform(-6.0, 6.0),
        "bandwidth_hz": rng.uniform(2400.0, 3500.0),
    }
    return _Site(
        name=name,
        pipe_material=material,
        pipe_diameter_mm=diameter_mm,
        wave_speed_m_s=float(wave_speed),
        gain_db=float(rng.uniform(-SITE_GAIN_SPAN_DB, SITE_GAIN_SPAN_DB)),
        mains_hz=float(rng.choice([50.0, 60.0])),
        has_hum=bool(rng.random() < 0.5),
        response={k: float(v) for k, v in response.items()},
    )


def _plan_recordings(seed: int, n_recordings: int, sensors: list[_Sensor]) -> list[_PlannedRecording]:
    rng = np.random.default_rng((seed, _STREAM_PLAN))
    n_leak = round(LEAK_SHARE * n_recordings)
    n_each, n_extra = divmod(n_recordings - n_leak, len(DEMO_LABELS) - 1)
    counts = [n_leak] + [n_each + (i < n_extra) for i in range(len(DEMO_LABELS) - 1)]
    labels_by_class = [label for label, count in zip(DEMO_LABELS, counts, strict=False) for _ in range(count)]
    # Dealing the class-sorted list round-robin gives every sensor a share of each class,
    # so every group holds several classes and group splits stay stratifiable.
    sensor_order = rng.permutation(len(sensors))
    dealt = [(label, sensors[sensor_order[j % len(sensors)]]) for j, label in enumerate(labels_by_class)]
    # File numbers are shuffled so that neither the number nor the order gives the class away.
    file_numbers = rng.permutation(n_recordings)
    plan = [_PlannedRecording(int(file_numbers[j]), label, sensor) for j, (label, sensor) in enumerate(dealt)]
    return sorted(plan, key=lambda p: p.index)


def _write_recording(
    root: Path, planned: _PlannedRecording, seed: int, width: int, min_duration_s: float, max_duration_s: float
) -> dict:
    rng = np.random.default_rng((seed, _STREAM_RECORDING, planned.index))
    sensor = planned.sensor
    samples, details = _synthesise(rng, planned.label, sensor, min_duration_s, max_duration_s)
    relative = Path(planned.label, sensor.site.name, f"{sensor.group}-{planned.index:0{width}d}.wav")
    (root / relative).parent.mkdir(parents=True, exist_ok=True)
    sf.write(root / relative, samples, sensor.sample_rate, subtype="PCM_16", format="WAV")
    return {
        "path": relative.as_posix(),
        "label": planned.label,
        "group": sensor.group,
        "site": sensor.site.name,
        "sample_rate": sensor.sample_rate,
        "duration_s": len(samples) / sensor.sample_rate,
        "background": details.get("background", ""),
        "snr_db": details.get("snr_db", np.nan),
        "pipe_material": sensor.site.pipe_material,
        "pipe_diameter_mm": round(sensor.site.pipe_diameter_mm, 1),
        "sensor_kind": sensor.kind,
        "sensor_gain_db": round(sensor.gain_db, 2),
        "sensor_tilt_db_per_octave": round(sensor.tilt_db_per_octave, 2),
    }


def _synthesise(
    rng: np.random.Generator, label: str, sensor: _Sensor, min_duration_s: float, max_duration_s: float
) -> tuple[np.ndarray, dict]:
    """One recording as int16 samples at the sensor's rate, and what went into it."""
    fs = sensor.sample_rate
    site = sensor.site
    # u**3 leans towards short recordings: mean min + (max - min) / 4, about 11 s by default.
    duration_s = min_duration_s + (max_duration_s - min_duration_s) * rng.random() ** 3
    n = int(np.clip(round(duration_s * fs), np.ceil(min_duration_s * fs), np.floor(max_duration_s * fs)))
    freqs = sp_fft.rfftfreq(_even_fast_length(n), 1.0 / fs)

    # Everything is mixed in units of the sensor floor (band RMS 1).
    floor = _sensor_floor(rng, n, fs, freqs)
    if site.has_hum and rng.random() < 0.6:
        floor = floor + _mains_hum(rng, n, fs, site.mains_hz)
    details: dict = {}
    if label == "QUIET":
        mix = floor
    elif label == "NORMAL":
        mix = floor + _db(rng.uniform(20.0, 40.0)) * _flow_noise(rng, n, fs, freqs)
    elif label == "LEAK":
        background_kind = "normal" if rng.random() < 0.6 else "quiet"
        background = floor
        if background_kind == "normal":
            background = floor + _db(rng.uniform(15.0, 40.0)) * _flow_noise(rng, n, fs, freqs)
        snr_db = float(rng.uniform(-6.0, 18.0))
        leak = _leak_noise(rng, n, fs, freqs, site)
        mix = background + _db(snr_db) * _band_rms(background, fs) * leak
        details = {"background": background_kind, "snr_db": round(snr_db, 2)}
    elif label == "RANDOM":
        background = floor
        if rng.random() < 0.5:
            background = floor + _db(rng.uniform(10.0, 35.0)) * _flow_noise(rng, n, fs, freqs)
        mix = background + _band_rms(background, fs) * _transient_events(rng, n, fs)
    elif label == "MECHANICAL":
        # A running pump moves water, so flow noise comes with it.
        background = floor + _db(rng.uniform(10.0, 30.0)) * _flow_noise(rng, n, fs, freqs)
        mix = background + _db(rng.uniform(6.0, 25.0)) * _band_rms(background, fs) * _machine_tones(
            rng, n, fs, site.mains_hz
        )
    else:
        raise ValueError(f"unknown demo label {label!r}")

    recorded = _through_sensor(sensor.response_sos(), mix, fs)
    level_dbfs = (
        REFERENCE_LEVEL_DBFS
        + site.gain_db
        + sensor.gain_db
        + CLASS_LEVEL_OFFSET_DB.get(label, 0.0)
        + rng.uniform(-RECORDING_GAIN_SPAN_DB, RECORDING_GAIN_SPAN_DB)
    )
    recorded *= _db(level_dbfs) / _band_rms(recorded, fs)
    return _to_pcm16(_soft_limit(recorded)), details


def _through_sensor(sos: np.ndarray, mix: np.ndarray, fs: int) -> np.ndarray:
    """``mix`` as the sensor records it, its filters settled as if it had been running."""
    # Starting the filters from rest on the first sample clicks: flow noise wanders far
    # below the high-pass, and a steep tilt turns that step into a spike 20 dB over the
    # RMS. A mirrored lead-in of 0.25 s (five time constants of the slowest high-pass)
    # keeps the level continuous while the filters settle.
    lead = min(len(mix) - 1, int(0.25 * fs))
    padded = np.concatenate([mix[lead:0:-1], mix])
    recorded, _ = signal.sosfilt(sos, padded, zi=signal.sosfilt_zi(sos) * padded[0])
    return recorded[lead:]


def _sensor_floor(rng: np.random.Generator, n: int, fs: int, freqs: np.ndarray) -> np.ndarray:
    # Preamplifier noise: white, rising as 1/f in power below a corner of a few tens of hertz.
    corner_hz = rng.uniform(5.0, 40.0)
    return _shaped_noise(rng, n, fs, freqs, np.sqrt(1.0 + corner_hz / np.maximum(freqs, 1.0)))


def _mains_hum(rng: np.random.Generator, n: int, fs: int, mains_hz: float) -> np.ndarray:
    # Pickup from nearby power cables: a stable line frequency with a few harmonics,
    # faint against the floor in total but standing out in single spectral bins.
    t = np.arange(n) / fs
    line_hz = mains_hz + rng.uniform(-0.05, 0.05)
    hum = np.zeros(n)
    for harmonic, weight in zip((1, 2, 3, 5), (1.0, 0.3, 0.5, 0.2), strict=False):
        if harmonic * line_hz < 0.45 * fs:
            phase = rng.uniform(0, 2 * np.pi)
            hum += weight * rng.uniform(0.5, 1.0) * np.sin(2 * np.pi * harmonic * line_hz * t + phase)
    return _db(rng.uniform(-12.0, 0.0)) * hum / _band_rms(hum, fs)


def _flow_noise(rng: np.random.Generator, n: int, fs: int, freqs: np.ndarray) -> np.ndarray:
    """Turbulent flow noise: pink to brown, flat below a knee, low-passed at 150-300 Hz."""
    slope = rng.uniform(1.0, 2.0)  # power ~ 1/f**slope: pink (1) to brown (2)
    knee_hz = rng.uniform(8.0, 20.0)
    amplitude = (knee_hz / np.maximum(freqs, knee_hz)) ** (slope / 2) * _lowpass_gain(
        freqs, rng.uniform(150.0, 300.0), int(rng.integers(2, 5))
    )
    flow = _shaped_noise(rng, n, fs, freqs, amplitude)
    # Demand changes the flow, and with it the noise level, over seconds.
    return flow * _slow_modulation(rng, n, fs, depth=rng.uniform(0.0, 0.2))


def _leak_noise(rng: np.random.Generator, n: int, fs: int, freqs: np.ndarray, site: _Site) -> np.ndarray:
    """Leak hiss as the sensor's pipe carries it, band RMS 1."""
    # The jet's turbulence is small-scale and fast: little of its energy lies below ~100 Hz.
    source_highpass_hz = rng.uniform(100.0, 180.0)
    # Larger pipes carry lower frequencies further.
    diameter_factor = (150.0 / site.pipe_diameter_mm) ** 0.2
    if site.pipe_material == "metal":
        wall_cutoff_hz, wall_order = rng.uniform(1100.0, 1600.0) * diameter_factor, 3
        mode_gain_db, mode_q = (6.0, 12.0), (6.0, 15.0)
    else:
        # Viscoelastic plastic walls absorb the high frequencies within a few metres.
        wall_cutoff_hz, wall_order = rng.uniform(350.0, 700.0) * diameter_factor, 5
        mode_gain_db, mode_q = (2.0, 5.0), (2.0, 4.0)
    amplitude = _highpass_gain(freqs, source_highpass_hz, 2) * _lowpass_gain(freqs, wall_cutoff_hz, wall_order)

    # Fittings, valves and joints reflect fluid-borne waves: modes every c / 2L.
    reflector_spacing_m = rng.uniform(1.5, 8.0)
    mode_spacing_hz = site.wave_speed_m_s / (2.0 * reflector_spacing_m)
    mode_hz = mode_spacing_hz * np.arange(1, 64)
    mode_hz = mode_hz[(mode_hz >= source_highpass_hz) & (mode_hz <= min(1.3 * wall_cutoff_hz, 0.45 * fs))][:24]
    resonance = np.ones_like(freqs)
    for f_mode in mode_hz:
        excess = _db(rng.uniform(*mode_gain_db)) - 1.0
        half_bandwidth = f_mode / (2.0 * rng.uniform(*mode_q))
        resonance += excess / (1.0 + ((freqs - f_mode) / half_bandwidth) ** 2)
    leak = _shaped_noise(rng, n, fs, freqs, amplitude * resonance)
    # Network pressure swings slowly, and the leak flow with it.
    leak = leak * _slow_modulation(rng, n, fs, depth=rng.uniform(0.0, 0.3))
    return leak / _band_rms(leak, fs)


def _transient_events(rng: np.random.Generator, n: int, fs: int) -> np.ndarray:
    """Knocks, bursts and traffic swells, levels relative to a background of band RMS 1."""
    duration_s = n / fs
    n_events = max(1, int(rng.poisson(rng.uniform(0.2, 1.0) * duration_s)))
    events = np.zeros(n)
    for _ in range(n_events):
        start = int(rng.integers(n))
        kind = rng.choice(["knock", "burst", "traffic"], p=[0.45, 0.35, 0.2])
        if kind == "knock":
            waveform = _knock(rng, fs)
            # A knock is heard by its peak: set it 12-30 dB over the background RMS.
            waveform *= _db(rng.uniform(12.0, 30.0)) / np.max(np.abs(waveform))
        elif kind == "burst":
            waveform = _burst(rng, fs)
            waveform *= _db(rng.uniform(6.0, 20.0)) / _rms(waveform)
        else:
            waveform, centre = _traffic_swell(rng, fs)
            start = max(0, start - centre)
            # The envelope peaks at 1, so this is the level at the top of the swell.
            waveform *= _db(rng.uniform(6.0, 20.0))
        stop = min(n, start + len(waveform))
        events[start:stop] += waveform[: stop - start]
    return events


def _knock(rng: np.random.Generator, fs: int) -> np.ndarray:
    # An impact rings a few structural modes of the pipe and fittings, then dies away.
    decay_s = rng.uniform(0.002, 0.025)
    t = np.arange(int(6 * decay_s * fs) + 1) / fs
    waveform = np.zeros_like(t)
    for _ in range(int(rng.integers(1, 4))):
        f_mode = rng.uniform(150.0, min(2500.0, 0.4 * fs))
        waveform += rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * f_mode * t + rng.uniform(0, 2 * np.pi))
    waveform *= np.exp(-t / decay_s)
    contact = min(len(t), max(1, int(0.001 * fs)))
    waveform[:contact] += rng.standard_normal(contact)
    return waveform


def _burst(rng: np.random.Generator, fs: int) -> np.ndarray:
    # Footsteps on a chamber lid, tools, voices: short and broadband, sharp onset.
    length = max(8, int(rng.uniform(0.05, 0.6) * fs))
    low_hz = rng.uniform(50.0, 400.0)
    high_hz = min(rng.uniform(800.0, 3000.0), 0.45 * fs)
    sos = signal.butter(2, [low_hz, high_hz], btype="bandpass", fs=fs, output="sos")
    waveform = signal.sosfilt(sos, rng.standard_normal(length))
    t = np.arange(length) / fs
    attack_s = rng.uniform(0.005, 0.03)
    envelope = (1.0 - np.exp(-t / attack_s)) * np.exp(-t / (0.3 * length / fs))
    return waveform * envelope


def _traffic_swell(rng: np.random.Generator, fs: int) -> tuple[np.ndarray, int]:
    # A passing vehicle shakes the ground: low rumble that swells and fades over seconds.
    width_s = rng.uniform(0.5, 2.0)
    length = int(6 * width_s * fs)
    freqs = sp_fft.rfftfreq(_even_fast_length(length), 1.0 / fs)
    cutoff_hz = rng.uniform(40.0, 150.0)
    amplitude = (10.0 / np.maximum(freqs, 10.0)) ** 0.5 * _lowpass_gain(freqs, cutoff_hz, 3)
    rumble = _shaped_noise(rng, length, fs, freqs, amplitude)
    t = np.arange(length) / fs - 3 * width_s
    return rumble * np.exp(-0.5 * (t / width_s) ** 2), length // 2


def _machine_tones(rng: np.random.Generator, n: int, fs: int, mains_hz: float) -> np.ndarray:
    """Pump or motor tones, band RMS 1."""
    t = np.arange(n) / fs
    shaft_hz = rng.uniform(25.0, 120.0)
    # Load changes make the speed wander by a fraction of a percent.
    wobble = sum(
        rng.uniform(0.0, 0.004) * np.sin(2 * np.pi * rng.uniform(0.05, 0.5) * t + rng.uniform(0, 2 * np.pi))
        for _ in range(3)
    )
    envelope = _duty_cycle(rng, n, fs) if rng.random() < 0.35 else np.ones(n)
    # Spinning up and down sweeps the speed along with the level.
    instantaneous_hz = shaft_hz * (1.0 + wobble) * (0.7 + 0.3 * envelope)
    phase = 2 * np.pi * np.cumsum(instantaneous_hz) / fs
    n_blades = int(rng.integers(3, 8))
    rolloff = rng.uniform(0.7, 1.7)
    tones = np.zeros(n)
    for harmonic in range(1, 41):
        if harmonic * shaft_hz * 1.02 >= min(1500.0, 0.45 * fs):
            break
        weight = harmonic**-rolloff * rng.lognormal(0.0, 0.5)
        if harmonic == n_blades:
            weight *= 3.0  # blade-pass: every impeller vane pushes a pressure pulse
        tones += weight * np.sin(harmonic * phase + rng.uniform(0, 2 * np.pi))
    if rng.random() < 0.5:
        # Magnetostriction makes electric motors hum at twice the line frequency.
        tones += rng.uniform(0.2, 0.8) * np.sin(2 * np.pi * 2 * mains_hz * t + rng.uniform(0, 2 * np.pi))
    # Bearings and cavitation add a little broadband noise.
    tones += rng.uniform(0.05, 0.2) * rng.standard_normal(n)
    tones *= envelope
    return tones / _band_rms(tones, fs)


def _duty_cycle(rng: np.random.Generator, n: int, fs: int) -> np.ndarray:
    period_s = rng.uniform(4.0, 15.0)
    duty = rng.uniform(0.5, 0.85)
    ramp_s = rng.uniform(0.3, 1.0)
    # Start inside a running phase: a recording that never hears the machine is not MECHANICAL.
    t = np.arange(n) / fs + rng.uniform(0.0, duty * period_s)
    # Rising from each edge of the running phase gives smooth spin-up and spin-down ramps.
    cycle_position = np.mod(t, period_s) / period_s
    edge_distance_s = np.minimum(cycle_position, duty - cycle_position) * period_s
    on = cycle_position < duty
    return np.where(on, np.tanh(2.0 * edge_distance_s / ramp_s), 0.0)


def _slow_modulation(rng: np.random.Generator, n: int, fs: int, depth: float) -> np.ndarray:
    t = np.arange(n) / fs
    return 1.0 + depth * np.sin(2 * np.pi * rng.uniform(0.05, 0.5) * t + rng.uniform(0, 2 * np.pi))


def _shaped_noise(rng: np.random.Generator, n: int, fs: int, freqs: np.ndarray, amplitude: np.ndarray) -> np.ndarray:
    """Stationary Gaussian noise with the given amplitude spectrum, band RMS 1.

    Shaping in the frequency domain gives any spectrum at the cost of one FFT. ``freqs``
    comes from ``rfftfreq(_even_fast_length(n))``; the circular noise is cut to ``n``.
    """
    spectrum = (rng.standard_normal(len(freqs)) + 1j * rng.standard_normal(len(freqs))) * amplitude
    spectrum[0] = 0.0
    noise = sp_fft.irfft(spectrum, 2 * (len(freqs) - 1))[:n]
    return noise / _band_rms(noise, fs)


def _band_rms(x: np.ndarray, fs: int, band: tuple[float, float] = ANALYSIS_BAND_HZ) -> float:
    """RMS of ``x`` within ``band`` (Parseval on a zero-padded FFT)."""
    n_fft = sp_fft.next_fast_len(len(x), real=True)
    spectrum = sp_fft.rfft(x, n_fft)
    freqs = sp_fft.rfftfreq(n_fft, 1.0 / fs)
    in_band = (freqs >= band[0]) & (freqs <= band[1])
    power = 2.0 * np.sum(np.abs(spectrum[in_band]) ** 2) / (n_fft * len(x))
    # A silent band (all-zero input) would divide by zero downstream.
    return float(np.sqrt(power)) or 1e-12


def _even_fast_length(n: int) -> int:
    # An odd FFT length would not round-trip through rfftfreq's bin count.
    length = sp_fft.next_fast_len(n, real=True)
    while length % 2:
        length = sp_fft.next_fast_len(length + 1, real=True)
    return length


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2))) or 1e-12


def _db(level_db: float) -> float:
    return float(10.0 ** (level_db / 20.0))


def _lowpass_gain(freqs: np.ndarray, cutoff_hz: float, order: int) -> np.ndarray:
    return 1.0 / np.sqrt(1.0 + (freqs / cutoff_hz) ** (2 * order))


def _highpass_gain(freqs: np.ndarray, cutoff_hz: float, order: int) -> np.ndarray:
    ratio = (freqs / cutoff_hz) ** order
    return ratio / np.sqrt(1.0 + ratio**2)


def _soft_limit(x: np.ndarray) -> np.ndarray:
    # Saturate peaks like a preamplifier instead of scaling the whole recording down:
    # scaling down would make recordings with loud knocks quieter, a loudness cue for RANDOM.
    magnitude = np.abs(x)
    over = magnitude > LIMITER_KNEE
    limited = x.copy()
    limited[over] = np.sign(x[over]) * (
        LIMITER_KNEE + (1.0 - LIMITER_KNEE) * np.tanh((magnitude[over] - LIMITER_KNEE) / (1.0 - LIMITER_KNEE))
    )
    return limited


def _to_pcm16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 32767.0), -32767, 32767).astype(np.int16)


def _sensor_response_sos(response: dict[str, float], fs: int) -> np.ndarray:
    nyquist_margin = 0.45 * fs
    sections = [
        signal.butter(2, response["highpass_hz"], btype="highpass", fs=fs, output="sos"),
        _peaking_sos(min(response["peak1_hz"], nyquist_margin), response["peak1_db"], response["peak1_q"], fs),
        _peaking_sos(min(response["peak2_hz"], nyquist_margin), response["peak2_db"], response["peak2_q"], fs),
        _high_shelf_sos(response["tilt_hz"], response["tilt_db"], fs),
        # The transducer's usable bandwidth, or the recorder's anti-aliasing filter if lower.
        signal.butter(4, min(response["bandwidth_hz"], nyquist_margin), btype="lowpass", fs=fs, output="sos"),
    ]
    return np.vstack(sections)


def _tilt_sos(db_per_octave: float, fs: int) -> np.ndarray:
    """A slope of ``db_per_octave`` over ``TILT_BAND_HZ``, 0 dB at ``TILT_PIVOT_HZ``.

    One real zero and pole per octave, each pair rising (or falling) by the slope across
    its octave, so the slope holds within about 1 dB per octave from 125 Hz to 1 kHz and
    levels off towards the band edges; five octaves cost three second-order sections.
    Poles are placed by the matched z-transform: always inside the unit circle, and
    unlike a prewarped bilinear design it does not steepen the slope next to Nyquist at
    4096 Hz, so a sensor's tilt hardly depends on its rate.
    """
    low_hz, high_hz = TILT_BAND_HZ
    n_octaves = round(np.log2(high_hz / low_hz))
    centres_hz = low_hz * 2.0 ** (np.arange(n_octaves) + 0.5)
    half_ratio = 10.0 ** (db_per_octave / 40.0)
    zeros = np.exp(-2 * np.pi * centres_hz / half_ratio / fs)
    poles = np.exp(-2 * np.pi * centres_hz * half_ratio / fs)
    sos = signal.zpk2sos(zeros, poles, 1.0)
    _, pivot_gain = signal.sosfreqz(sos, worN=[TILT_PIVOT_HZ], fs=fs)
    sos[0, :3] /= np.abs(pivot_gain[0])
    return sos


def _peaking_sos(f0_hz: float, gain_db: float, q: float, fs: int) -> np.ndarray:
    # RBJ audio-EQ-cookbook peaking filter: a resonance of the sensor and its mount.
    a_gain = 10.0 ** (gain_db / 40.0)
    w0 = 2 * np.pi * f0_hz / fs
    alpha = np.sin(w0) / (2 * q)
    b = [1 + alpha * a_gain, -2 * np.cos(w0), 1 - alpha * a_gain]
    a = [1 + alpha / a_gain, -2 * np.cos(w0), 1 - alpha / a_gain]
    return _normalised_section(b, a)


def _high_shelf_sos(f0_hz: float, gain_db: float, fs: int) -> np.ndarray:
    # RBJ high shelf (slope 1): the sensor's overall tilt towards or away from highs.
    a_gain = 10.0 ** (gain_db / 40.0)
    w0 = 2 * np.pi * f0_hz / fs
    cos_w0, sqrt_a = np.cos(w0), np.sqrt(a_gain)
    alpha = np.sin(w0) / 2 * np.sqrt(2.0)
    b = [
        a_gain * ((a_gain + 1) + (a_gain - 1) * cos_w0 + 2 * sqrt_a * alpha),
        -2 * a_gain * ((a_gain - 1) + (a_gain + 1) * cos_w0),
        a_gain * ((a_gain + 1) + (a_gain - 1) * cos_w0 - 2 * sqrt_a * alpha),
    ]
    a = [
        (a_gain + 1) - (a_gain - 1) * cos_w0 + 2 * sqrt_a * alpha,
        2 * ((a_gain - 1) - (a_gain + 1) * cos_w0),
        (a_gain + 1) - (a_gain - 1) * cos_w0 - 2 * sqrt_a * alpha,
    ]
    return _normalised_section(b, a)


def _normalised_section(b: list[float], a: list[float]) -> np.ndarray:
    return np.array([[b[0] / a[0], b[1] / a[0], b[2] / a[0], 1.0, a[1] / a[0], a[2] / a[0]]])
