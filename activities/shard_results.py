"""LoadShard / RecordShardResults: a shard's inputs and outputs live in blobs,
so neither the parent orchestration nor the shard's history carries more than
one shard's worth of names."""

from __future__ import annotations

import json
from typing import Any

from azure.storage.blob import BlobServiceClient

from storage import blobs


def load_shard(payload: dict[str, Any], service: BlobServiceClient) -> dict[str, Any]:
    """The shard's plan: ``{"request": ..., "images": [...]}``."""
    data = service.get_blob_client(payload["container"], payload["blob"]).download_blob().readall()
    return json.loads(data)


def record_shard_results(payload: dict[str, Any], service: BlobServiceClient) -> dict[str, Any]:
    """Write the shard's per-image results (idempotent: same name, same content)."""
    text = json.dumps(payload["results"])
    blobs.upload_text(service, payload["container"], payload["blob"], text, "application/json")
    return {"blob": payload["blob"], "count": len(payload["results"])}


def load_results(service: BlobServiceClient, container: str, parts: list[str]) -> list[dict[str, Any]]:
    """All per-image results of a batch, in shard order, for the manifest."""
    results: list[dict[str, Any]] = []
    for name in parts:
        results.extend(json.loads(service.get_blob_client(container, name).download_blob().readall()))
    return results
