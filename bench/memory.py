"""Peak resident memory of a training epoch on a store 1x and 10x the size.

A store larger than the memory budget must be streamed, so that training memory
stays flat as the data grows; each case runs in its own process (``ru_maxrss``).
Both runs stop after the same number of batches: a streamed epoch reaches its peak
within the first pooled blocks, and an in-memory one when the split is loaded.
"""

from __future__ import annotations

from pathlib import Path

from bench.settings import BenchSettings
from bench.stores import write_synthetic_store
from bench.subprocesses import train_epoch_in_child


def peak_memory_case(settings: BenchSettings, workdir: Path, scale: int) -> dict:
    """Write a store ``scale`` times the 1x size, train on it in a child, delete it."""
    store = workdir / f"memory_store_{scale}x.h5"
    info = write_synthetic_store(store, settings.store_files * scale, settings.long_per_file, settings.seed + scale)
    try:
        run = train_epoch_in_child(
            store,
            settings.validation_files,
            settings.memory_budget_mb,
            settings.batch_size,
            workdir / f"checkpoints_memory_{scale}x",
            max_batches=settings.memory_max_batches,
        )
    finally:
        store.unlink(missing_ok=True)
    return {"store": info, **run}


def measure_memory(settings: BenchSettings, workdir: Path) -> dict:
    small = peak_memory_case(settings, workdir, 1)
    large = peak_memory_case(settings, workdir, settings.memory_scale)
    return {
        "memory_budget_mb": settings.memory_budget_mb,
        "max_batches": settings.memory_max_batches,
        "note": (
            f"both runs stop after {settings.memory_max_batches} batches: peak memory is reached when the "
            "split is loaded (1x, in memory) or within the first pooled blocks (streamed)"
        ),
        "cases": {"1x": small, f"{settings.memory_scale}x": large},
        "peak_ratio": large["peak_rss_mb"] / small["peak_rss_mb"],
        "peak_above_imports_ratio": (large["peak_rss_mb"] - large["rss_after_imports_mb"])
        / (small["peak_rss_mb"] - small["rss_after_imports_mb"]),
    }
