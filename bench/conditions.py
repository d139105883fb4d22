"""How busy the machine was while a section ran.

Timings on a shared machine move with other people's work, and torch's intra-op
threads suffer most: a parallel region waits for its slowest thread, and a thread
that shares its core with another process may wait a whole scheduler slice. Each
section therefore records the load average and the cores that other processes kept
busy during it, so a reader can tell a slow result from a crowded machine.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from bench.machine import load_average

_PROC_STAT = Path("/proc/stat")


def _machine_busy_seconds() -> float | None:
    """CPU seconds all processes have spent busy since boot (first line of /proc/stat)."""
    if not _PROC_STAT.is_file():
        return None
    fields = _PROC_STAT.read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    """CPU seconds of this process and of the children it has waited for."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class SectionConditions:
    """Context manager: wall time, load average, and cores used by others during the block."""

    def __enter__(self) -> SectionConditions:
        self._load_before = load_average()
        self._wall = time.perf_counter()
        self._busy = _machine_busy_seconds()
        self._own = _own_cpu_seconds()
        return self

    def __exit__(self, *exc_info) -> None:
        self.wall_seconds = time.perf_counter() - self._wall
        busy = _machine_busy_seconds()
        own = _own_cpu_seconds() - self._own
        self.other_cores = None
        if busy is not None and self._busy is not None and self.wall_seconds > 0:
            self.other_cores = max(0.0, (busy - self._busy - own) / self.wall_seconds)
        self._load_after = load_average()

    def report(self) -> dict:
        return {
            "wall_seconds": round(self.wall_seconds, 2),
            "load_average_before": self._load_before,
            "load_average_after": self._load_after,
            "cores_busy_with_other_processes": None if self.other_cores is None else round(self.other_cores, 2),
        }
