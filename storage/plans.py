"""A run's plan in storage: the source list a request named, one blob per shard
(``{"request", "images"}``), and the plan's ``extra.json`` (images refused and
objects that are not images, for the manifest).

Names come from ``imagebatch.naming`` and the callers; this module only reads
and writes them. Reads raise ``storage.errors.NotFoundError`` when the blob is
gone (callers decide what a lost plan means); writes are idempotent overwrites.
"""

from __future__ import annotations

from typing import Any

from storage import documents
from storage.clients import AsyncBlobService, BlobService


def write_source_list(service: BlobService, container: str, blob: str, names: list[str]) -> None:
    """The blob names a request listed itself, stored once so they never travel
    through Durable messages."""
    documents.put_json(service, container, blob, list(names), indent=2)


def read_source_list(service: BlobService, container: str, blob: str) -> list[str] | None:
    """The stored source list, or None when it is gone."""
    value = documents.read_json_or_none(service, container, blob)
    return None if value is None else list(value)


def write_shard_plan(
    service: BlobService, container: str, blob: str, request: dict[str, Any] | None, images: list[dict[str, Any]]
) -> None:
    """One shard's plan: the batch request and the shard's images (as listed)."""
    documents.put_json(service, container, blob, {"request": request, "images": images})


def read_shard_plan(service: BlobService, container: str, blob: str) -> dict[str, Any]:
    """One shard's plan, ``{"request", "images"}``."""
    return dict(documents.read_json(service, container, blob))


async def read_shard_plan_async(service: AsyncBlobService, container: str, blob: str) -> dict[str, Any]:
    """:func:`read_shard_plan` on the asyncio client (``LoadShard``)."""
    return dict(await documents.read_json_async(service, container, blob))


def write_plan_extra(service: BlobService, container: str, blob: str, extra: dict[str, Any]) -> None:
    """The plan's ``{"rejected", "not_images"}`` for the manifest."""
    documents.put_json(service, container, blob, extra)


def read_plan_extra(service: BlobService, container: str, blob: str) -> dict[str, Any]:
    """The plan's ``{"rejected", "not_images"}``."""
    return dict(documents.read_json(service, container, blob))
