"""ListImages: the batch's input images, in a stable order.

Only names, etags and sizes leave this activity: the list travels through
Durable Functions, so it must stay small and deterministic (sorted by name).
"""

from __future__ import annotations

from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

from imagebatch.naming import is_image_name, is_own_output
from storage import blobs


def list_images(payload: dict[str, Any], service: BlobServiceClient, default_page_size: int) -> dict[str, Any]:
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
