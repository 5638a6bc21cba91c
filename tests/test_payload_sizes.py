"""No Durable message of the app crosses the Azure Storage provider's lines for a
10,000-image batch given as a prefix, or for one given as an explicit list
(2,000 names by default, already over 45 KB; ``PAYLOAD_TEST_LISTED_IMAGES=10000``
runs the full size: its largest message is NotifyCompletion's input, within 1 % of
the prefix batch's).

On Azure Storage, queue messages over 45 KB and table properties over 60 KB
are moved to compressed blobs (an extra blob write and read per episode), and
a custom status over 16 KB fails the orchestration. The dev host records the
largest payload of each kind (``DevHost.payload_stats``); this test runs the
real HTTP starter, orchestrators and bookkeeping activities (ListImages,
LoadShard, RecordShardResults, NotifyCompletion) against Azurite. Only
``ProcessImage`` is a stand-in: it returns a result of the real shape and size
(three renditions with versioned names) without decoding anything, because
10,000 real renders would take minutes and change no message size.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient
from azure.storage.blob.aio import BlobServiceClient as AsyncBlobServiceClient

import storage.clients
from durable_devhost.functions import FunctionIndex
from imagebatch.function_names import PROCESS_IMAGE
from imagebatch.messages import ImageResult, OutputEntry, ProcessImageInput
from imagebatch.naming import output_blob_name, output_version
from tests.azurite import connection_string, running_azurite
from tests.batchkit import close_app_storage_clients, keyed_host, keyed_session, poll, read_manifest, start_batch

REPO = Path(__file__).resolve().parent.parent
IMAGES = int(os.environ.get("PAYLOAD_TEST_IMAGES", "10000"))
# An explicit list is stored once by the starter, so no message grows with it: 2,000 names
# (over 45 KB as JSON, so a list copied into any message would cross the line) prove that
# at a fifth of the cost; the prefix batch carries the 10,000-image shard count.
LISTED_IMAGES = int(os.environ.get("PAYLOAD_TEST_LISTED_IMAGES", "2000"))
QUEUE_LIMIT = 45 * 1024
pytestmark = [pytest.mark.usefixtures(close_app_storage_clients.__name__), pytest.mark.timeout(900)]


def instant_render(payload: dict) -> dict:
    """ProcessImage's result, of the real shape and size, without decoding anything."""
    work = ProcessImageInput.from_dict(payload)
    name = work.source.name
    version = output_version("0x8DCFFFFFFFFFFFF", "jpeg;82;large:1600x0:contain")
    sizes = (("large", 1600, 1067, 301_234), ("medium", 800, 533, 90_123), ("thumb", 320, 213, 17_456))
    outputs = tuple(
        OutputEntry(r, output_blob_name(work.output_prefix, name, r, "jpg", version), w, h, b) for r, w, h, b in sizes
    )
    return ImageResult(name, "processed", outputs, duration_ms=412).to_dict()


async def seed_names(connection_string: str, container: str, count: int) -> list[str]:
    """``count`` one-byte source blobs, 64 uploads in flight (asyncio: 10,000 blobs in
    18 s, against 32 s from 16 threads on the sync client, measured in one run)."""
    names = [f"2024/summer/holiday-photos/IMG_{i:06d}.jpg" for i in range(count)]
    in_flight = asyncio.Semaphore(64)
    async with AsyncBlobServiceClient.from_connection_string(connection_string) as service:
        client = service.get_container_client(container)

        async def upload(name: str) -> None:
            async with in_flight:
                await client.upload_blob(name, b"x")

        await asyncio.gather(*(upload(name) for name in names))
    return names


@pytest.fixture
async def own_azurite(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """A private Azurite for this test, and the app pointed at it: 10,000 blobs left in
    the shared one would slow every later test and, once deleted, stall it in its
    garbage collection (tests/azurite.py)."""
    monkeypatch.delenv("AZURITE_BLOB_ENDPOINT", raising=False)
    with running_azurite() as endpoint:
        conn = connection_string(endpoint)
        monkeypatch.setenv("AzureWebJobsStorage", conn)
        storage.clients.reset_clients()
        yield conn
        await storage.clients.close_async_clients()
    storage.clients.reset_clients()


@pytest.mark.parametrize("given_as", ["prefix", "list"])
async def test_no_message_crosses_the_azure_storage_lines(given_as, monkeypatch, own_azurite):
    monkeypatch.setenv("ACTIVITY_RETRY_FIRST_INTERVAL_MS", "100")
    blob_service = BlobServiceClient.from_connection_string(own_azurite)
    source, output = f"sizes-{given_as}-source", f"sizes-{given_as}-output"
    for container in (source, output):
        blob_service.create_container(container)
    request: dict = {
        "output": {"container": output, "prefix": "web/"},
        "max_concurrency": 50,
        "batch_id": f"sizes-{given_as}",
    }
    if given_as == "prefix":
        await seed_names(own_azurite, source, IMAGES)
        request["source"] = {"container": source, "prefix": "2024/"}
    else:
        names = [f"2024/summer/holiday-photos/IMG_{i:06d}.jpg" for i in range(LISTED_IMAGES)]
        assert len(json.dumps(names)) > QUEUE_LIMIT, "the list alone must be over the line"
        request["source"] = {"container": source, "blobs": names}
    images = len(names) if given_as == "list" else IMAGES
    app = FunctionIndex.load(str(REPO / "function_app.py"))
    overrides = {PROCESS_IMAGE: instant_render}
    async with (
        keyed_host(app, fast_replay=True, activity_overrides=overrides) as host,
        keyed_session() as http,
    ):
        started = await start_batch(http, host.api_url("batches"), request)
        final = await poll(http, started["statusQueryGetUri"], timeout=850)
        stats = host.payload_stats()
    assert final["batchStatus"] == "Succeeded", final
    assert read_manifest(blob_service, final["manifest"])["counts"]["done"] == images
    largest = {kind: (s["utf8_bytes"], s["function"]) for kind, s in stats.items()}
    print(f"\n[{given_as}, {images} images] largest payloads: {largest}")
    for kind, s in stats.items():
        assert not s["exceeds"], (kind, s)
        assert s["utf8_bytes"] <= QUEUE_LIMIT, (kind, s)
