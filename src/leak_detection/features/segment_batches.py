"""Batches of short segments straight from the feature store, without per-sample work.

Per-sample Python and h5py calls cost far more than this model's arithmetic, so
segments are read in contiguous blocks and batches are cut from tensors by index.
A split that fits the memory budget is held in memory once; a larger one is
streamed block by block, block order and block contents shuffled each epoch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from leak_detection.features.familiarity import file_summaries
from leak_detection.features.row_reader import read_row_ranges
from leak_detection.features.store import MelFeatureStore
from leak_detection.labels import LEAK

logger = logging.getLogger(__name__)

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
"""``(features [B, 1, n_mels, n_frames], targets [B], is_leak [B])``."""


def _merge_ranges(starts: np.ndarray, stops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Join ranges that touch, so that neighbouring files are one read."""
    if starts.size == 0:
        return starts, stops
    breaks = np.flatnonzero(starts[1:] != stops[:-1]) + 1
    return starts[np.r_[0, breaks]], stops[np.r_[breaks - 1, stops.size - 1]]


@dataclass
class SegmentSource:
    """The short segments of a chosen set of files, with a target per segment.

    Attributes:
        store: the feature store (its ``segments_mel`` may be lazy).
        file_indices: the files, in store order.
        file_targets: target of each chosen file (this mode's output index).
        file_is_leak: whether each chosen file is a leak (from its class name).
        memory_budget_bytes: hold the segments in memory when they fit in this.
        block_long_segments: rows per read when streaming.
        shuffle_blocks: blocks pooled and shuffled together when streaming.
    """

    store: MelFeatureStore
    file_indices: np.ndarray
    file_targets: np.ndarray
    file_is_leak: np.ndarray
    memory_budget_bytes: int
    block_long_segments: int = 8192
    shuffle_blocks: int = 16

    def __post_init__(self) -> None:
        order = np.argsort(self.file_indices, kind="stable")
        self.file_indices = np.asarray(self.file_indices, dtype=np.int64)[order]
        self.file_targets = np.asarray(self.file_targets, dtype=np.int64)[order]
        self.file_is_leak = np.asarray(self.file_is_leak, dtype=bool)[order]
        offsets = self.store.file_offsets
        self._starts = offsets[self.file_indices]
        self._stops = offsets[self.file_indices + 1]
        self.long_per_file = self._stops - self._starts
        self.local_offsets = np.concatenate([[0], np.cumsum(self.long_per_file)]).astype(np.int64)
        _, self.n_short, self.n_mels, self.n_frames = self.store.segments_mel.shape
        self.n_long = int(self.local_offsets[-1])
        self.n_samples = self.n_long * self.n_short
        self.long_targets = np.repeat(self.file_targets, self.long_per_file)
        self.long_is_leak = np.repeat(self.file_is_leak, self.long_per_file)
        sample_bytes = 4 * self.n_mels * self.n_frames
        self.in_memory = self.n_samples * sample_bytes <= self.memory_budget_bytes
        self._features: torch.Tensor | None = None
        if self.in_memory:
            rows = read_row_ranges(self.store.segments_mel, *_merge_ranges(self._starts, self._stops))
            self._features = self._as_samples(rows)
            self._targets = torch.from_numpy(np.repeat(self.long_targets, self.n_short))
            self._is_leak = torch.from_numpy(np.repeat(self.long_is_leak, self.n_short))
        logger.info(
            "%d files, %d short segments (%.0f MB as float32): %s",
            len(self.file_indices),
            self.n_samples,
            self.n_samples * sample_bytes / 2**20,
            "held in memory" if self.in_memory else f"streamed (budget {self.memory_budget_bytes / 2**20:.0f} MB)",
        )

    @classmethod
    def for_split(
        cls, store: MelFeatureStore, file_targets: pd.DataFrame, split: str, memory_budget_bytes: int
    ) -> SegmentSource:
        """The files of one split of a mode's ``file_targets`` table (file_id, split, target, label)."""
        rows = file_targets[file_targets["split"] == split]
        if rows.empty:
            raise ValueError(f"the {split} split has no files; check the split ratios and the recordings")
        position = {fid: i for i, fid in enumerate(store.file_ids)}
        missing = [f for f in rows["file_id"] if f not in position]
        if missing:
            raise ValueError(
                f"{len(missing)} {split} files are not in the feature store (first: {missing[:3]}); the index "
                "and the store are from different runs: rebuild with `kedro run --pipelines data_indexing`"
            )
        return cls(
            store=store,
            file_indices=np.array([position[f] for f in rows["file_id"]]),
            file_targets=rows["target"].to_numpy(),
            file_is_leak=(rows["label"] == LEAK).to_numpy(),
            memory_budget_bytes=memory_budget_bytes,
        )

    def _as_samples(self, rows: np.ndarray) -> torch.Tensor:
        rows = np.ascontiguousarray(rows, dtype=np.float32)
        return torch.from_numpy(rows).reshape(-1, 1, self.n_mels, self.n_frames)

    def mean_std(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-mel mean and standard deviation over every segment (float64 sums)."""
        total = torch.zeros(self.n_mels, dtype=torch.float64)
        total_sq = torch.zeros(self.n_mels, dtype=torch.float64)
        for x, _, _ in self.ordered_blocks():
            x = x.to(torch.float64).permute(2, 0, 1, 3).reshape(self.n_mels, -1)
            total += x.sum(dim=1)
            total_sq += x.square().sum(dim=1)
        count = self.n_samples * self.n_frames
        mean = total / count
        std = (total_sq / count - mean.square()).clamp_min(0).sqrt()
        return mean.float(), std.float()

    def file_summaries(self) -> np.ndarray:
        """Per file, per-band mean and std of its segments (``leak_detection.features.familiarity``)."""
        blocks = (x for x, _, _ in self.ordered_blocks())
        return file_summaries(blocks, self.long_per_file * self.n_short * self.n_frames, self.n_mels)

    def _blocks(self) -> list[tuple[np.ndarray, np.ndarray, int]]:
        """``(starts, stops, first local long segment)`` of reads of at most one block."""
        blocks = []
        local = 0
        for a, b in zip(*_merge_ranges(self._starts, self._stops), strict=True):
            for s in range(a, b, self.block_long_segments):
                e = min(s + self.block_long_segments, b)
                blocks.append((np.array([s]), np.array([e]), local))
                local += e - s
        return blocks

    def _block_batch(self, starts, stops, first_local: int) -> Batch:
        rows = read_row_ranges(self.store.segments_mel, starts, stops)
        n_rows = rows.shape[0]
        long_slice = slice(first_local, first_local + n_rows)
        targets = torch.from_numpy(np.repeat(self.long_targets[long_slice], self.n_short))
        is_leak = torch.from_numpy(np.repeat(self.long_is_leak[long_slice], self.n_short))
        return self._as_samples(rows), targets, is_leak

    def ordered_blocks(self, block_samples: int = 65536) -> Iterator[Batch]:
        """All segments in file order (for scoring), in pieces of at most ``block_samples``."""
        if self._features is not None:
            for s in range(0, self.n_samples, block_samples):
                e = s + block_samples
                yield self._features[s:e], self._targets[s:e], self._is_leak[s:e]
            return
        for starts, stops, first in self._blocks():
            yield self._block_batch(starts, stops, first)

    def shuffled_batches(self, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        """One epoch of batches in an order fixed by ``generator``; every segment once."""
        if self._features is not None:
            order = torch.randperm(self.n_samples, generator=generator)
            for s in range(0, self.n_samples, batch_size):
                idx = order[s : s + batch_size]
                yield self._features[idx], self._targets[idx], self._is_leak[idx]
            return
        yield from self._streamed_batches(batch_size, generator)

    def _streamed_batches(self, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        # Blocks are read in a shuffled order and pooled a few at a time before
        # shuffling, so that a batch mixes many recordings, not one block's few.
        blocks = self._blocks()
        block_order = torch.randperm(len(blocks), generator=generator).tolist()
        carry: list[Batch] = []
        for g in range(0, len(block_order), self.shuffle_blocks):
            parts = carry + [self._block_batch(*blocks[i]) for i in block_order[g : g + self.shuffle_blocks]]
            x, y, leak = (torch.cat(column) for column in zip(*parts, strict=True))
            mix = torch.randperm(x.shape[0], generator=generator)
            x, y, leak = x[mix], y[mix], leak[mix]
            n_full = x.shape[0] // batch_size * batch_size
            for s in range(0, n_full, batch_size):
                yield x[s : s + batch_size], y[s : s + batch_size], leak[s : s + batch_size]
            carry = [(x[n_full:], y[n_full:], leak[n_full:])]
        if carry and carry[0][0].shape[0]:
            yield carry[0]
