"""LoadShard / RecordShardResults: a shard's inputs and outputs live in blobs,
so neither the parent orchestration nor the shard's history carries more than
one shard's worth of names.

Both are ``async``: they are pure storage I/O, and on the Functions Python
worker (and the dev host) async functions run on the event loop instead of
taking a thread or a worker process that CPU-bound ``ProcessImage`` calls
need. A shard's first and last steps then never queue behind image work.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient, ContentSettings
from azure.storage.blob.aio import BlobServiceClient as AsyncBlobServiceClient

from imagebatch.messages import LoadShardInput, RecordResultsInput, RecordResultsResult, ShardSegment, StorageRefusal
from imagebatch.specs import BatchRequest, SourceBlob
from storage.errors import describe, is_transient


def permanent_error(error: BaseException) -> dict[str, str] | None:
    """``{"kind", "message"}`` for a storage error that retrying cannot fix (404, 403,
    409, 412, ...), else None: such errors are *returned*, so the Durable retry policy
    never spends its attempts (and the user's minutes) on them; transient ones are raised."""
    if isinstance(error, ResourceNotFoundError):
        return {"kind": "blob_gone", "message": describe(error)}
    if isinstance(error, HttpResponseError) and not is_transient(error):
        return {"kind": "storage_error", "message": describe(error)}
    return None


async def load_shard(wanted: LoadShardInput, service: AsyncBlobServiceClient) -> ShardSegment:
    """One segment of the shard's plan: the request and the ``count`` images from
    ``start`` (all without a count), or ``error`` when the plan can never be read (its
    blob is gone, access is denied)."""
    try:
        downloader = await service.get_blob_client(wanted.container, wanted.blob).download_blob()
        plan = json.loads(await downloader.readall())
        start, count = wanted.start, wanted.count
        images = plan["images"][start:] if count is None else plan["images"][start : start + count]
        bound = None
        if wanted.controls_blob:
            # The run's current bound (PATCH .../{id}): a lane beyond it parks at this boundary.
            bound = await _current_bound(service, wanted.container, wanted.controls_blob)
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


async def _current_bound(service: AsyncBlobServiceClient, container: str, blob: str) -> int | None:
    """``max_concurrency`` of the run's control document, None when none was ever written."""
    try:
        downloader = await service.get_blob_client(container, blob).download_blob()
        value = json.loads(await downloader.readall())
        return int(value["max_concurrency"]) if isinstance(value, dict) and "max_concurrency" in value else None
    except (ResourceNotFoundError, ValueError, TypeError):
        return None


async def record_shard_results(record: RecordResultsInput, service: AsyncBlobServiceClient) -> RecordResultsResult:
    """Write the shard's per-image results (idempotent: same name, same content);
    ``error`` when storage refuses for good (the shard then hands them to its parent
    instead)."""
    data = json.dumps([result.to_dict() for result in record.results]).encode("utf-8")
    blob = service.get_blob_client(record.container, record.blob)
    settings = ContentSettings(content_type="application/json", cache_control="no-cache")
    try:
        try:
            await blob.upload_blob(data, overwrite=True, content_settings=settings)
        except ResourceNotFoundError:
            with contextlib.suppress(ResourceExistsError):
                await service.create_container(record.container)
            await blob.upload_blob(data, overwrite=True, content_settings=settings)
    except Exception as error:
        permanent = permanent_error(error)
        if permanent is None:
            raise
        return RecordResultsResult(record.blob, error=StorageRefusal.from_dict(permanent))
    return RecordResultsResult(record.blob, len(record.results))


def load_results(service: BlobServiceClient, container: str, parts: list[str]) -> list[dict[str, Any]]:
    """All per-image results of a batch, in shard order, for the manifest."""
    results: list[dict[str, Any]] = []
    for name in parts:
        results.extend(json.loads(service.get_blob_client(container, name).download_blob().readall()))
    return results
