"""The few blob operations the named modules of ``storage`` are built from: put a
blob whole (creating its container on first use), read one whole, as bytes or
JSON, sync and asyncio.

Not for code outside ``storage/``: the activities and the HTTP layer call the
modules that say what they store (``plans``, ``results``, ``reports``, ``runs``,
``controls``, ``review``, ``blobs`` for sources and renditions).
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import ContentSettings

from storage.clients import AsyncBlobService, BlobService

JSON_CONTENT_TYPE = "application/json"
NO_CACHE = "no-cache"


def put(
    service: BlobService,
    container: str,
    name: str,
    data: bytes,
    *,
    content_type: str,
    cache_control: str = NO_CACHE,
    metadata: dict[str, str] | None = None,
) -> None:
    """Overwrite ``name`` with ``data`` in a single Put Blob (readers see the old or the
    new blob, never half of one), creating the container on first use."""
    blob = service.get_blob_client(container, name)
    settings = ContentSettings(content_type=content_type, cache_control=cache_control)
    try:
        blob.upload_blob(data, overwrite=True, content_settings=settings, metadata=metadata)
    except ResourceNotFoundError:
        ensure_container(service, container)
        blob.upload_blob(data, overwrite=True, content_settings=settings, metadata=metadata)


def put_text(service: BlobService, container: str, name: str, text: str, content_type: str) -> None:
    """A text document (UTF-8, ``no-cache``), overwritten whole."""
    put(service, container, name, text.encode("utf-8"), content_type=content_type)


def put_json(service: BlobService, container: str, name: str, value: Any, *, indent: int | None = None) -> None:
    """A JSON document (``application/json``, ``no-cache``), overwritten whole."""
    put_text(service, container, name, json.dumps(value, indent=indent), JSON_CONTENT_TYPE)


def ensure_container(service: BlobService, container: str) -> None:
    with contextlib.suppress(ResourceExistsError):
        service.create_container(container)


def read_bytes(service: BlobService, container: str, name: str) -> bytes:
    """The whole blob. Raises ``storage.errors.NotFoundError`` when it (or its container) is gone."""
    data: bytes = service.get_blob_client(container, name).download_blob().readall()
    return data


def read_json(service: BlobService, container: str, name: str) -> Any:
    """The blob's JSON value. Raises ``NotFoundError`` when it is gone, ``ValueError`` when
    it is not JSON."""
    return json.loads(read_bytes(service, container, name))


def read_json_or_none(service: BlobService, container: str, name: str) -> Any | None:
    """The blob's JSON value, or None when the blob or its container does not exist."""
    try:
        return read_json(service, container, name)
    except ResourceNotFoundError:
        return None


async def put_json_async(service: AsyncBlobService, container: str, name: str, value: Any) -> None:
    """:func:`put_json` on the asyncio client (compact JSON, ``no-cache``)."""
    data = json.dumps(value).encode("utf-8")
    blob = service.get_blob_client(container, name)
    settings = ContentSettings(content_type=JSON_CONTENT_TYPE, cache_control=NO_CACHE)
    try:
        await blob.upload_blob(data, overwrite=True, content_settings=settings)
    except ResourceNotFoundError:
        with contextlib.suppress(ResourceExistsError):
            await service.create_container(container)
        await blob.upload_blob(data, overwrite=True, content_settings=settings)


async def read_json_async(service: AsyncBlobService, container: str, name: str) -> Any:
    """:func:`read_json` on the asyncio client."""
    downloader = await service.get_blob_client(container, name).download_blob()
    return json.loads(await downloader.readall())
