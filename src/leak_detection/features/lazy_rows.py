"""``H5Rows``: the long segments of a feature store file, read on demand.

A store loaded with ``load_args: {lazy: true}`` keeps its segments on disk; its
``segments_mel`` is an ``H5Rows``, the ``RowReader`` (``leak_detection.features.row_reader``)
that reads them from the HDF5 file when they are asked for. Read errors are Kedro's
``DatasetError`` naming the file, as the load that made the rows would raise.
"""

from __future__ import annotations

import operator
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from kedro.io.core import DatasetError

from leak_detection.features.store import non_finite_in


class H5Rows:
    """Rows of an HDF5 dataset read on demand: the lazy ``segments_mel`` of a
    ``MelFeatureStore``.

    Looks like the array it stands for (``shape``, ``ndim``, ``dtype``, ``size``,
    ``len``) and reads along the first axis: ``rows[i]`` and ``rows[a:b]`` (step 1)
    are one HDF5 read each, ``read_rows(starts, stops)`` one read per range, all
    converted to ``dtype`` and returned as numpy arrays; ``np.asarray(rows)`` reads
    everything.

    The file is opened for each read and closed after it, so an ``H5Rows`` holds no
    handle: it pickles and deep-copies as its path and shape, and works in worker
    processes. Each read first checks that the file is the one that was loaded
    (same inode, size and modification time); a replaced, modified or deleted file
    is refused with a ``DatasetError`` rather than read silently.
    """

    def __init__(
        self,
        filepath: str | os.PathLike,
        dataset: str,
        *,
        shape: tuple[int, ...],
        dtype: str | np.dtype,
        file_signature: tuple[int, ...],
    ) -> None:
        self.filepath = Path(filepath)
        self.dataset = dataset
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        self._file_signature = tuple(file_signature)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"H5Rows('{self.filepath}', '/{self.dataset}', shape={self.shape}, dtype={self.dtype.name})"

    def __getitem__(self, key: int | slice) -> np.ndarray:
        n = self.shape[0]
        if isinstance(key, slice):
            start, stop, step = key.indices(n)
            if step != 1:
                raise IndexError(f"H5Rows reads contiguous rows only (slice step 1); got step {step}.")
            return self.read_rows([start], [max(start, stop)])
        if isinstance(key, (bool, np.bool_)):
            raise TypeError("H5Rows takes an integer or a slice, not a boolean.")
        try:
            index = operator.index(key)
        except TypeError:
            raise TypeError(f"H5Rows takes an integer or a slice along axis 0; got {type(key).__name__}.") from None
        if not -n <= index < n:
            raise IndexError(f"row {index} is out of range for {n} rows of {self!r}.")
        index %= n
        return self.read_rows([index], [index + 1])[0]

    def read_rows(self, starts: Any, stops: Any) -> np.ndarray:
        """Rows ``starts[k]:stops[k]`` for every ``k``, concatenated in that order;
        one HDF5 read per non-empty range, all in one opening of the file."""
        starts = np.asarray(starts, dtype=np.int64)
        stops = np.asarray(stops, dtype=np.int64)
        if starts.ndim != 1 or starts.shape != stops.shape:
            raise ValueError(
                f"starts and stops must be 1-D and of equal length; got shapes {starts.shape} and {stops.shape}."
            )
        bad = np.flatnonzero((starts < 0) | (stops < starts) | (stops > self.shape[0]))
        if bad.size:
            k = int(bad[0])
            raise IndexError(f"row range {int(starts[k])}:{int(stops[k])} is not within 0:{self.shape[0]} of {self!r}.")
        lengths = stops - starts
        out = np.empty((int(lengths.sum()), *self.shape[1:]), dtype=self.dtype)
        if out.shape[0] == 0:
            return out
        with self._open() as h5:
            ds = h5[self.dataset]
            pos = 0
            for start, stop, length in zip(starts, stops, lengths, strict=True):
                if length:
                    # HDF5 converts to the output dtype during the read.
                    ds.read_direct(out, source_sel=np.s_[start:stop], dest_sel=np.s_[pos : pos + length])
                    pos += length
        return out

    def non_finite_rows(self, block_rows: int) -> np.ndarray:
        """Indices of the rows holding a NaN or an infinity, read ``block_rows`` at a time.

        Blocks are read as stored and checked by numpy: HDF5's own float16 to float32
        conversion took 520 ms of a 580 ms check of 500,000 rows; this takes about 70.
        """
        found = []
        with self._open() as h5:
            ds = h5[self.dataset]
            # A float32 store read as float16 turns values beyond 65504 into infinities.
            narrowed = np.dtype(ds.dtype).itemsize > self.dtype.itemsize
            for start in range(0, self.shape[0], block_rows):
                block = ds[start : start + block_rows]
                if narrowed:
                    with np.errstate(over="ignore"):  # the overflow is what is looked for
                        block = block.astype(self.dtype)
                found.append(start + np.flatnonzero(non_finite_in(block)))
        return np.concatenate(found) if found else np.empty(0, dtype=np.int64)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        if copy is False:
            raise ValueError("H5Rows cannot give an array without reading (copying) it.")
        rows = self[:]
        return rows if dtype is None else rows.astype(dtype, copy=False)

    def _open(self) -> h5py.File:
        path = self.filepath
        try:
            h5 = h5py.File(path, "r")
        except OSError as exc:
            raise DatasetError(
                f"Cannot read the lazily loaded mel feature store at {path}: {exc}. "
                f"A store loaded with lazy=True reads its file while in use; keep the "
                f"file in place or load it again."
            ) from exc
        if file_signature(h5, path) != self._file_signature:
            h5.close()
            raise DatasetError(
                f"The mel feature store at {path} was replaced or modified since it was "
                f"loaded with lazy=True; refusing to mix rows of two different files. "
                f"Load it again."
            )
        return h5


def file_signature(h5: h5py.File, path: Path) -> tuple[int, ...]:
    """Identity of the file ``h5`` has open: device, inode, size, mtime (ns)."""
    try:
        # The open file itself, so a rename in between cannot mislead.
        st = os.fstat(h5.id.get_vfd_handle())
    except (OSError, TypeError, ValueError):  # pragma: no cover - non-default drivers
        st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
