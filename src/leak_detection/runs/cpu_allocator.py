"""Keep freed tensor memory in the process on a CPU, instead of handing it back to the kernel.

glibc serves each multi-megabyte activation of a training step with a fresh ``mmap``
and returns it with ``munmap`` when freed, so every step faults in the same pages
again: 5,000-10,000 page faults per batch of 1024, 10-15 % of a CPU training step in
the kernel (``bench/README.md``). Raising glibc's mmap and trim thresholds lets the
heap keep and reuse that memory, which is what tcmalloc or jemalloc would do; the
process's peak memory is unchanged, it is only not returned between steps. The entry
points apply it, once per process (``leak_detection.runs.process_settings``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging

logger = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 32 * 2**20  # glibc's largest allowed value on 64-bit systems
_TRIM_THRESHOLD = 2**30


@functools.cache
def keep_freed_memory() -> bool:
    """Raise glibc's thresholds once per process; False where the C library is not glibc."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False  # not glibc (macOS, Windows, musl without mallopt): nothing to tune
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    done = mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD) == 1 and mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD) == 1
    logger.debug("glibc mmap/trim thresholds raised for CPU tensors: %s", done)
    return done
