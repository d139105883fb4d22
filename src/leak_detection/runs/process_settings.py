"""Process-wide settings for CPU work, applied by the entry points and nowhere else.

A library call that changes its process (the C allocator, torch's thread pool)
changes it for every later call too, so each setting is made where a process starts:

- glibc keeps freed memory (``runs.cpu_allocator``; 1.13x a CPU training step):
  ``apply_process_settings``, called by ``hooks.ProcessSettingsHook`` (``kedro run``,
  ``leak-detect predict``, a notebook's session), by ``console.main`` (``leak-detect``)
  and by the bench's entry points.
- torch intra-op threads in the main process: torch's default (one per core, or
  ``OMP_NUM_THREADS``), left as torch sets it; ``apply_process_settings`` logs it.
- torch intra-op threads in a front-end worker: 1, set by the worker's initializer
  (``audio.analysis_pool``).
- torch intra-op threads while the front end runs in the main process
  (``extraction.workers: 1``, or too few files for a pool): 1, restored afterwards
  (``audio.analysis_pool`` with ``torch_threads``).

The last is the one setting a library call makes, for as long as the call runs: the
process is then the front end's only worker. Two threads cannot keep one file's small
FFTs busy, and with another busy process on the machine they made extraction up to ten
times slower (``bench/README.md``, "Extraction: workers and a busy machine"); the
features are the same bytes either way. Library functions such as ``predict_segments``
and ``fit`` change none of these.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from leak_detection.runs.cpu_allocator import keep_freed_memory

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProcessSettings:
    """What an entry point's process runs with."""

    freed_memory_kept: bool  # False where the C library is not glibc
    torch_threads: int


def apply_process_settings() -> ProcessSettings:
    """Apply the process-wide settings; idempotent, so every entry point may call it."""
    settings = ProcessSettings(freed_memory_kept=keep_freed_memory(), torch_threads=torch.get_num_threads())
    logger.debug("process settings: %s", settings)
    return settings


@contextlib.contextmanager
def torch_threads(n_threads: int) -> Iterator[None]:
    """Run the enclosed work with ``n_threads`` torch intra-op threads, then restore the count."""
    before = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
