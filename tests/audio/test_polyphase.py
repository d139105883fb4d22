"""The vectorised polyphase product is scipy's resample_poly, to float32 rounding."""

import math

import numpy as np
import pytest
from scipy.signal import resample_poly

from leak_detection.audio.front_end import _anti_aliasing_filter
from leak_detection.audio.polyphase import PolyphaseResampler


@pytest.mark.parametrize("rate", [2000, 4000, 8000, 11025, 16000, 44100, 48000, 12288])
@pytest.mark.parametrize("n_samples", [1, 7, 999, 3 * 48000 + 17])
def test_matches_resample_poly_at_every_length(rate, n_samples):
    g = math.gcd(rate, 4096)
    up, down = 4096 // g, rate // g
    window = _anti_aliasing_filter(up, down)
    x = np.random.default_rng(n_samples).normal(size=n_samples)
    expected = resample_poly(x, up, down, window=window)
    got = PolyphaseResampler(up, down, window)(x)
    assert got.shape == expected.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_the_common_field_rates_take_the_vectorised_path_and_the_awkward_ones_keep_scipy():
    def resampler(rate):
        g = math.gcd(rate, 4096)
        return PolyphaseResampler(4096 // g, rate // g, _anti_aliasing_filter(4096 // g, rate // g))

    assert all(resampler(rate).use_matmul for rate in (8000, 16000, 48000))
    # 44.1 kHz: up 1024, down 11025: a common window would do ~50x the work; 12288 Hz: decimation by 3.
    assert not resampler(44100).use_matmul and not resampler(12288).use_matmul


def test_an_odd_rate_keeps_scipy_without_building_the_matrix_it_would_not_use():
    # 48001 Hz: up 4096, down 48001; the matrix would be 790 MB and ~200x the work.
    window = _anti_aliasing_filter(4096, 48001)
    resampler = PolyphaseResampler(4096, 48001, window)
    assert not resampler.use_matmul and resampler.nbytes == window.nbytes
    x = np.random.default_rng(0).normal(size=48001)
    np.testing.assert_allclose(resampler(x), resample_poly(x, 4096, 48001, window=window), atol=1e-5)
