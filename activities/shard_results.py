"""LoadShard / RecordShardResults: a shard's inputs and outputs live in blobs,
so neither the parent orchestration nor the shard's history carries more than
one shard's worth of names.

Both are ``async``: they are pure storage I/O, and on the Functions Python
worker (and the dev host) async functions run on the event loop instead of
taking a thread or a worker process that CPU-bound ``ProcessImage`` calls
need. A shard's first and last steps then never queue behind image work.
"""

from __future__ import annotations

from typing import Any

from imagebatch.messages import LoadShardInput, RecordResultsInput, RecordResultsResult, ShardSegment, StorageRefusal
from imagebatch.specs import BatchRequest, SourceBlob
from storage import controls, plans, results
from storage.clients import AsyncBlobService, BlobService
from storage.errors import permanent_error


async def load_shard(wanted: LoadShardInput, service: AsyncBlobService) -> ShardSegment:
    """One segment of the shard's plan: the request and the ``count`` images from
    ``start`` (all without a count), or ``error`` when the plan can never be read (its
    blob is gone, access is denied)."""
    try:
        plan = await plans.read_shard_plan_async(service, wanted.container, wanted.blob)
        start, count = wanted.start, wanted.count
        images = plan["images"][start:] if count is None else plan["images"][start : start + count]
        bound = None
        if wanted.controls_blob:
            # The run's current bound (PATCH .../{id}): a lane beyond it parks at this boundary.
            bound = await controls.read_concurrency_bound(service, wanted.container, wanted.controls_blob)
        return ShardSegment(
            request=BatchRequest.from_dict(plan["request"]),
            images=tuple(SourceBlob.from_dict(image) for image in images),
            total=len(plan["images"]),
            max_concurrency=bound,
        )
    except Exception as error:
        permanent = permanent_error(error)
        if permanent is None:
            raise
        return ShardSegment(error=StorageRefusal.from_dict(permanent))


async def record_shard_results(record: RecordResultsInput, service: AsyncBlobService) -> RecordResultsResult:
    """Write the shard's per-image results (idempotent: same name, same content);
    ``error`` when storage refuses for good (the shard then hands them to its parent
    instead)."""
    try:
        await results.write_shard_part(
            service, record.container, record.blob, [result.to_dict() for result in record.results]
        )
    except Exception as error:
        permanent = permanent_error(error)
        if permanent is None:
            raise
        return RecordResultsResult(record.blob, error=StorageRefusal.from_dict(permanent))
    return RecordResultsResult(record.blob, len(record.results))


def load_results(service: BlobService, container: str, parts: list[str]) -> list[dict[str, Any]]:
    """All per-image results of a batch, in shard order, for the manifest."""
    loaded: list[dict[str, Any]] = []
    for name in parts:
        loaded.extend(results.read_shard_part(service, container, name))
    return loaded
