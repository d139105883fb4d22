"""The signal front end: the one feature definition shared by training and inference.

The replaced system computed features one way for training and another for inference
(20*log10 against 10*log10: docs/architecture.md, D2), so its deployed models saw inputs they
were never trained on. Everything that turns audio into model input lives here and
nowhere else: mono mix, anti-aliased resampling, two-stage segmentation (Ma et al.
2025: long segments, each cut into short ones) and the log-mel spectrum.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from scipy.signal import firwin, get_window, resample_poly

from leak_detection.audio.polyphase import PolyphaseResampler
from leak_detection.params_config import ParamsConfig

LONG_SEGMENT_CHUNK = 8192
"""Long segments computed per step, so that an hour-long recording stays in bounded memory."""
RESAMPLE_CHUNK = 1 << 18
"""Input samples resampled per step when a recording arrives in blocks."""
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1_000, 384_000
"""Recording rates accepted (Hz): what acoustic leak sensors, hydrophones and audio
interfaces record at. The anti-aliasing filter grows with the rate (160 bytes per Hz
for a rate prime to the target), so a corrupt header claiming megahertz is refused
rather than designed for."""
RESAMPLER_CACHE_BYTES = 64 << 20
"""Memory the resamplers kept between files may hold (each common rate needs about 1 MB)."""


LEVEL_NORMALISATIONS = ("none", "file_median", "band_median")
"""How each recording's log-mel levels are referenced (``normalise_levels``)."""


@dataclass(frozen=True)
class FrontEndConfig(ParamsConfig):
    SECTION = "front_end"

    """Front-end parameters; every one is recorded with the features and the model."""

    sample_rate: int = 4096
    long_segment: int = 1024
    long_hop: int = 512
    short_segment: int = 512
    short_hop: int = 256
    n_fft: int = 512
    stft_hop: int = 256
    n_mels: int = 32
    f_min: float = 0.0
    f_max: float | None = None
    log_offset: float = 1e-10
    level_normalisation: str = "none"

    def __post_init__(self) -> None:
        positive = (
            "sample_rate",
            "long_segment",
            "long_hop",
            "short_segment",
            "short_hop",
            "n_fft",
            "stft_hop",
            "n_mels",
        )
        for key in positive:
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"front_end.{key} must be a positive integer, got {value!r}")
        if self.short_segment > self.long_segment:
            raise ValueError(
                f"front_end.short_segment ({self.short_segment}) must not exceed "
                f"front_end.long_segment ({self.long_segment})"
            )
        if self.n_fft > self.short_segment:
            raise ValueError(
                f"front_end.n_fft ({self.n_fft}) must not exceed front_end.short_segment "
                f"({self.short_segment}): spectra are taken inside each short segment"
            )
        if self.level_normalisation not in LEVEL_NORMALISATIONS:
            raise ValueError(
                f"front_end.level_normalisation must be one of {list(LEVEL_NORMALISATIONS)}, "
                f"got {self.level_normalisation!r}"
            )
        nyquist = self.sample_rate / 2
        f_max = self.f_max if self.f_max is not None else nyquist
        if not 0 <= self.f_min < f_max <= nyquist:
            raise ValueError(
                f"front_end.f_min/f_max must satisfy 0 <= f_min < f_max <= {nyquist} "
                f"(Nyquist), got f_min={self.f_min}, f_max={self.f_max}"
            )
        if self.log_offset <= 0:
            raise ValueError(f"front_end.log_offset must be > 0, got {self.log_offset}")

    @property
    def n_short(self) -> int:
        """Short segments per long segment."""
        return 1 + (self.long_segment - self.short_segment) // self.short_hop

    @property
    def n_frames(self) -> int:
        """Spectral frames per short segment (1 with the defaults: ``center=False``)."""
        return 1 + (self.short_segment - self.n_fft) // self.stft_hop

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        """The model's input shape per short segment: ``(channel, mel, frame)``."""
        return (1, self.n_mels, self.n_frames)

    @property
    def min_duration_s(self) -> float:
        return self.long_segment / self.sample_rate


def count_long_segments(n_samples: int, config: FrontEndConfig) -> int:
    """Long segments in a recording of ``n_samples`` at the target rate (0 if too short)."""
    if n_samples < config.long_segment:
        return 0
    return 1 + (n_samples - config.long_segment) // config.long_hop


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average the channels of ``[n]`` or ``[n, channels]`` audio."""
    samples = np.asarray(samples)
    if samples.ndim == 2:
        return samples.mean(axis=1)
    if samples.ndim != 1:
        raise ValueError(f"audio must have shape [n] or [n, channels], got {samples.shape}")
    return samples


def resample(samples: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """Polyphase resampling with scipy's anti-aliasing FIR (Kaiser window)."""
    if orig_rate <= 0:
        raise ValueError(f"sample rate must be positive, got {orig_rate}")
    if orig_rate == target_rate:
        return np.asarray(samples, dtype=np.float64)
    g = math.gcd(int(orig_rate), int(target_rate))
    return resample_poly(np.asarray(samples, dtype=np.float64), target_rate // g, orig_rate // g)


def _anti_aliasing_filter(up: int, down: int) -> np.ndarray:
    """``resample_poly``'s own Kaiser low-pass (``20 * max(up, down) + 1`` taps)."""
    half_len = 10 * max(up, down)
    return firwin(2 * half_len + 1, 1.0 / max(up, down), window=("kaiser", 5.0))


_resamplers: OrderedDict[tuple[int, int], PolyphaseResampler] = OrderedDict()


def _polyphase(up: int, down: int) -> PolyphaseResampler:
    """The resampler of a rate pair, designed once per pair (not per file).

    The cache is bounded by bytes, not entries: an odd rate's filter alone is
    about 160 bytes per Hz, so sixteen entries of them held gigabytes.
    """
    key = (int(up), int(down))
    if key in _resamplers:
        _resamplers.move_to_end(key)
        return _resamplers[key]
    resampler = PolyphaseResampler(up, down, _anti_aliasing_filter(up, down))
    if resampler.nbytes <= RESAMPLER_CACHE_BYTES:
        _resamplers[key] = resampler
        while sum(r.nbytes for r in _resamplers.values()) > RESAMPLER_CACHE_BYTES:
            _resamplers.popitem(last=False)
    return resampler


class StreamResampler:
    """``resample_poly`` of a long signal fed in blocks, equal to resampling it whole
    (to float32 rounding: the polyphase product runs in float32, see ``polyphase``).

    Each chunk is resampled with enough input on both sides for the anti-aliasing
    filter to see what it would see in the whole signal (zeros beyond the ends, as
    ``resample_poly`` pads), and only the chunk's own outputs are kept. An hour at
    48 kHz is never held at its original rate.
    """

    def __init__(self, orig_rate: int, target_rate: int, chunk: int = RESAMPLE_CHUNK) -> None:
        g = math.gcd(int(orig_rate), int(target_rate))
        self.up, self.down = target_rate // g, orig_rate // g
        half_len = 10 * max(self.up, self.down)  # resample_poly's own filter length
        self.kernel = _polyphase(self.up, self.down)  # resample_poly with its own filter, vectorised
        context = -(-half_len // self.up) + 1
        self.pad = -(-context // self.down) * self.down
        self.step = max(self.down, chunk // self.down * self.down)
        self.buffer = np.zeros(self.pad)
        self.buffer_start = -self.pad
        self.next_start = 0
        self.n_in = 0
        self.n_out = 0

    def _emit(self, start: int, stop: int) -> np.ndarray:
        a = start - self.pad - self.buffer_start
        b = stop + self.pad - self.buffer_start
        y = self.kernel(self.buffer[a:b])
        first = self.pad * self.up // self.down
        out = y[first : first + (stop - start) * self.up // self.down]
        keep_from = stop - self.pad - self.buffer_start
        self.buffer = self.buffer[keep_from:]
        self.buffer_start += keep_from
        self.next_start = stop
        self.n_out += out.shape[0]
        return out

    def feed(self, block: np.ndarray) -> np.ndarray:
        """The output samples that ``block`` completes (possibly none yet)."""
        self.buffer = np.concatenate([self.buffer, np.asarray(block, dtype=np.float64)])
        self.n_in += len(block)
        outputs = []
        while self.buffer_start + len(self.buffer) >= self.next_start + self.step + self.pad:
            outputs.append(self._emit(self.next_start, self.next_start + self.step))
        return np.concatenate(outputs) if outputs else np.zeros(0, dtype=np.float32)

    def finish(self) -> np.ndarray:
        """The remaining output samples, the total trimmed to ``resample_poly``'s length."""
        emitted = self.n_out
        end = -(-self.n_in // self.down) * self.down
        missing = end + self.pad - (self.buffer_start + len(self.buffer))
        self.buffer = np.concatenate([self.buffer, np.zeros(max(0, missing))])
        outputs = [np.zeros(0, dtype=np.float32)]
        while self.next_start < end:
            outputs.append(self._emit(self.next_start, min(self.next_start + self.step, end)))
        return np.concatenate(outputs)[: resampled_length(self.n_in, self.down, self.up) - emitted]


class StreamLogMel:
    """``log_mel_segments`` of a signal that arrives in pieces.

    Long segments start at multiples of the hop from the signal's start, so the
    features of each complete long segment are the same whether the signal is
    whole or streamed; only the unfinished tail is kept between pieces.
    """

    def __init__(self, config: FrontEndConfig) -> None:
        self.config = config
        self.buffer = np.zeros(0, dtype=np.float32)
        self.features: list[np.ndarray] = []

    def feed(self, signal: np.ndarray) -> None:
        self.buffer = np.concatenate([self.buffer, np.asarray(signal, dtype=np.float32)])
        n_long = count_long_segments(self.buffer.shape[0], self.config)
        if n_long:
            used = (n_long - 1) * self.config.long_hop + self.config.long_segment
            self.features.append(log_mel_segments(self.buffer[:used], self.config))
            self.buffer = self.buffer[n_long * self.config.long_hop :]

    def finish(self) -> np.ndarray:
        shape = (0, self.config.n_short, self.config.n_mels, self.config.n_frames)
        return np.concatenate(self.features) if self.features else np.zeros(shape, dtype=np.float32)


def resampled_length(n_samples: int, orig_rate: int, target_rate: int) -> int:
    """Length of ``resample(...)``'s output: ``ceil(n * up / down)`` as in resample_poly."""
    if orig_rate == target_rate:
        return n_samples
    g = math.gcd(int(orig_rate), int(target_rate))
    up, down = target_rate // g, orig_rate // g
    return -(-n_samples * up // down)


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    # Slaney's Auditory Toolbox scale: linear below 1 kHz, logarithmic above.
    hz = np.asarray(hz, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, math.log(6.4) / 27.0
    return np.where(
        hz >= min_log_hz,
        min_log_mel + np.log(np.maximum(hz, 1e-12) / min_log_hz) / logstep,
        hz / f_sp,
    )


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, math.log(6.4) / 27.0
    return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel)


@lru_cache(maxsize=8)
def mel_filterbank(config: FrontEndConfig) -> np.ndarray:
    """``[n_mels, n_fft // 2 + 1]`` triangular filters, Slaney scale and area norm.

    The same matrix as ``librosa.filters.mel(htk=False, norm="slaney")``.
    """
    f_max = config.f_max if config.f_max is not None else config.sample_rate / 2
    fft_freqs = np.linspace(0, config.sample_rate / 2, config.n_fft // 2 + 1)
    mel_edges = np.linspace(_hz_to_mel(config.f_min), _hz_to_mel(f_max), config.n_mels + 2)
    hz_edges = _mel_to_hz(mel_edges)
    widths = np.diff(hz_edges)
    ramps = hz_edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (hz_edges[2:] - hz_edges[:-2]))[:, None]
    weights.setflags(write=False)
    return weights


@lru_cache(maxsize=8)
def _analysis_window(n_fft: int) -> torch.Tensor:
    return torch.from_numpy(get_window("hann", n_fft).astype(np.float32))


def log_mel_segments(signal: np.ndarray, config: FrontEndConfig) -> np.ndarray:
    """Features of a mono signal already at ``config.sample_rate``.

    Returns ``[n_long, n_short, n_mels, n_frames]`` float32 log-mel power in dB.
    Short segments of neighbouring long segments overlap (with the defaults, the last
    short of one long segment is the first of the next), so each distinct short
    segment is analysed once and then gathered into place.
    """
    signal = np.asarray(signal, dtype=np.float32)
    n_long = count_long_segments(signal.shape[0], config)
    out = np.empty((n_long, config.n_short, config.n_mels, config.n_frames), dtype=np.float32)
    if n_long == 0:
        return out
    filterbank = torch.from_numpy(mel_filterbank(config).astype(np.float32))
    window = _analysis_window(config.n_fft)
    short_offsets = np.arange(config.n_short) * config.short_hop
    for first in range(0, n_long, LONG_SEGMENT_CHUNK):
        last = min(first + LONG_SEGMENT_CHUNK, n_long)
        starts = (np.arange(first, last) * config.long_hop)[:, None] + short_offsets[None, :]
        unique_starts, where = np.unique(starts, return_inverse=True)
        frames = signal[unique_starts[:, None] + np.arange(config.short_segment)[None, :]]
        spectrum = torch.stft(
            torch.from_numpy(frames),
            n_fft=config.n_fft,
            hop_length=config.stft_hop,
            win_length=config.n_fft,
            window=window,
            center=False,
            return_complex=True,
        )
        power = spectrum.real.square() + spectrum.imag.square()
        mel_power = torch.einsum("mf,uft->umt", filterbank, power)
        log_mel = (10.0 * torch.log10(mel_power + config.log_offset)).numpy()
        out[first:last] = log_mel[where.reshape(starts.shape)]
    return out


@dataclass(frozen=True)
class AnalysedRecording:
    """What the front end made of one recording: its features, or why there are none."""

    features: np.ndarray | None  # [n_long, n_short, n_mels, n_frames]
    n_samples: int  # at the original rate
    sample_rate: int
    content_sha256: str  # of the decoded mono samples: the same audio under two names is the same hash
    reason: str | None

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.sample_rate if self.sample_rate else 0.0


def analyse_recording(blocks: Iterable[np.ndarray], sample_rate: int, config: FrontEndConfig) -> AnalysedRecording:
    """Features of a recording decoded block by block, with the checks that may reject it.

    Real audio is never padded or trimmed, so a recording shorter than one long
    segment is rejected rather than padded; a file that decodes to NaN, infinities,
    digital silence or a constant would otherwise enter training with a label and no
    signal (docs/architecture.md, D6). Neither the audio nor the resampled signal
    is ever held whole: an hour-long recording at 48 kHz is processed in bounded memory.
    """
    if sample_rate != config.sample_rate and not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        reason = (
            f"unsupported sample rate {sample_rate} Hz: recordings must be between {MIN_SAMPLE_RATE} "
            f"and {MAX_SAMPLE_RATE} Hz (a corrupt header, or a sensor this front end was not built for)"
        )
        return AnalysedRecording(None, 0, sample_rate, "", reason)
    digest = hashlib.sha256(str(sample_rate).encode())
    resampler = StreamResampler(sample_rate, config.sample_rate) if sample_rate != config.sample_rate else None
    log_mel = StreamLogMel(config)
    n_samples, n_bad, low, high = 0, 0, np.inf, -np.inf
    for block in blocks:
        mono = np.ascontiguousarray(to_mono(block), dtype=np.float32)
        digest.update(mono.tobytes())
        n_samples += mono.shape[0]
        bad = int(mono.size - np.isfinite(mono).sum())
        n_bad += bad
        if n_bad or mono.size == 0:
            continue
        low, high = min(low, float(mono.min())), max(high, float(mono.max()))
        log_mel.feed(resampler.feed(mono) if resampler is not None else mono)
    reason = None
    if n_samples == 0:
        reason = "empty: the file holds no audio samples"
    elif n_bad:
        reason = f"non-finite samples: {n_bad} NaN or infinite values"
    elif count_long_segments(resampled_length(n_samples, sample_rate, config.sample_rate), config) == 0:
        reason = (
            f"too short: {n_samples / sample_rate:.3f} s, at least one long segment "
            f"({config.min_duration_s:.3f} s) is needed"
        )
    elif low == high == 0:
        reason = "silent: every sample is exactly zero (dead channel or muted sensor)"
    elif low == high:
        reason = f"constant: every sample is {low:g} (DC offset only, no signal)"
    features = None
    if reason is None:
        if resampler is not None:
            log_mel.feed(resampler.finish())
        features = normalise_levels(log_mel.finish(), config.level_normalisation)
    return AnalysedRecording(features, n_samples, sample_rate, digest.hexdigest(), reason)


def normalise_levels(features: np.ndarray, method: str) -> np.ndarray:
    """Log-mel features referenced to the recording itself.

    A sensor's gain adds the same number of dB to every band of every segment, and its
    frequency response a fixed number per band, so absolute levels say more about the
    sensor than the pipe: the demo-trained model found 0 of 15 field leaks recorded
    15-30 dB below the demo's level. ``file_median`` subtracts the median of all the
    recording's values (removes gain, keeps spectral shape); ``band_median`` subtracts
    each band's median over the recording (removes gain and any fixed response, and
    with them the recording's long-term spectral shape); ``none`` is the paper's front end.
    """
    if method == "none":
        return features
    axes = (0, 1, 2, 3) if method == "file_median" else (0, 1, 3)
    return (features - np.median(features, axis=axes, keepdims=True)).astype(np.float32)


def recording_features(samples: np.ndarray, sample_rate: int, config: FrontEndConfig) -> np.ndarray:
    """Features of audio already in memory (any rate, mono or ``[n, channels]``).

    The same computation as ``analyse_recording``; raises ``ValueError`` with the
    reason when the recording cannot be used.
    """
    analysed = analyse_recording([np.asarray(samples)], sample_rate, config)
    if analysed.reason is not None:
        raise ValueError(analysed.reason)
    return analysed.features
