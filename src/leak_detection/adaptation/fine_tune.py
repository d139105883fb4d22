"""What a model is fine-tuned on at a new site: its pseudo-labelled segments beside a rehearsal of its training.

Fine-tuning on the new site alone would let the model forget the sites it was trained on; mixing in a
sample of its own training segments (rehearsal) keeps them in view. Pseudo-labels belong to long
segments, not files, so every long segment here is its own entry: one recording's segments may carry
different labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from leak_detection.features.row_reader import read_row_ranges
from leak_detection.features.segment_batches import SegmentSource
from leak_detection.features.store import MelFeatureStore


@dataclass(frozen=True)
class LabelledSegments:
    """Long segments with their target (index in the model's outputs) and whether each is a leak."""

    segments: np.ndarray  # [n, n_short, n_mels, n_frames]
    targets: np.ndarray  # [n] int64
    is_leak: np.ndarray  # [n] bool

    def __len__(self) -> int:
        return len(self.targets)

    def __add__(self, other: LabelledSegments) -> LabelledSegments:
        dtype = np.promote_types(self.segments.dtype, other.segments.dtype)
        return LabelledSegments(
            np.concatenate([self.segments.astype(dtype, copy=False), other.segments.astype(dtype, copy=False)]),
            np.concatenate([self.targets, other.targets]),
            np.concatenate([self.is_leak, other.is_leak]),
        )

    def source(self, label_names: list[str], memory_budget_bytes: int) -> SegmentSource:
        n = len(self)
        store = MelFeatureStore(
            segments_mel=self.segments,
            file_offsets=np.arange(n + 1),
            labels=self.targets,
            file_ids=[f"segment {i}" for i in range(n)],
            groups=[f"segment {i}" for i in range(n)],
            label_names=label_names,
        )
        return SegmentSource(
            store=store,
            file_indices=np.arange(n),
            file_targets=self.targets,
            file_is_leak=self.is_leak,
            memory_budget_bytes=memory_budget_bytes,
        )

    def class_weights(self, n_classes: int) -> tuple[list[float], float]:
        """Training's loss weights for these segments: ``n / (n_classes * n_class)`` and ``n_neg / n_pos``.

        A class with no segments here gets weight 1; it never meets the loss.
        """
        counts = np.bincount(self.targets, minlength=n_classes)
        weights = [len(self) / (n_classes * c) if c else 1.0 for c in counts]
        n_leak = int(self.is_leak.sum())
        return weights, (len(self) - n_leak) / n_leak if n_leak else 1.0


def rehearsal_sample(
    store: MelFeatureStore, train_targets: pd.DataFrame, n: int, leak_output_idx: int, seed: int
) -> LabelledSegments:
    """``n`` long segments drawn evenly from the training files (all of them when there are fewer)."""
    position = {fid: i for i, fid in enumerate(store.file_ids)}
    files = np.array([position[f] for f in train_targets["file_id"]])
    starts, stops = store.file_offsets[files], store.file_offsets[files + 1]
    owner = np.repeat(np.arange(len(files)), stops - starts)
    rows = np.concatenate([np.arange(a, b) for a, b in zip(starts, stops, strict=True)])
    chosen = np.sort(np.random.default_rng(seed).permutation(len(rows))[: min(n, len(rows))])
    targets = train_targets["target"].to_numpy(dtype=np.int64)[owner[chosen]]
    return LabelledSegments(
        segments=read_row_ranges(store.segments_mel, rows[chosen], rows[chosen] + 1),
        targets=targets,
        is_leak=targets == leak_output_idx,
    )
