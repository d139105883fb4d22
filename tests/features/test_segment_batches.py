import numpy as np
import pytest
import torch

from leak_detection.features.segment_batches import SegmentSource
from tests.conftest import synthetic_store


def source(budget_bytes, block_long_segments=4, files=(0, 2, 3, 9, 17, 30)):
    store, _ = synthetic_store()
    files = np.array(files)
    return store, SegmentSource(
        store=store,
        file_indices=files,
        file_targets=files % 2,
        file_is_leak=files < 8,
        memory_budget_bytes=budget_bytes,
        block_long_segments=block_long_segments,
        shuffle_blocks=2,
    )


def collect(batches):
    xs, ys, leaks = zip(*batches, strict=True)
    return torch.cat(xs), torch.cat(ys), torch.cat(leaks)


@pytest.mark.parametrize("budget", [10**9, 1])
def test_every_segment_appears_once_per_epoch_with_its_targets(budget):
    store, src = source(budget)
    assert src.in_memory is (budget > 1)
    x, y, leak = collect(src.shuffled_batches(7, torch.Generator().manual_seed(0)))
    expected = np.concatenate([store.file_segments(i) for i in (0, 2, 3, 9, 17, 30)]).reshape(-1, 1, 32, 1)
    assert x.shape == expected.shape

    # Same multiset of samples: sort rows by content and compare.
    def canonical(a):
        a = np.asarray(a).reshape(a.shape[0], -1)
        return a[np.lexsort(a.T[::-1])]

    np.testing.assert_array_equal(canonical(x.numpy()), canonical(expected))
    # Targets travel with their segment: leak files have the +12 dB mid-band bump.
    is_leak_by_content = x[:, 0, 8:20, 0].mean(dim=1) - x[:, 0, 20:, 0].mean(dim=1) > 6
    assert torch.equal(is_leak_by_content, leak)
    assert int(y.sum()) == sum(f % 2 for f in (0, 2, 3, 9, 17, 30)) * 6 * 3


@pytest.mark.parametrize("budget", [10**9, 1])
def test_ordered_blocks_follow_file_order(budget):
    store, src = source(budget)
    x, _, _ = collect(src.ordered_blocks(block_samples=10))
    expected = np.concatenate([store.file_segments(i) for i in (0, 2, 3, 9, 17, 30)]).reshape(-1, 1, 32, 1)
    np.testing.assert_array_equal(x.numpy(), expected)
    np.testing.assert_array_equal(src.local_offsets, np.arange(7) * 6)


def test_the_order_is_fixed_by_the_generator_and_changes_between_epochs():
    _, src = source(1)
    first = collect(src.shuffled_batches(16, torch.Generator().manual_seed(3)))[0]
    again = collect(src.shuffled_batches(16, torch.Generator().manual_seed(3)))[0]
    other = collect(src.shuffled_batches(16, torch.Generator().manual_seed(4)))[0]
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_normalisation_statistics_match_numpy():
    store, src = source(1)
    rows = np.concatenate([store.file_segments(i) for i in (0, 2, 3, 9, 17, 30)])
    mean, std = src.mean_std()
    np.testing.assert_allclose(mean.numpy(), rows.mean(axis=(0, 1, 3)), rtol=1e-5)
    np.testing.assert_allclose(std.numpy(), rows.std(axis=(0, 1, 3)), rtol=1e-4)


class CountingRows:
    """A ``RowReader`` over an array in memory that records the ranges asked of it."""

    def __init__(self, rows: np.ndarray) -> None:
        self.rows, self.shape, self.dtype, self.ndim = rows, rows.shape, rows.dtype, rows.ndim
        self.reads: list[list[tuple[int, int]]] = []

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key):
        return self.rows[key]

    def read_rows(self, starts, stops) -> np.ndarray:
        self.reads.append(list(zip(starts.tolist(), stops.tolist(), strict=True)))
        return np.concatenate([self.rows[a:b] for a, b in zip(starts, stops, strict=True)])

    def non_finite_rows(self, block_rows: int) -> np.ndarray:
        return np.empty(0, dtype=np.int64)


@pytest.mark.parametrize("budget", [10**9, 1])
def test_a_row_reader_is_read_through_its_ranges_and_gives_the_same_segments(budget):
    store, from_array = source(budget)
    expected = collect(from_array.ordered_blocks())[0]
    store.segments_mel = reader = CountingRows(store.segments_mel)
    from_reader = SegmentSource(
        store=store,
        file_indices=from_array.file_indices,
        file_targets=from_array.file_targets,
        file_is_leak=from_array.file_is_leak,
        memory_budget_bytes=budget,
        block_long_segments=4,
    )
    assert torch.equal(collect(from_reader.ordered_blocks())[0], expected)
    # Files 2 and 3 touch, so they are one range; each file has 6 long segments.
    merged = [(0, 6), (12, 24), (54, 60), (102, 108), (180, 186)]
    if from_reader.in_memory:
        assert reader.reads == [merged]
    else:
        assert all(len(ranges) == 1 and ranges[0][1] - ranges[0][0] <= 4 for ranges in reader.reads)
        assert sum(b - a for ranges in reader.reads for a, b in ranges) == 36
