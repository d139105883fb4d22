import os

import numpy as np
import pytest
import soundfile as sf

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")


def noise_wav(path, seconds=1.0, rate=4096, seed=0, subtype="PCM_16", channels=1):
    """Write a short noise recording and return its path."""
    rng = np.random.default_rng(seed)
    samples = 0.1 * rng.normal(size=(int(seconds * rate), channels)).squeeze()
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, samples, rate, subtype=subtype)
    return path


@pytest.fixture
def make_wav():
    return noise_wav
