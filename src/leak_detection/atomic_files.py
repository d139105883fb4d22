"""Write a file so that a crash leaves either the old one or the new one, never half of one.

Used by everything that writes something worth keeping: the feature store, the
model state_dicts and the training checkpoints.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target``.

    The caller writes (and closes) the temporary file inside the block. It is then
    flushed to disk and renamed over the target; on any exception, including an
    interrupt, it is removed and the target is left as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
        _fsync(tmp, os.O_RDONLY)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync(target.parent, os.O_RDONLY, best_effort=True)


def _fsync(path: Path, flags: int, best_effort: bool = False) -> None:
    try:
        fd = os.open(path, flags)
    except OSError:
        if best_effort:
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not best_effort:
            raise
    finally:
        os.close(fd)
