"""ListImages: the batch's input images, in a stable order, cut into shards.

The listing itself never travels through Durable Functions: the images of
each shard are written to a small JSON blob, and only the shard sizes and the
plan's folder go back to the orchestrator. A prefix with a million blobs
costs the orchestration history a few hundred integers.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

from imagebatch.naming import is_image_name, is_own_output, plan_folder, shard_plan_blob
from imagebatch.sharding import shard_bounds, shard_sizes
from imagebatch.specs import SourceBlob
from storage import blobs


def list_images(payload: dict[str, Any], service: BlobServiceClient, default_page_size: int) -> dict[str, Any]:
    """Every image under the prefix (all pages), sorted by name; never the
    batch's own outputs when input and output share a container."""
    container = payload["container"]
    prefix = payload.get("prefix") or ""
    output_prefix = payload.get("output_prefix") or ""
    exclude_outputs = bool(payload.get("exclude_own_outputs"))
    page_size = int(payload.get("page_size") or default_page_size)

    def keep(name: str) -> bool:
        if not is_image_name(name):
            return False
        return not (exclude_outputs and is_own_output(name, output_prefix))

    try:
        images, pages = blobs.list_blobs(service, container, prefix, page_size=page_size, keep=keep)
    except ResourceNotFoundError:
        return {"images": [], "pages": 0, "error": f"source container '{container}' does not exist"}
    return {"images": [image.to_dict() for image in images], "pages": pages}


def plan_batch(payload: dict[str, Any], service: BlobServiceClient, default_page_size: int) -> dict[str, Any]:
    """List (or take the explicit list), then write one blob per shard.

    Each shard blob also carries the batch request, so a shard's input (and the
    parent's history, which records it) holds only a few blob names."""
    if payload.get("blobs") is not None:
        listing: dict[str, Any] = {"images": [SourceBlob(name).to_dict() for name in payload["blobs"]], "pages": 0}
    else:
        listing = list_images(payload, service, default_page_size)
    images = listing["images"]
    sizes = shard_sizes(
        len(images),
        int(payload.get("max_concurrency") or 1),
        int(payload["shard_size"]) if payload.get("shard_size") else None,  # None: sized for the batch
    )
    folder = plan_folder(payload.get("output_prefix") or "", payload["instance_id"], payload["run"], uuid.uuid4().hex)
    for shard, (start, stop) in enumerate(shard_bounds(sizes)):
        blobs.upload_text(
            service,
            payload["output_container"],
            shard_plan_blob(folder, shard),
            json.dumps({"request": payload.get("request"), "images": images[start:stop]}),
            "application/json",
        )
    plan: dict[str, Any] = {"total": len(images), "shards": sizes, "plan": folder, "pages": listing["pages"]}
    if listing.get("error"):
        plan["error"] = listing["error"]
    return plan
