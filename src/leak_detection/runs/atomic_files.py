"""Write a file so that a crash leaves either the old one or the new one, never half of one.

Used by everything the project writes: the feature store, the model state_dicts,
the training checkpoints and, through the catalog's datasets, every JSON, CSV,
Markdown, PNG and ONNX file. A disk that fills up mid-write would otherwise leave a
0-byte ``model_meta.json`` that ``leak-detect predict`` then fails to parse.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


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


@contextlib.contextmanager
def atomic_open(target: str | os.PathLike, mode: str = "w", **open_args: Any) -> Iterator[IO]:
    """``open(target, mode, **open_args)`` for writing a whole file, through ``atomic_path``."""
    if "w" not in mode:
        raise ValueError(f"atomic_open replaces a whole file (mode 'w' or 'wb'), got mode {mode!r}")
    # "x": never write into another writer's temporary file.
    with atomic_path(target) as tmp, open(tmp, mode.replace("w", "x"), **open_args) as handle:
        yield handle


def open_for_saving(fs: Any, protocol: str, path: str, open_args: dict[str, Any]) -> contextlib.AbstractContextManager:
    """What a kedro-datasets ``save`` opens: ``fs.open(path, **open_args)``, made atomic on local disk.

    Object stores already publish an object only when its upload completes; an
    appending mode cannot be atomic by renaming, so both keep fsspec's own ``open``.
    """
    if protocol == "file" and "w" in open_args.get("mode", "w"):
        return atomic_open(path, **open_args)
    return fs.open(path, **open_args)


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
