"""The signal front end: the one feature definition shared by training and inference.

The replaced code computed features one way for training and another for inference
(20*log10 against 10*log10, SPEC defect 2), so its deployed models saw inputs they
were never trained on. Everything that turns audio into model input lives here and
nowhere else: mono mix, anti-aliased resampling, two-stage segmentation (Ma et al.
2025: long segments, each cut into short ones) and the log-mel spectrum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from scipy.signal import get_window, resample_poly

from leak_detection.params_config import ParamsConfig

LONG_SEGMENT_CHUNK = 8192
"""Long segments computed per step, so that an hour-long recording stays in bounded memory."""


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


def recording_features(samples: np.ndarray, sample_rate: int, config: FrontEndConfig) -> np.ndarray:
    """Raw audio as read from disk (any rate, mono or multichannel) to model features."""
    mono = to_mono(samples)
    return log_mel_segments(resample(mono, sample_rate, config.sample_rate), config)


def rejection_reason(samples: np.ndarray, sample_rate: int, config: FrontEndConfig) -> str | None:
    """Why a decoded recording cannot be used, or ``None`` when it can.

    Real audio is never padded or trimmed (SPEC), so a recording shorter than one long
    segment is rejected rather than padded; a file that decodes to NaN, infinities or
    digital silence would otherwise enter training with a label and no signal (the
    replaced code's defect 6).
    """
    samples = np.asarray(samples)
    if samples.size == 0:
        return "empty: the file holds no audio samples"
    if not np.isfinite(samples).all():
        n_bad = int((~np.isfinite(samples)).sum())
        return f"non-finite samples: {n_bad} NaN or infinite values"
    duration = samples.shape[0] / sample_rate
    if count_long_segments(resampled_length(samples.shape[0], sample_rate, config.sample_rate), config) == 0:
        return f"too short: {duration:.3f} s, at least one long segment ({config.min_duration_s:.3f} s) is needed"
    if not np.any(samples):
        return "silent: every sample is exactly zero (dead channel or muted sensor)"
    return None
