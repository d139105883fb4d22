import numpy as np
import torch

from leak_detection.features.familiarity import Familiarity, file_summaries, fit_familiarity, recording_summary


def recordings(rng, n, offset_db=0.0, tilt_db=0.0):
    """Log-mel features of ``n`` recordings: one spectral shape, levels spread by +-5 dB."""
    shape = np.linspace(-40, -60, 32) + tilt_db * np.linspace(-0.5, 0.5, 32)
    return [
        (shape + offset_db + rng.uniform(-5, 5) + rng.normal(0, 2, size=(rng.integers(3, 9), 3, 32)))[..., None]
        for _ in range(n)
    ]


def test_summaries_of_blocks_equal_those_of_each_recording():
    rng = np.random.default_rng(0)
    files = recordings(rng, 5)
    flat = torch.from_numpy(np.concatenate([f.reshape(-1, 1, 32, 1) for f in files]))
    blocks = [flat[:7], flat[7:30], flat[30:]]
    per_file = np.array([f.shape[0] * 3 for f in files])
    np.testing.assert_allclose(file_summaries(blocks, per_file, 32), [recording_summary(f) for f in files])


def test_the_threshold_flags_about_one_percent_of_files_like_the_validation_files():
    rng = np.random.default_rng(1)
    summaries = lambda n: np.array([recording_summary(f) for f in recordings(rng, n)])  # noqa: E731
    familiarity = fit_familiarity(summaries(400), summaries(400))
    assert familiarity.is_unfamiliar(summaries(2000)).mean() < 0.03


def test_a_site_unlike_the_training_data_is_flagged_and_one_like_it_is_not():
    rng = np.random.default_rng(2)
    train, validation = ([recording_summary(f) for f in recordings(rng, 200)] for _ in range(2))
    familiarity = fit_familiarity(np.array(train), np.array(validation))
    like = np.array([recording_summary(f) for f in recordings(rng, 20)])
    unlike = np.array([recording_summary(f) for f in recordings(rng, 20, offset_db=-25.0, tilt_db=15.0)])
    assert familiarity.is_unfamiliar(like).mean() <= 0.1
    assert familiarity.is_unfamiliar(unlike).all()


def test_the_statistics_round_trip_through_model_meta():
    rng = np.random.default_rng(3)
    fitted = fit_familiarity(rng.normal(size=(50, 64)), rng.normal(size=(50, 64)))
    again = Familiarity.from_meta({"familiarity": fitted.to_dict()})
    np.testing.assert_allclose(again.mean, fitted.mean)
    assert again.threshold == fitted.threshold
    assert Familiarity.from_meta({}) is None
