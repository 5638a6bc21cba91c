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

from storage import controls, plans, results
from storage.clients import AsyncBlobService, BlobService
from storage.errors import permanent_error

__all__ = ["load_results", "load_shard", "permanent_error", "record_shard_results"]


async def load_shard(payload: dict[str, Any], service: AsyncBlobService) -> dict[str, Any]:
    """One segment of the shard's plan: ``{"request", "images", "total"}`` with the
    ``count`` images from ``start`` (all without them), or ``{"error": ...}`` when
    the plan can never be read (its blob is gone, access is denied)."""
    try:
        plan = await plans.read_shard_plan_async(service, payload["container"], payload["blob"])
        start = int(payload.get("start") or 0)
        count = payload.get("count")
        images = plan["images"][start:] if count is None else plan["images"][start : start + int(count)]
        loaded = {"request": plan["request"], "images": images, "total": len(plan["images"])}
        if payload.get("controls_blob"):
            # The run's current bound (PATCH .../{id}): a lane beyond it parks at this boundary.
            loaded["max_concurrency"] = await controls.read_concurrency_bound(
                service, payload["container"], payload["controls_blob"]
            )
        return loaded
    except Exception as error:
        permanent = permanent_error(error)
        if permanent is None:
            raise
        return {"error": permanent}


async def record_shard_results(payload: dict[str, Any], service: AsyncBlobService) -> dict[str, Any]:
    """Write the shard's per-image results (idempotent: same name, same content);
    ``{"error": ...}`` when storage refuses for good (the shard then hands them to
    its parent instead)."""
    try:
        await results.write_shard_part(service, payload["container"], payload["blob"], payload["results"])
    except Exception as error:
        permanent = permanent_error(error)
        if permanent is None:
            raise
        return {"blob": payload["blob"], "error": permanent}
    return {"blob": payload["blob"], "count": len(payload["results"])}


def load_results(service: BlobService, container: str, parts: list[str]) -> list[dict[str, Any]]:
    """All per-image results of a batch, in shard order, for the manifest."""
    loaded: list[dict[str, Any]] = []
    for name in parts:
        loaded.extend(results.read_shard_part(service, container, name))
    return loaded
