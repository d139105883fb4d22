"""Synthetic feature stores, written and read through the project's own dataset class.

Training speed does not depend on what the numbers are, only on how many there are
and where they live, so random log-mel-like values stand in for real features; the
store goes through ``MelFeatureStoreDataset`` both ways, as a real run's does.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from leak_detection.audio.front_end import FrontEndConfig
from leak_detection.features.segment_batches import SegmentSource
from leak_detection.features.store import MelFeatureStore
from leak_detection.labels import CLASS_NAMES, LEAK

SAVE_ARGS = {"dtype": "float32"}  # as conf/base/catalog.yml saves mel_features
LOAD_ARGS = {"lazy": True}  # as conf/base/catalog.yml loads it


class SyntheticRows:
    """Random ``[n_rows, n_short, n_mels, 1]`` float32 rows, generated slab by slab on demand.

    The store writer reads its input a slab at a time, so a store ten times the 1x
    size is written without ever being held in memory. A slab depends only on its
    first row and the seed, so the content is reproducible.
    """

    def __init__(self, n_rows: int, row_shape: tuple[int, ...], seed: int) -> None:
        self.shape = (int(n_rows), *row_shape)
        self.dtype = np.dtype(np.float32)
        self.seed = seed

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: slice) -> np.ndarray:
        start, stop, _ = key.indices(self.shape[0])
        rng = np.random.default_rng([self.seed, start])
        # Around -60 dB with a spread of a few dB, like log-mel power of quiet audio.
        rows = rng.standard_normal((max(0, stop - start), *self.shape[1:]), dtype=np.float32)
        return rows * np.float32(6.0) - np.float32(60.0)


def synthetic_store(n_files: int, long_per_file: int, seed: int) -> MelFeatureStore:
    """``n_files`` files of ``long_per_file`` long segments each, alternately LEAK and NORMAL.

    Its rows are generated when read, so it can be written (or trained from) at any size.
    """
    config = FrontEndConfig()
    ids = [f"synthetic/{i:06d}.wav" for i in range(n_files)]
    labels = [CLASS_NAMES.index(LEAK if i % 2 == 0 else "NORMAL") for i in range(n_files)]
    return MelFeatureStore(
        segments_mel=SyntheticRows(n_files * long_per_file, (config.n_short, config.n_mels, config.n_frames), seed),
        file_offsets=np.arange(n_files + 1, dtype=np.int64) * long_per_file,
        labels=np.array(labels),
        file_ids=ids,
        groups=ids,
        label_names=list(CLASS_NAMES),
        feature_config=config.to_dict(),
        source_fingerprint=f"bench-synthetic-{seed}-{n_files}x{long_per_file}",
    )


def write_synthetic_store(path: Path, n_files: int, long_per_file: int, seed: int) -> dict:
    """Write ``synthetic_store(...)`` with the project's dataset class; say what was written."""
    from leak_detection.datasets import MelFeatureStoreDataset  # kedro: not needed by gpu_check

    store = synthetic_store(n_files, long_per_file, seed)
    started = time.perf_counter()
    MelFeatureStoreDataset(filepath=path, save_args=SAVE_ARGS).save(store)
    return {
        "path": str(path),
        "files": n_files,
        "long_segments": store.n_long_segments,
        "short_segments": store.n_long_segments * store.segments_mel.shape[1],
        "file_mb": round(path.stat().st_size / 2**20, 1),
        "write_seconds": round(time.perf_counter() - started, 2),
    }


def load_store(path: Path) -> MelFeatureStore:
    from leak_detection.datasets import MelFeatureStoreDataset

    return MelFeatureStoreDataset(filepath=path, load_args=LOAD_ARGS).load()


def train_file_count(store: MelFeatureStore, validation_files: int) -> int:
    """Files before the validation files: the training split is the store's first rows."""
    return store.n_files - validation_files


def binary_source(store: MelFeatureStore, files: np.ndarray, memory_budget_bytes: int) -> SegmentSource:
    """The binary-mode ``SegmentSource`` of some files, as ``SegmentSource.for_split`` builds it."""
    is_leak = np.array([store.label_names[store.labels[i]] == LEAK for i in files])
    return SegmentSource(
        store=store,
        file_indices=files,
        file_targets=is_leak.astype(np.int64),
        file_is_leak=is_leak,
        memory_budget_bytes=memory_budget_bytes,
    )


def train_and_validation(
    store: MelFeatureStore, validation_files: int, memory_budget_bytes: int
) -> tuple[SegmentSource, SegmentSource]:
    n_train = train_file_count(store, validation_files)
    files = np.arange(store.n_files)
    return (
        binary_source(store, files[:n_train], memory_budget_bytes),
        binary_source(store, files[n_train:], memory_budget_bytes),
    )
