"""Long segments read on demand: the interface between a feature store and where its rows live.

``MelFeatureStore.segments_mel`` is either an array in memory or a ``RowReader``, an
array-like over a file that reads ranges of long segments when asked for them
(``leak_detection.features.lazy_rows.H5Rows``). The batches and the store's finiteness
check go through ``read_row_ranges`` and ``RowReader.non_finite_rows``, so that a reader
on disk reads many ranges in one opening of its file and checks the store block by block.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class RowReader(Protocol):
    """Rows along the first axis of an array that stays where it is stored.

    Indexing (``rows[i]``, ``rows[a:b]``) and ``np.asarray(rows)`` read and return numpy
    arrays of ``dtype``; the shape and dtype are known without reading.
    """

    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def ndim(self) -> int: ...

    def __len__(self) -> int: ...

    def __getitem__(self, key: Any) -> np.ndarray: ...

    def read_rows(self, starts: Any, stops: Any) -> np.ndarray:
        """Rows ``starts[k]:stops[k]`` for every ``k``, concatenated in that order."""
        ...

    def non_finite_rows(self, block_rows: int) -> np.ndarray:
        """Indices of the rows holding a NaN or an infinity, read ``block_rows`` at a time."""
        ...


def read_row_ranges(segments: np.ndarray | RowReader, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Rows ``starts[k]:stops[k]`` of ``segments`` for every ``k``, concatenated in that order."""
    if isinstance(segments, RowReader):
        return segments.read_rows(starts, stops)
    return np.concatenate([segments[a:b] for a, b in zip(starts, stops, strict=True)], axis=0)
