"""Does a recording sound like anything the model was trained on?

Demo-trained models called 0 of 15 real leaks LEAK, and nothing told the user that the
field audio sat 15-30 dB below anything the model had heard. A model therefore keeps a
compact summary of its training files: each file is described by the mean and the
standard deviation of every mel band over its segments (what the model sees), and the
training files' spread of those 2 x n_mels numbers is stored in ``model_meta.json``. A
file's *unfamiliarity* is the root-mean-square z-score of its summary against that
spread: about 1 for a typical training file, far above for audio unlike all of them.
The flag threshold is the 99th percentile of the model's own validation files, so about
1 % of files like the validation data are flagged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

FLAGGED_SHARE = 0.01
STD_FLOOR = 1e-3
"""dB: a band that never varies in training must not make every other file infinitely unfamiliar."""


def file_summaries(blocks: Iterable[torch.Tensor], samples_per_file: np.ndarray, n_mels: int) -> np.ndarray:
    """``[n_files, 2 * n_mels]``: per-band mean and standard deviation of each file's segments.

    ``blocks`` are the files' short segments in file order, in pieces of any size.
    """
    samples_per_file = np.asarray(samples_per_file, dtype=np.int64)
    file_of_sample = np.repeat(np.arange(samples_per_file.size), samples_per_file)
    sums = np.zeros((samples_per_file.size, n_mels))
    squares = np.zeros((samples_per_file.size, n_mels))
    start = 0
    for block in blocks:
        x = np.asarray(block, dtype=np.float64).reshape(-1, n_mels)
        owner = file_of_sample[start : start + x.shape[0]]
        np.add.at(sums, owner, x)
        np.add.at(squares, owner, x * x)
        start += x.shape[0]
    counts = np.maximum(samples_per_file, 1)[:, None]
    mean = sums / counts
    std = np.sqrt(np.maximum(squares / counts - mean * mean, 0.0))
    return np.concatenate([mean, std], axis=1)


def recording_summary(features: np.ndarray) -> np.ndarray:
    """The summary of one recording's ``[n_long, n_short, n_mels, n_frames]`` features."""
    n_mels = features.shape[2]
    x = np.asarray(features, dtype=np.float64).transpose(0, 1, 3, 2).reshape(-1, n_mels)
    return np.concatenate([x.mean(axis=0), x.std(axis=0)])


@dataclass(frozen=True)
class Familiarity:
    """The training files' spread of summaries, and the flag threshold."""

    mean: np.ndarray
    std: np.ndarray
    threshold: float

    def unfamiliarity(self, summaries: np.ndarray) -> np.ndarray:
        z = (np.atleast_2d(summaries) - self.mean) / self.std
        return np.sqrt(np.mean(z * z, axis=1))

    def is_unfamiliar(self, summaries: np.ndarray) -> np.ndarray:
        return self.unfamiliarity(summaries) > self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "statistic": "per-band mean and standard deviation of a file's log-mel segments",
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
            "threshold": float(self.threshold),
            "threshold_rule": f"{100 * (1 - FLAGGED_SHARE):.0f}th percentile of the model's validation files",
        }

    @classmethod
    def from_meta(cls, model_meta: dict[str, Any]) -> Familiarity | None:
        """None for a model saved before familiarity was recorded."""
        stats = model_meta.get("familiarity")
        if not stats:
            return None
        return cls(np.asarray(stats["mean"]), np.asarray(stats["std"]), float(stats["threshold"]))


def fit_familiarity(train_summaries: np.ndarray, validation_summaries: np.ndarray) -> Familiarity:
    spread = Familiarity(
        mean=train_summaries.mean(axis=0),
        std=np.maximum(train_summaries.std(axis=0), STD_FLOOR),
        threshold=np.inf,
    )
    distances = spread.unfamiliarity(validation_summaries)
    return Familiarity(spread.mean, spread.std, float(np.quantile(distances, 1 - FLAGGED_SHARE)))


def unfamiliar_advice(n_unfamiliar: int, n_files: int, threshold: float | None = None) -> str:
    """The one line that ends a prediction run with unfamiliar recordings."""
    which = f"unfamiliarity above {threshold:.2f}" if threshold is not None else "column `unfamiliar`"
    return (
        f"{n_unfamiliar} of {n_files} recordings sound unlike the model's training data ({which}): check their "
        "calls by ear, and to use the model there, adapt it to the site or label some of its recordings and "
        "retrain with them"
    )
