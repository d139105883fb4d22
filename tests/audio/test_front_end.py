import numpy as np
import pytest

from leak_detection.audio.front_end import (
    FrontEndConfig,
    StreamResampler,
    analyse_recording,
    count_long_segments,
    log_mel_segments,
    mel_filterbank,
    normalise_levels,
    recording_features,
    resample,
)

CONFIG = FrontEndConfig()


def tone(freq_hz, rate, seconds=10.0, amplitude=0.5):
    t = np.arange(int(rate * seconds)) / rate
    return amplitude * np.sin(2 * np.pi * freq_hz * t)


def expected_mel_bin(freq_hz):
    """The filter whose triangle weighs this frequency's FFT bin the most."""
    fft_bin = round(freq_hz * CONFIG.n_fft / CONFIG.sample_rate)
    return int(np.argmax(mel_filterbank(CONFIG)[:, fft_bin]))


def test_ten_seconds_at_4096_hz_gives_79_long_by_3_short_segments():
    features = recording_features(np.random.default_rng(0).normal(size=40960), 4096, CONFIG)
    assert features.shape == (79, 3, 32, 1)
    assert features.dtype == np.float32


@pytest.mark.parametrize("rate", [4096, 8000, 11025, 16000, 44100, 48000])
def test_ten_seconds_at_any_rate_gives_79_long_segments(rate):
    features = recording_features(np.random.default_rng(rate).normal(size=rate * 10), rate, CONFIG)
    assert features.shape[:2] == (79, 3)


@pytest.mark.parametrize("n_samples, expected", [(1023, 0), (1024, 1), (1535, 1), (1536, 2), (40960, 79)])
def test_long_segment_count(n_samples, expected):
    assert count_long_segments(n_samples, CONFIG) == expected


@pytest.mark.parametrize("freq_hz", [150.0, 440.0, 1000.0, 1800.0])
@pytest.mark.parametrize("rate", [4096, 16000])
def test_pure_tone_lands_in_the_mel_bin_that_contains_its_frequency(freq_hz, rate):
    features = recording_features(tone(freq_hz, rate), rate, CONFIG)
    loudest_bin = np.bincount(features[..., 0].argmax(axis=-1).ravel()).argmax()
    assert loudest_bin == expected_mel_bin(freq_hz)
    weights = mel_filterbank(CONFIG)[loudest_bin]
    fft_freqs = np.linspace(0, CONFIG.sample_rate / 2, CONFIG.n_fft // 2 + 1)
    covered = fft_freqs[weights > 0]
    assert covered.min() <= freq_hz <= covered.max()


def test_log_power_is_ten_log10_of_the_mel_power():
    # The replaced system's inference used 20*log10 (docs/architecture.md, D2): doubling the
    # amplitude must add 10*log10(4) = 6.02 dB here, not 12.04 dB.
    quiet = recording_features(tone(440.0, 4096, 1.0, 0.1), 4096, CONFIG)
    loud = recording_features(tone(440.0, 4096, 1.0, 0.2), 4096, CONFIG)
    peak = expected_mel_bin(440.0)
    np.testing.assert_allclose(loud[..., peak, 0] - quiet[..., peak, 0], 10 * np.log10(4), atol=1e-3)


def test_features_match_a_direct_per_segment_computation():
    rng = np.random.default_rng(1)
    signal = rng.normal(size=4096 * 3).astype(np.float32)
    features = log_mel_segments(signal, CONFIG)
    window = np.hanning(CONFIG.n_fft + 1)[:-1]  # periodic Hann
    fb = mel_filterbank(CONFIG)
    for i in (0, 5, features.shape[0] - 1):
        for j in range(3):
            start = i * CONFIG.long_hop + j * CONFIG.short_hop
            frame = signal[start : start + CONFIG.short_segment].astype(np.float64)
            power = np.abs(np.fft.rfft(frame * window)) ** 2
            expected = 10 * np.log10(fb @ power + 1e-10)
            np.testing.assert_allclose(features[i, j, :, 0], expected, atol=2e-3)


def test_slaney_filterbank_matches_librosa_reference_values():
    fb = mel_filterbank(CONFIG)
    assert fb.shape == (32, 257)
    # Slaney area norm: every triangle integrates to the same area over Hz.
    hz_per_bin = CONFIG.sample_rate / CONFIG.n_fft
    areas = fb.sum(axis=1) * hz_per_bin
    np.testing.assert_allclose(areas[2:], 1.0, rtol=0.1)


@pytest.mark.parametrize(
    "samples, rate, reason",
    [
        (np.array([]), 4096, "empty"),
        (np.zeros(1000) + 0.1, 4096, "too short"),
        (np.full(8000, np.nan), 4096, "non-finite"),
        (np.r_[np.ones(8000), np.inf], 4096, "non-finite"),
        (np.zeros(8000), 4096, "silent"),
        (np.zeros(8000) + 0.25, 4096, "constant"),
        (np.zeros(3900) + 0.1, 16000, "too short"),
    ],
)
def test_rejection_reasons(samples, rate, reason):
    analysed = analyse_recording([samples], rate, CONFIG)
    assert analysed.reason.startswith(reason) and analysed.features is None
    with pytest.raises(ValueError, match=reason):
        recording_features(samples, rate, CONFIG)


def test_a_usable_recording_has_no_rejection_reason():
    analysed = analyse_recording([tone(300, 8000, 1.0)], 8000, CONFIG)
    assert analysed.reason is None and analysed.features.shape == (7, 3, 32, 1)
    assert analysed.duration_s == 1.0 and analysed.sample_rate == 8000


@pytest.mark.parametrize("rate", [8000, 11025, 44100, 48000])
def test_features_from_blocks_equal_features_of_the_whole_recording(rate):
    samples = np.random.default_rng(rate).normal(size=(rate * 7 + 123, 2)).astype(np.float32)
    whole = recording_features(samples, rate, CONFIG)
    blocks = [samples[s : s + 9999] for s in range(0, len(samples), 9999)]
    streamed = analyse_recording(blocks, rate, CONFIG)
    np.testing.assert_allclose(streamed.features, whole, atol=1e-3)
    assert streamed.content_sha256 == analyse_recording([samples], rate, CONFIG).content_sha256


@pytest.mark.parametrize(
    "params, key",
    [({"n_mels": 0}, "n_mels"), ({"n_fft": 1024}, "n_fft"), ({"hop": 3}, "unknown"), ({"f_max": 9000}, "f_max")],
)
def test_bad_front_end_parameters_name_the_key(params, key):
    with pytest.raises(ValueError, match=key):
        FrontEndConfig.from_params(params)


@pytest.mark.parametrize("rate", [8000, 11025, 16000, 44100, 48000])
def test_block_resampling_equals_resampling_whole(rate):
    x = np.random.default_rng(rate).normal(size=rate * 3 + 17)
    resampler = StreamResampler(rate, 4096, chunk=5000)
    pieces = [resampler.feed(x[s : s + 3333]) for s in range(0, x.size, 3333)]
    streamed = np.concatenate([*pieces, resampler.finish()])
    whole = resample(x, rate, 4096)
    assert streamed.shape == whole.shape
    np.testing.assert_allclose(streamed, whole, atol=1e-6)


@pytest.mark.parametrize("scale", [0.05, 20.0])
def test_file_median_levels_do_not_move_when_a_recording_is_scaled(scale):
    rng = np.random.default_rng(7)
    samples = 0.01 * rng.normal(size=4096 * 3)
    config = FrontEndConfig(level_normalisation="file_median")
    np.testing.assert_allclose(
        recording_features(samples * scale, 4096, config), recording_features(samples, 4096, config), atol=1e-3
    )


def test_band_median_levels_remove_a_fixed_spectral_tilt():
    rng = np.random.default_rng(8)
    features = rng.normal(-50, 3, size=(20, 3, 32, 1)).astype(np.float32)
    tilted = features + np.linspace(-10, 10, 32)[None, None, :, None]
    np.testing.assert_allclose(
        normalise_levels(tilted, "band_median"), normalise_levels(features, "band_median"), atol=1e-4
    )
    assert normalise_levels(features, "none") is features


def test_an_unknown_level_normalisation_is_refused():
    with pytest.raises(ValueError, match="level_normalisation must be one of"):
        FrontEndConfig(level_normalisation="loudness")
