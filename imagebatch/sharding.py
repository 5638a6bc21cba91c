"""How a batch is cut into shards (lanes).

A shard is processed by its own sub-orchestration, one image after another,
and the parent keeps ``max_concurrency`` shards running. Each orchestration
history therefore stays bounded (about four events per image of a shard
execution, which continues as new every 10 images, plus a few per shard in
the parent), instead of one history that every episode replays in full and
that grows with the batch (quadratic cost).

Sizes follow "guided" scheduling: large shards while plenty of work remains,
smaller ones towards the end (``ceil(remaining / (2 * concurrency))``, capped
at ``max_shard_size``), so the batch does not end with a few long shards
running alone while the other slots sit idle.
"""

from __future__ import annotations

import math

DEFAULT_SHARD_SIZE = 50
# The parent's history grows by about seven events per shard and every parent
# episode replays it, so a very large batch gets larger shards rather than more
# of them: full-size shards stay around this many. bench.replay measured the
# trade at 30,000 images (docs/benchmarks.md, "Replay cost"): larger shards cost
# the parent less and the lanes a little more (their carried results are larger),
# less in total. 10,000 images and fewer are unaffected.
FULL_SHARDS_TARGET = 300
# Past this a shard's carried results (about 0.5 KB per image, see
# orchestrators/shard.py) would cost more per episode than the parent saves.
LARGEST_ADAPTIVE_SHARD = 200


def effective_shard_size(total: int) -> int:
    """The default cap: :data:`DEFAULT_SHARD_SIZE`, raised for batches that would
    otherwise need far more than :data:`FULL_SHARDS_TARGET` full shards (never
    above :data:`LARGEST_ADAPTIVE_SHARD`). An explicit ``SHARD_SIZE`` replaces it."""
    return max(DEFAULT_SHARD_SIZE, min(LARGEST_ADAPTIVE_SHARD, math.ceil(total / FULL_SHARDS_TARGET)))


def shard_sizes(total: int, concurrency: int, max_shard_size: int | None = None) -> list[int]:
    """Sizes of consecutive shards covering ``total`` items; ``max_shard_size``
    ``None`` means :func:`effective_shard_size`."""
    if max_shard_size is None:
        max_shard_size = effective_shard_size(max(total, 0))
    if total < 0 or concurrency < 1 or max_shard_size < 1:
        raise ValueError("total must be >= 0, concurrency and max_shard_size >= 1")
    sizes: list[int] = []
    remaining = total
    # A floor keeps the tail from dissolving into one- and two-image shards
    # (each costs a sub-orchestration, two small activities, a plan read and a
    # results write: at 100 images and 10 lanes, 45 shards cost more replay CPU
    # than the images did), but never so high that fewer than `concurrency`
    # shards exist for a small batch.
    floor = max(1, min(max_shard_size // 10, total // concurrency))
    while remaining > 0:
        size = min(remaining, max(floor, min(max_shard_size, math.ceil(remaining / (2 * concurrency)))))
        sizes.append(size)
        remaining -= size
    return sizes


def shard_bounds(sizes: list[int]) -> list[tuple[int, int]]:
    """``(start, stop)`` slice bounds for each shard."""
    bounds, start = [], 0
    for size in sizes:
        bounds.append((start, start + size))
        start += size
    return bounds


def sample_positions(total: int, sample: int) -> list[int]:
    """Where a proof's sample is taken from a sorted listing of ``total`` images:
    ``sample`` positions spread evenly from the first image on (all of them when
    the sample is as large as the batch). Deterministic: the same listing gives the
    same sample, so a re-submission shows the same images."""
    count = max(0, min(sample, total))
    return [i * total // count for i in range(count)] if count else []


def sample_shard_sizes(sample: int, concurrency: int, max_shard_size: int | None = None) -> list[int]:
    """The sample's own shards: up to ``concurrency`` lanes of near-equal size (the
    sample is what a person waits for, so it uses every lane), none above the cap."""
    if sample <= 0:
        return []
    cap = max_shard_size or effective_shard_size(sample)
    lanes = max(min(sample, max(1, concurrency)), math.ceil(sample / cap))
    return [sample // lanes + (1 if i < sample % lanes else 0) for i in range(lanes)]
