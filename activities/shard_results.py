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

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient, ContentSettings
from azure.storage.blob.aio import BlobServiceClient as AsyncBlobServiceClient


async def load_shard(payload: dict[str, Any], service: AsyncBlobServiceClient) -> dict[str, Any]:
    """The shard's plan: ``{"request": ..., "images": [...]}``."""
    downloader = await service.get_blob_client(payload["container"], payload["blob"]).download_blob()
    return json.loads(await downloader.readall())


async def record_shard_results(payload: dict[str, Any], service: AsyncBlobServiceClient) -> dict[str, Any]:
    """Write the shard's per-image results (idempotent: same name, same content)."""
    data = json.dumps(payload["results"]).encode("utf-8")
    blob = service.get_blob_client(payload["container"], payload["blob"])
    settings = ContentSettings(content_type="application/json", cache_control="no-cache")
    try:
        await blob.upload_blob(data, overwrite=True, content_settings=settings)
    except ResourceNotFoundError:
        with contextlib.suppress(ResourceExistsError):
            await service.create_container(payload["container"])
        await blob.upload_blob(data, overwrite=True, content_settings=settings)
    return {"blob": payload["blob"], "count": len(payload["results"])}


def load_results(service: BlobServiceClient, container: str, parts: list[str]) -> list[dict[str, Any]]:
    """All per-image results of a batch, in shard order, for the manifest."""
    results: list[dict[str, Any]] = []
    for name in parts:
        results.extend(json.loads(service.get_blob_client(container, name).download_blob().readall()))
    return results
