"""Training throughput: the project's loop against what users write first, and against the roofline.

The baseline is the usual first attempt: a ``Dataset`` whose ``__getitem__`` reads one
short segment from HDF5, a shuffling ``DataLoader``, and the plain layers
(``fast_cpu_ops=False``: 3x3 ``Conv2d``, adaptive pooling). The roofline is the
machine's own large-matmul rate divided into the arithmetic the project's fast path
actually performs per sample, so ``roofline_fraction`` says how much of the CPU the
loop turns into useful work.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from bench.settings import BenchSettings
from bench.stores import write_synthetic_store
from bench.subprocesses import train_epoch_in_child
from leak_detection.labels import LEAK
from leak_detection.model.network import LeakCNNMulti
from leak_detection.training.loss import LeakLoss

BACKWARD_FACTOR = 3
"""Forward + backward ~= 3x forward: backward computes input and weight gradients."""


# --- the roofline ---------------------------------------------------------------------------


def peak_matmul_gflops(sizes: tuple[int, ...], repeats: int) -> dict:
    """Best fp32 GFLOP/s of ``torch.matmul`` on large square matrices: what this CPU can do."""
    best, per_size = 0.0, {}
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.matmul(a, b)  # warm-up: thread pool, page faults
        fastest = min(_timed(torch.matmul, a, b) for _ in range(repeats))
        per_size[n] = 2 * n**3 / fastest / 1e9
        best = max(best, per_size[n])
    return {"peak_gflops": best, "gflops_by_size": per_size, "repeats": repeats}


def _timed(fn, *args) -> float:
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


MULTIPLY_ADD_LAYERS = ("conv1", "conv2", "conv3", "fc", "head", "leak_aux")
"""The keys of ``fast_path_forward_flops`` that count multiply-adds; the others are elementwise."""


def fast_path_forward_flops(model: LeakCNNMulti, n_mels: int) -> dict[str, int]:
    """FLOPs per sample of the layers ``LeakCNNMulti.forward`` runs in training on one-frame input.

    Multiply-adds count 2; bias, ReLU, max-pool comparisons and dropout count 1 per
    element. Each 3x3 conv runs as a 1-D conv of its middle column (3 taps), and in
    training (dropout active) fc sees all 2048 inputs: no folding.
    """
    rows = n_mels
    flops = {"normalise": 2 * rows}
    for name, conv, pooled in (
        ("conv1", model.conv1, False),
        ("conv2", model.conv2, True),
        ("conv3", model.conv3, True),
    ):
        flops[name] = 2 * conv.in_channels * conv.kernel_size[0] * conv.out_channels * rows
        flops[f"{name}_bias_relu"] = 2 * conv.out_channels * rows
        if pooled:
            rows //= 2
            flops[f"{name}_maxpool"] = conv.out_channels * rows
    flops["dropout"] = model.fc.in_features
    flops["fc"] = 2 * model.fc.in_features * model.fc.out_features
    flops["fc_bias_relu"] = 2 * model.fc.out_features
    for name in ("head", "leak_aux"):
        layer = getattr(model, name)
        if layer is not None:
            flops[name] = 2 * layer.in_features * layer.out_features
            flops[f"{name}_bias"] = layer.out_features
    return flops


def torch_counted_flops(model: LeakCNNMulti, n_mels: int, batch: int = 8) -> dict[str, float]:
    """Multiply-add FLOPs per sample as ``torch.utils.flop_counter`` counts them, forward and
    forward + backward: a check on the analytic count and on the 3x rule."""
    from torch.utils.flop_counter import FlopCounterMode

    model = model.train()
    x = torch.randn(batch, 1, n_mels, 1)
    with FlopCounterMode(display=False) as forward:
        model(x)
    with FlopCounterMode(display=False) as both:
        logits, _ = model(x)
        logits.sum().backward()
    model.zero_grad(set_to_none=True)
    return {"forward": forward.get_total_flops() / batch, "forward_backward": both.get_total_flops() / batch}


# --- the straightforward baseline -----------------------------------------------------------


class H5ShortSegments(Dataset):
    """One short segment per ``__getitem__``, read from the HDF5 store: what users write first."""

    def __init__(self, path: Path, n_long: int) -> None:
        with h5py.File(path, "r") as h5:
            offsets, labels = h5["file_offsets"][...], h5["labels"][...]
            leak_index = json.loads(h5.attrs["label_names"]).index(LEAK)
            self.n_short = int(h5["segments_mel"].shape[1])
        self.long_is_leak = np.repeat(labels == leak_index, np.diff(offsets))[:n_long]
        self.n_long = n_long
        self.path = path
        self._segments = None

    def __len__(self) -> int:
        return self.n_long * self.n_short

    def __getitem__(self, i: int):
        if self._segments is None:  # opened on first use, so that worker processes open their own
            self._segments = h5py.File(self.path, "r")["segments_mel"]
        row, short = divmod(i, self.n_short)
        is_leak = bool(self.long_is_leak[row])
        return torch.from_numpy(self._segments[row, short]).unsqueeze(0), int(is_leak), is_leak


def baseline_samples_per_second(store: Path, n_train_long: int, settings: BenchSettings) -> dict:
    """Per-sample h5py reads + DataLoader(batch, shuffle) + the plain layers, same optimiser and loss."""
    torch.manual_seed(0)
    model = LeakCNNMulti(n_classes=2, fast_cpu_ops=False).train()
    loss_fn = LeakLoss([1.0, 1.0])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    loader = DataLoader(
        H5ShortSegments(store, n_train_long),
        batch_size=settings.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
    )
    batches = iter(loader)

    def step(x, y, leak) -> None:
        logits, aux = model(x)
        loss = loss_fn(logits, aux, y, leak)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    for _ in range(settings.baseline_warmup_batches):
        step(*next(batches))
    data_s = compute_s = 0.0
    samples = 0
    for _ in range(settings.baseline_batches):
        started = time.perf_counter()
        x, y, leak = next(batches)
        loaded = time.perf_counter()
        step(x, y, leak)
        data_s += loaded - started
        compute_s += time.perf_counter() - loaded
        samples += y.shape[0]
    return {
        "samples_per_second": samples / (data_s + compute_s),
        "timed_batches": settings.baseline_batches,
        "samples_timed": samples,
        "data_loading_seconds": data_s,
        "compute_seconds": compute_s,
        "data_loading_share": data_s / (data_s + compute_s),
        "num_workers": loader.num_workers,
    }


# --- the section ----------------------------------------------------------------------------


def measure_training(settings: BenchSettings, workdir: Path) -> dict:
    store = workdir / "train_store_1x.h5"
    store_info = write_synthetic_store(store, settings.store_files, settings.long_per_file, settings.seed)
    n_train_long = (settings.store_files - settings.validation_files) * settings.long_per_file
    # A budget far above the split: the project holds it in memory, as it would at this size.
    project = train_epoch_in_child(
        store,
        settings.validation_files,
        budget_mb=2048,
        batch_size=settings.batch_size,
        checkpoint_dir=workdir / "checkpoints_training",
    )
    baseline = baseline_samples_per_second(store, n_train_long, settings)
    model = LeakCNNMulti(n_classes=2)
    flops = fast_path_forward_flops(model, n_mels=32)
    forward = sum(flops.values())
    per_sample = BACKWARD_FACTOR * forward
    peak = peak_matmul_gflops(settings.matmul_sizes, settings.matmul_repeats)
    roofline_sps = peak["peak_gflops"] * 1e9 / per_sample
    return {
        "store": store_info,
        "project": {"what": "leak_detection.training.loop.fit, 1 epoch, SegmentSource in memory", **project},
        "baseline": {
            "what": "h5py per-sample Dataset + DataLoader(shuffle) + plain layers (fast_cpu_ops=False: Conv2d 3x3)",
            **baseline,
        },
        "roofline": {
            **peak,
            "forward_flops_per_sample": forward,
            "training_flops_per_sample": per_sample,
            "backward_factor": BACKWARD_FACTOR,
            "forward_flops_by_layer": flops,
            "torch_flop_counter_multiply_adds": torch_counted_flops(model, n_mels=32),
            "roofline_samples_per_second": roofline_sps,
        },
        "speedup_vs_baseline": project["samples_per_second"] / baseline["samples_per_second"],
        "roofline_fraction": project["samples_per_second"] * per_sample / (peak["peak_gflops"] * 1e9),
    }
