import os
import shutil
from pathlib import Path

import fsspec
import numpy as np
import pytest
import soundfile as sf
from fsspec.implementations.memory import MemoryFileSystem
from kedro.framework.startup import bootstrap_project

from leak_detection.demo.recordings import generate_demo_recordings

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
# Tests' runs are tracked in each project copy's own store, never on a developer's server.
os.environ.pop("MLFLOW_TRACKING_URI", None)

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def memory_filesystem_as_its_class_defines_it():
    """fsspec's in-memory filesystem (the tests' stand-in for a bucket) with no method left patched.

    fsspec caches one instance, and undoing ``monkeypatch.setattr(instance, "_open", ...)`` leaves
    the original bound method on that instance, which shadows a later test's patch of the class:
    a test injecting a storage failure then saw none when it ran after another.
    """
    yield
    memory = fsspec.filesystem("memory")
    for name in [n for n in vars(memory) if callable(getattr(MemoryFileSystem, n, None))]:
        delattr(memory, name)


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


def synthetic_store(files_per_class=8, n_long=6, seed=0, leak_boost_db=12.0, groups_per_class=None):
    """A small feature store in which leaks are separable: extra energy in mid mel bands."""
    import pandas as pd

    from leak_detection.features.store import MelFeatureStore
    from leak_detection.labels import CLASS_NAMES

    rng = np.random.default_rng(seed)
    segments, labels, ids = [], [], []
    for c, name in enumerate(CLASS_NAMES):
        for i in range(files_per_class):
            x = rng.normal(-40.0, 3.0, size=(n_long, 3, 32, 1)).astype(np.float32)
            x[:, :, :, 0] += 2.0 * c  # a little class colour for the multiclass head
            if name == "LEAK":
                x[:, :, 8:20, 0] += leak_boost_db
            segments.append(x)
            labels.append(c)
            ids.append(f"{name}/{i:03d}.wav")
    store = MelFeatureStore(
        segments_mel=np.concatenate(segments),
        file_offsets=np.arange(len(ids) + 1) * n_long,
        labels=np.array(labels),
        file_ids=ids,
        groups=ids,
        label_names=list(CLASS_NAMES),
        feature_config={"sample_rate": 4096, "long_segment": 1024, "long_hop": 512},
        source_fingerprint=f"synthetic-{seed}",
    )
    # Every 4th file of each class validates, every 8th is test, the rest train.
    split = ["validation" if i % 4 == 1 else "test" if i % 8 == 3 else "train" for i in range(files_per_class)]
    index = pd.DataFrame(
        {
            "file_id": ids,
            "label": [CLASS_NAMES[c] for c in labels],
            "group": ids,
            "split": split * len(CLASS_NAMES),
            "n_long_segments": n_long,
        }
    )
    return store, index


@pytest.fixture
def separable_store():
    return synthetic_store()


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A copy of the project; runs happen from its root, as `kedro run` does."""
    root = tmp_path_factory.mktemp("project")
    shutil.copytree(PROJECT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    shutil.copy(PROJECT / "pyproject.toml", root / "pyproject.toml")
    (root / "src").mkdir()  # the package itself is installed; Kedro wants the folder
    bootstrap_project(root)
    previous = Path.cwd()
    os.chdir(root)
    yield root
    os.chdir(previous)


@pytest.fixture(scope="module")
def tiny_recordings(tmp_path_factory):
    folder = tmp_path_factory.mktemp("recordings") / "tiny"
    generate_demo_recordings(folder, n_recordings=60, n_sites=3, sensors_per_site=4, max_duration_s=6.0, seed=3)
    return folder
