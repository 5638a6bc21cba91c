"""Shard planning: bounded sizes, full coverage, small shards at the end."""

from __future__ import annotations

import pytest

from imagebatch.sharding import (
    DEFAULT_SHARD_SIZE,
    LARGEST_ADAPTIVE_SHARD,
    effective_shard_size,
    shard_bounds,
    shard_sizes,
)


@pytest.mark.parametrize(
    ("total", "concurrency", "cap"),
    [(0, 1, 50), (1, 10, 50), (23, 10, 50), (10_000, 10, 50), (12_345, 3, 7), (999, 1000, 50)],
)
def test_shards_cover_everything_once_and_respect_the_cap(total, concurrency, cap):
    sizes = shard_sizes(total, concurrency, cap)
    assert sum(sizes) == total
    assert all(1 <= size <= cap for size in sizes)
    bounds = shard_bounds(sizes)
    assert [b - a for a, b in bounds] == sizes
    assert all(bounds[i][1] == bounds[i + 1][0] for i in range(len(bounds) - 1))


def test_there_are_enough_shards_to_fill_the_window():
    assert len(shard_sizes(23, 10)) >= 10
    assert len(shard_sizes(5, 10)) == 5


def test_sizes_shrink_towards_the_end():
    sizes = shard_sizes(10_000, 10, 50)
    assert sizes[0] == 50 and min(sizes) >= 1 and max(sizes[-10:]) <= 5
    assert sizes == sorted(sizes, reverse=True)
    # The last max_concurrency shards together are small: the tail is short...
    assert sum(sizes[-10:]) <= 50
    # ...without dissolving into hundreds of tiny shards.
    assert len(sizes) < 300


def test_invalid_arguments():
    with pytest.raises(ValueError):
        shard_sizes(10, 0)


@pytest.mark.parametrize(
    ("total", "concurrency", "smallest"), [(100, 10, 5), (40, 2, 5), (1000, 10, 5), (25, 10, 2), (10, 10, 1)]
)
def test_small_batches_do_not_dissolve_into_one_image_shards(total: int, concurrency: int, smallest: int) -> None:
    """Each shard costs a sub-orchestration, two activities and two small blobs; a
    100-image batch on 10 lanes used to be cut into 45 shards, most of 1-3 images."""
    sizes = shard_sizes(total, concurrency)
    assert min(sizes[:-1]) >= smallest  # the very last shard takes whatever remains
    assert len(sizes) >= concurrency
    if total == 100:
        assert sizes == [5] * 20


def test_very_large_batches_get_larger_shards_not_more_of_them() -> None:
    """The parent's replay cost grows with its shard count; see FULL_SHARDS_TARGET."""
    assert effective_shard_size(10_000) == DEFAULT_SHARD_SIZE  # what bench.scale measured is unchanged
    assert effective_shard_size(30_000) == 100
    assert effective_shard_size(10_000_000) == LARGEST_ADAPTIVE_SHARD
    assert max(shard_sizes(30_000, 10, 50)) == 50  # an explicit SHARD_SIZE is a hard cap
    assert shard_sizes(10_000, 10) == shard_sizes(10_000, 10, DEFAULT_SHARD_SIZE)
    assert len(shard_sizes(10_000, 10)) == 244
    sizes = shard_sizes(30_000, 10)
    assert max(sizes) == 100 and sum(sizes) == 30_000
    assert len(sizes) == 344  # 50-image shards would have made 644


def test_a_proof_sample_is_spread_evenly_and_gets_lanes_of_its_own():
    from imagebatch.sharding import sample_positions, sample_shard_sizes

    assert sample_positions(12, 3) == [0, 4, 8]
    assert sample_positions(2, 5) == [0, 1] and sample_positions(0, 5) == []
    for total in range(1, 60):
        for sample in range(1, 20):
            picked = sample_positions(total, sample)
            assert len(set(picked)) == len(picked) == min(total, sample) and picked == sorted(picked)
    assert sample_shard_sizes(3, 2) == [2, 1] and sample_shard_sizes(7, 3, 2) == [2, 2, 2, 1]
    assert sample_shard_sizes(100, 10) == [10] * 10 and sample_shard_sizes(0, 4) == []
