"""``H5Rows`` are a ``RowReader``: the rows they read equal the rows of the array in memory."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from kedro.io.core import DatasetError

from leak_detection.features.lazy_rows import H5Rows, file_signature
from leak_detection.features.row_reader import RowReader, read_row_ranges
from leak_detection.features.store import non_finite_rows

ROWS = np.random.default_rng(0).normal(size=(23, 3, 8, 1)).astype(np.float32)


def lazy_rows(path, dtype="float32", stored=ROWS) -> H5Rows:
    with h5py.File(path, "w") as h5:
        h5.create_dataset("segments_mel", data=stored, chunks=(4, *stored.shape[1:]))
    with h5py.File(path, "r") as h5:
        signature = file_signature(h5, path)
    return H5Rows(path, "segments_mel", shape=stored.shape, dtype=dtype, file_signature=signature)


def test_lazy_rows_are_a_row_reader_and_an_array_is_not(tmp_path):
    assert isinstance(lazy_rows(tmp_path / "f.h5"), RowReader)
    assert not isinstance(ROWS, RowReader)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_lazy_rows_equal_the_rows_in_memory(tmp_path, dtype):
    rows = lazy_rows(tmp_path / "f.h5", dtype)
    in_memory = ROWS.astype(dtype)
    assert (rows.shape, rows.ndim, len(rows), rows.dtype) == (in_memory.shape, 4, 23, np.dtype(dtype))
    for key in (slice(None), slice(3, 11), slice(-4, None), slice(9, 2), 0, -1, np.int64(7)):
        np.testing.assert_array_equal(rows[key], in_memory[key])
    np.testing.assert_array_equal(np.asarray(rows), in_memory)


def test_ranges_read_through_the_interface_equal_for_both_kinds_of_segments(tmp_path):
    rows = lazy_rows(tmp_path / "f.h5")
    starts, stops = np.array([0, 5, 5, 12, 20]), np.array([3, 5, 9, 13, 23])
    np.testing.assert_array_equal(read_row_ranges(rows, starts, stops), read_row_ranges(ROWS, starts, stops))


def test_the_finiteness_check_finds_the_same_rows_on_disk_and_in_memory(tmp_path):
    stored = ROWS.copy()
    stored[[2, 17], 1, 3, 0] = [np.nan, np.inf]
    rows = lazy_rows(tmp_path / "f.h5", stored=stored)
    np.testing.assert_array_equal(non_finite_rows(rows, block_rows=5), [2, 17])
    np.testing.assert_array_equal(non_finite_rows(stored, block_rows=5), [2, 17])


def test_a_float32_value_beyond_float16_is_not_finite_when_read_as_float16(tmp_path):
    stored = ROWS.copy()
    stored[4, 0, 0, 0] = 1e5
    np.testing.assert_array_equal(lazy_rows(tmp_path / "f.h5", "float16", stored).non_finite_rows(8), [4])


def test_lazy_rows_refuse_a_file_changed_since(tmp_path):
    path = tmp_path / "f.h5"
    rows = lazy_rows(path)
    with h5py.File(path, "a") as h5:
        h5.create_dataset("appended", data=np.zeros(1000))  # a new size: no timestamp needed to tell
    with pytest.raises(DatasetError, match="replaced or modified"):
        rows.read_rows([0], [1])
