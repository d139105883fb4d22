"""Run a model over many segments: shared by validation during training, evaluation and prediction."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from leak_detection.decisions.scoring import segment_leak_probability

# On a CPU the model runs on slices of at most this many segments. At 8192 segments each
# convolution's output is 64 MB, twice a typical L3 cache, and every layer streams through
# DRAM: slices of 512-1024 measured 2-3x more segments per second (bench/README.md).
CPU_MODEL_SLICE = 1024


@dataclass(frozen=True)
class SegmentPredictions:
    """Per short segment, in input order."""

    class_probabilities: np.ndarray  # [n, n_classes]
    leak_probability: np.ndarray  # [n]
    mean_loss: float | None
    accuracy: float | None


def autocast_context(device: torch.device, amp_dtype: torch.dtype | None):
    if amp_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=amp_dtype)


@torch.inference_mode()
def predict_segments(
    model: nn.Module,
    blocks: Iterable[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]],
    leak_output_idx: int,
    *,
    batch_size: int = 8192,
    device: torch.device | str = "cpu",
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    loss_fn: Callable | None = None,
) -> SegmentPredictions:
    """Class and leak probabilities of every segment; loss and accuracy when targets are given.

    ``batch_size`` is how many segments move to the device at once; on a CPU the model
    itself sees at most ``CPU_MODEL_SLICE`` of them per call. The process's allocator
    and thread settings are the entry point's (``leak_detection.runs.process_settings``).
    """
    device = torch.device(device)
    if device.type == "cpu":
        batch_size = min(batch_size, CPU_MODEL_SLICE)
    was_training = model.training
    model.eval()
    class_probs, leak_probs = [], []
    loss_sum, correct, n_seen = 0.0, 0, 0
    try:
        for x_block, y_block, leak_block in blocks:
            for s in range(0, x_block.shape[0], batch_size):
                x = x_block[s : s + batch_size].to(device, non_blocking=True)
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                with autocast_context(device, amp_dtype):
                    logits, aux = model(x)
                logits = logits.float()
                aux = aux.float() if aux is not None else None
                class_probs.append(torch.softmax(logits, dim=1).cpu())
                leak_probs.append(segment_leak_probability(logits, aux, leak_output_idx).cpu())
                if y_block is not None:
                    y = y_block[s : s + batch_size].to(device)
                    correct += int((logits.argmax(dim=1) == y).sum())
                    n_seen += y.shape[0]
                    if loss_fn is not None:
                        leak = leak_block[s : s + batch_size].to(device)
                        loss_sum += float(loss_fn(logits, aux, y, leak)) * y.shape[0]
    finally:
        model.train(was_training)
    n_classes = getattr(model, "n_classes", 0)
    return SegmentPredictions(
        class_probabilities=torch.cat(class_probs).numpy() if class_probs else np.zeros((0, n_classes)),
        leak_probability=torch.cat(leak_probs).numpy() if leak_probs else np.zeros(0),
        mean_loss=loss_sum / n_seen if n_seen and loss_fn is not None else None,
        accuracy=correct / n_seen if n_seen else None,
    )
