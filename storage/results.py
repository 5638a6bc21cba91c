"""Per-image results in storage: each shard segment's results, one blob per part
(``RecordShardResults`` writes them, ``NotifyCompletion`` and ``WriteProofSheet``
read them back), so the orchestrations never carry them.
"""

from __future__ import annotations

from typing import Any

from storage import documents
from storage.clients import AsyncBlobService, BlobService


async def write_shard_part(service: AsyncBlobService, container: str, blob: str, results: list[dict[str, Any]]) -> None:
    """One segment's results, overwritten whole (idempotent: same name, same content),
    creating the container on first use."""
    await documents.put_json_async(service, container, blob, results)


def read_shard_part(service: BlobService, container: str, blob: str) -> list[dict[str, Any]]:
    """One segment's results. Raises ``storage.errors.NotFoundError`` when the part is gone."""
    return list(documents.read_json(service, container, blob))
