"""Run the front end over many recordings: one single-threaded worker process per core.

One recording's front end is a chain of small calls (decode a block, resample it, a
few hundred 512-point FFTs) that two intra-op threads cannot keep busy: each parallel
region waits for its slowest thread, so on a shared machine a second busy process
made extraction ten times slower. Files are independent, so the cores share the work
one file at a time instead, each worker with one torch thread (set by its
initializer, the worker's entry point); the serial path runs with one thread too,
restored afterwards (``runs/process_settings.py`` lists every process-wide setting).

Extraction (training) and prediction (new recordings) both read through here.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import torch

from leak_detection.audio.front_end import AnalysedRecording, FrontEndConfig, analyse_recording
from leak_detection.audio.recordings import RecordingCollection, StorageUnreachable
from leak_detection.runs.process_settings import torch_threads
from leak_detection.runs.progress import progress

# Below this many files a pool costs more to start than it saves.
MIN_FILES_PER_WORKER = 4
FRONT_END_THREADS = 1


@dataclass(frozen=True)
class FileAnalysis:
    """One recording's front-end result: ``analysed`` is None when it could not be decoded."""

    file_id: str
    analysed: AnalysedRecording | None
    reason: str | None  # why the recording cannot be used; None when it can


def available_cores() -> int:
    """Cores this process may run on (a container's CPU set, not the host's core count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolve_workers(workers: int | str, n_files: int) -> int:
    """``"auto"`` is one worker per available core; never more workers than useful."""
    wanted = available_cores() if workers == "auto" else int(workers)
    return max(1, min(wanted, n_files // MIN_FILES_PER_WORKER))


def analyse_file(recordings: RecordingCollection, file_id: str, config: FrontEndConfig) -> FileAnalysis:
    """One file's analysis; a store out of reach stops the run rather than make this file and the next unreadable."""
    try:
        rate, blocks = recordings.open_blocks(file_id)
        with contextlib.closing(blocks):
            analysed = analyse_recording(blocks, rate, config)
    except StorageUnreachable:
        raise
    except Exception as exc:  # noqa: BLE001 - every decoder failure is "unreadable"
        return FileAnalysis(file_id, None, f"unreadable: {type(exc).__name__}: {exc}")
    return FileAnalysis(file_id, analysed, analysed.reason)


def analyse_files(
    recordings: RecordingCollection,
    file_ids: Sequence[str],
    config: FrontEndConfig,
    *,
    workers: int | str = "auto",
    desc: str = "Extracting features",
) -> Iterator[FileAnalysis]:
    """Each file's analysis, in the order of ``file_ids``, with a progress bar.

    A consumer may stop early (``extraction.strict`` on a bad file): the workers are
    then stopped and files not yet started are never read.
    """
    n_workers = resolve_workers(workers, len(file_ids))
    if n_workers == 1:
        with torch_threads(FRONT_END_THREADS):
            for file_id in progress(file_ids, desc=desc, unit="file"):
                yield analyse_file(recordings, file_id, config)
        return
    pool = ProcessPoolExecutor(
        n_workers,
        mp_context=_fork_context(),
        initializer=_start_worker,
        initargs=(recordings, config),
    )
    try:
        chunk = max(1, len(file_ids) // (n_workers * 32))
        results = pool.map(_analyse_in_worker, file_ids, chunksize=chunk)
        yield from progress(results, total=len(file_ids), desc=f"{desc} ({n_workers} processes)", unit="file")
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _fork_context() -> multiprocessing.context.BaseContext:
    # Forked workers start in milliseconds with the project already imported; a
    # spawned worker would spend seconds importing torch before its first file.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


_worker_state: tuple[RecordingCollection, FrontEndConfig] | None = None


def _start_worker(recordings: RecordingCollection, config: FrontEndConfig) -> None:
    global _worker_state
    torch.set_num_threads(FRONT_END_THREADS)
    _worker_state = (recordings, config)


def _analyse_in_worker(file_id: str) -> FileAnalysis:
    recordings, config = _worker_state
    return analyse_file(recordings, file_id, config)
