"""One epoch of the project's training loop (``leak_detection.training.loop.fit``) in a fresh process.

Peak resident memory belongs to a whole process, so every measured epoch runs in a
process of its own and reports ``ru_maxrss`` together with the throughput that
``fit`` itself recorded. Prints one JSON object on stdout.

    python -m bench.train_child --store S.h5 --validation-files 30 --budget-mb 256 --checkpoint-dir D
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import time
from pathlib import Path

import torch

from bench.stores import load_store, train_and_validation
from leak_detection.features.segment_batches import SegmentSource
from leak_detection.labels import leak_output_idx
from leak_detection.model.network import LeakCNNMulti
from leak_detection.runs.process_settings import apply_process_settings
from leak_detection.training.config import TrainerConfig
from leak_detection.training.loop import fit
from leak_detection.training.loss import LeakLoss


class FirstBatches:
    """A ``SegmentSource`` whose epoch ends after ``max_batches`` batches.

    Peak memory is reached within the first pooled blocks of a streamed epoch, so
    a capped epoch measures it at a fraction of the time; ``fit`` sees the source's
    usual size and so keeps its usual schedule.
    """

    def __init__(self, source: SegmentSource, max_batches: int) -> None:
        self._source = source
        self._max_batches = max_batches

    def __getattr__(self, name: str):
        return getattr(self._source, name)

    def shuffled_batches(self, batch_size: int, generator: torch.Generator):
        return itertools.islice(self._source.shuffled_batches(batch_size, generator), self._max_batches)


def peak_rss_mb() -> float:
    """This process's peak resident set size (``VmHWM``), in MiB.

    ``ru_maxrss`` would be the obvious reading, but Linux carries it across
    ``execve``: a child started from a parent holding 1 GB reports at least 1 GB.
    ``VmHWM`` belongs to the process's own address space, which starts at exec.
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return ru_maxrss_mb()


def ru_maxrss_mb() -> float:
    # KiB on Linux; includes the parent's peak when it was larger (see peak_rss_mb).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_epoch(
    store_path: Path,
    validation_files: int,
    budget_mb: float,
    batch_size: int,
    checkpoint_dir: Path,
    max_batches: int | None,
) -> dict:
    """Train a fresh binary ``LeakCNNMulti`` for one epoch (validation included) and report."""
    rss_after_imports = peak_rss_mb()
    store = load_store(store_path)
    train, validation = train_and_validation(store, validation_files, int(budget_mb * 2**20))
    rss_after_sources = peak_rss_mb()
    torch.manual_seed(0)
    model = LeakCNNMulti(n_classes=2)
    config = TrainerConfig.from_params(
        {
            "epochs": 1,
            "batch_size": batch_size,
            "device": "cpu",
            "memory_budget_mb": budget_mb,
            "checkpoint_dir": str(checkpoint_dir),
            "fresh_start": True,
        }
    )
    source = FirstBatches(train, max_batches) if max_batches else train
    started = time.perf_counter()
    result = fit(model, source, validation, LeakLoss([1.0, 1.0]), leak_output_idx("binary"), config, "bench")
    epoch = result.history[0]
    samples = train.n_samples if not max_batches else min(train.n_samples, max_batches * batch_size)
    return {
        "train_short_segments": train.n_samples,
        "samples_trained": samples,
        "max_batches": max_batches,
        "samples_per_second": epoch["samples_per_second"],
        "train_seconds": samples / epoch["samples_per_second"],
        "fit_seconds": time.perf_counter() - started,
        "streamed": not train.in_memory,
        "memory_budget_mb": budget_mb,
        "rss_after_imports_mb": rss_after_imports,
        "rss_after_loading_split_mb": rss_after_sources,
        "peak_rss_mb": peak_rss_mb(),
        "ru_maxrss_mb": ru_maxrss_mb(),
        "torch_threads": torch.get_num_threads(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--validation-files", type=int, required=True)
    parser.add_argument("--budget-mb", type=float, required=True)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--checkpoint-dir", type=Path, required=True)
    parser.add_argument("--max-batches", type=int, default=None)
    args = parser.parse_args(argv)
    # Process-wide settings, applied by this entry point as `kedro run` does: the epoch is timed as it runs there.
    apply_process_settings()
    report = run_epoch(
        args.store, args.validation_files, args.budget_mb, args.batch_size, args.checkpoint_dir, args.max_batches
    )
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
