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


async def load_shard(payload: dict[str, Any], service: AsyncBlobServiceClient) -> dict[str, Any]:
    """One segment of the shard's plan: ``{"request", "images", "total"}`` with the
    ``count`` images from ``start`` (all without them), or ``{"error": ...}`` when
    the plan can never be read (its blob is gone, access is denied)."""
    try:
        downloader = await service.get_blob_client(payload["container"], payload["blob"]).download_blob()
        plan = json.loads(await downloader.readall())
        start = int(payload.get("start") or 0)
        count = payload.get("count")
        images = plan["images"][start:] if count is None else plan["images"][start : start + int(count)]
        loaded = {"request": plan["request"], "images": images, "total": len(plan["images"])}
        if payload.get("controls_blob"):
            # The run's current bound (PATCH .../{id}): a lane beyond it parks at this boundary.
            loaded["max_concurrency"] = await _current_bound(service, payload["container"], payload["controls_blob"])
        return loaded
    except Exception as error:
        permanent = permanent_error(error)
        if permanent is None:
            raise
        return {"error": permanent}


async def _current_bound(service: AsyncBlobServiceClient, container: str, blob: str) -> int | None:
    """``max_concurrency`` of the run's control document, None when none was ever written."""
    try:
        downloader = await service.get_blob_client(container, blob).download_blob()
        value = json.loads(await downloader.readall())
        return int(value["max_concurrency"]) if isinstance(value, dict) and "max_concurrency" in value else None
    except (ResourceNotFoundError, ValueError, TypeError):
        return None


async def record_shard_results(payload: dict[str, Any], service: AsyncBlobServiceClient) -> dict[str, Any]:
    """Write the shard's per-image results (idempotent: same name, same content);
    ``{"error": ...}`` when storage refuses for good (the shard then hands them to
    its parent instead)."""
    data = json.dumps(payload["results"]).encode("utf-8")
    blob = service.get_blob_client(payload["container"], payload["blob"])
    settings = ContentSettings(content_type="application/json", cache_control="no-cache")
    try:
        try:
            await blob.upload_blob(data, overwrite=True, content_settings=settings)
        except ResourceNotFoundError:
            with contextlib.suppress(ResourceExistsError):
                await service.create_container(payload["container"])
            await blob.upload_blob(data, overwrite=True, content_settings=settings)
    except Exception as error:
        permanent = permanent_error(error)
        if permanent is None:
            raise
        return {"blob": payload["blob"], "error": permanent}
    return {"blob": payload["blob"], "count": len(payload["results"])}


def load_results(service: BlobServiceClient, container: str, parts: list[str]) -> list[dict[str, Any]]:
    """All per-image results of a batch, in shard order, for the manifest."""
    results: list[dict[str, Any]] = []
    for name in parts:
        results.extend(json.loads(service.get_blob_client(container, name).download_blob().readall()))
    return results
