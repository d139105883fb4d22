"""Progress bars that suit where they are read: live on a terminal, a few whole lines in a log file.

tqdm redraws its line with carriage returns; in a file that becomes one ever-growing line. Off a
terminal the bar here writes a complete line at most every ``LOG_INTERVAL_S`` seconds instead, and
nothing at all for work that ends sooner.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from tqdm import tqdm

LOG_INTERVAL_S = 30.0
"""Seconds between progress lines in a log file: a long epoch says where it is, a short one once."""


class _WholeLines:
    """A stream for tqdm that turns each redraw into one line of its own."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> None:
        line = text.replace("\r", "").strip()
        if line:
            self._stream.write(line + "\n")

    def flush(self) -> None:
        self._stream.flush()


def progress(iterable: Any = None, **kwargs: Any) -> tqdm:
    """``tqdm(iterable, **kwargs)`` on a terminal; sparse whole lines on stderr otherwise."""
    stream = sys.stderr
    if stream is not None and hasattr(stream, "isatty") and stream.isatty():
        return tqdm(iterable, **kwargs)
    sparse = {
        **kwargs,
        "file": _WholeLines(stream),
        "mininterval": max(float(kwargs.get("mininterval", 0.1)), LOG_INTERVAL_S),
        "delay": LOG_INTERVAL_S,
        "ascii": True,
        "ncols": 100,
    }
    return tqdm(iterable, **sparse)
