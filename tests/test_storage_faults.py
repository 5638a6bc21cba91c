"""Storage misbehaving under a real batch: the app on the in-process dev host
talks to Azurite through :class:`tests.faultproxy.FaultProxy`.

* 10 % of storage requests fail (503, 500, reset before, reset *after* storage
  acted): the batch still completes with every rendition exactly once and
  decodable, and the manifest agrees.
* The source container unreachable for longer than the whole retry budget
  while images are in flight: those images end ``transient_exhausted`` (the
  batch does not hang), and re-submitting the same batch afterwards processes
  exactly them and skips the rest.
* The batch's bookkeeping blobs (shard plans and results) unreachable
  mid-batch: every image still has its own record in the manifest, and what it
  calls failed is exactly what a re-submission processes. (This found shards
  recorded as one ``shard N`` entry, their images missing; since fixed.)
* Storage down from the start: the batch ends Failed in bounded time (not
  hung), and a re-submission once storage is back completes.

Retry waits are shortened (Durable: ``ACTIVITY_RETRY_FIRST_INTERVAL_MS`` via
env; SDK: :func:`tests.faultproxy.fast_sdk_retry`, same 3 retries) so each
test stays well under a minute on 2 cores. Run with ``-s`` to see the figures.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import aiohttp
import pytest
from azure.storage.blob import BlobServiceClient
from azure.storage.blob.aio import BlobServiceClient as AsyncBlobServiceClient

import storage.clients
from imagebatch.function_names import LIST_IMAGES
from tests.batchkit import (
    all_histories,
    batch_request,
    check_outputs,
    durable_retries,
    keyed_host,
    keyed_session,
    poll,
    read_manifest,
    seed_images,
    start_batch,
)
from tests.faultproxy import FaultProxy, fast_sdk_retry

REPO = Path(__file__).resolve().parent.parent
IMAGES = 200
DURABLE_MAX_ATTEMPTS = 3


@pytest.fixture
async def proxy(azurite_connection_string: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FaultProxy]:
    """A fault proxy in front of Azurite, and the app's storage setting pointed at it.

    ``storage.clients`` caches one client per process, so the cache is reset
    around the test, and its client factory (sync and asyncio) is replaced by one
    with test-sized SDK retry waits (the app has no setting for them, see
    docs/reliability.md).
    """
    endpoint = next(p for p in azurite_connection_string.split(";") if p.startswith("BlobEndpoint="))
    with FaultProxy(endpoint.split("=", 1)[1], seed=2024) as fault_proxy:
        monkeypatch.setenv("AzureWebJobsStorage", fault_proxy.connection_string(azurite_connection_string))
        monkeypatch.setenv("ACTIVITY_RETRY_FIRST_INTERVAL_MS", "50")
        monkeypatch.setenv("ACTIVITY_RETRY_MAX_ATTEMPTS", str(DURABLE_MAX_ATTEMPTS))

        def fast_client(
            name: str, env: Mapping[str, str] | None = None, *, aio: bool = False
        ) -> BlobServiceClient | AsyncBlobServiceClient:
            settings = os.environ if env is None else env
            retry = fast_sdk_retry(int(settings.get("STORAGE_RETRY_TOTAL", "3")), aio=aio)
            client_class = AsyncBlobServiceClient if aio else BlobServiceClient
            return client_class.from_connection_string(settings[name], **retry)

        monkeypatch.setattr(storage.clients, "create_client", fast_client)
        storage.clients.reset_clients()
        yield fault_proxy
        await storage.clients.close_async_clients()
    storage.clients.reset_clients()


async def test_ten_percent_faults_lose_and_duplicate_nothing(proxy: FaultProxy, blob_service, container_factory):
    source, output = container_factory(), container_factory(create=False)
    sources = seed_images(blob_service, source, IMAGES)
    proxy.fail_rate, proxy.kinds = 0.10, ("503", "500", "reset", "reset_after")
    started_at = time.monotonic()
    async with keyed_host() as host, keyed_session() as http:
        started = await start_batch(http, host.api_url("batches"), batch_request(source, output))
        status = await poll(http, started["statusQueryGetUri"], timeout=150)
        durable = durable_retries(await all_histories(host), IMAGES)
    elapsed = time.monotonic() - started_at
    stats = proxy.snapshot()
    print(f"\n[10% faults] {IMAGES} images in {elapsed:.1f}s; proxy: {stats.describe()}; durable: {durable}")

    assert status["runtimeStatus"] == "Completed", status["summary"]
    counts = status["summary"]["counts"]
    assert (counts["total"], counts["done"] + counts["skipped"], counts["failed"]) == (IMAGES, IMAGES, 0), counts
    assert check_outputs(blob_service, output, "web/", sources) == []
    manifest = read_manifest(blob_service, status["summary"]["manifest"])
    assert manifest["counts"] == counts and manifest["failures"] == []
    assert sorted(image["name"] for image in manifest["images"]) == sorted(sources)
    assert all(len(image["outputs"]) == 2 for image in manifest["images"])
    # The faults really happened, and retries stayed bounded: the SDK retries a
    # failed call at most 3 times, the orchestrators re-run an image at most
    # DURABLE_MAX_ATTEMPTS times.
    assert stats.faults_total >= 0.05 * stats.requests and stats.faults["reset_after"] > 0
    assert stats.retries <= stats.faults_total
    assert durable["process_image_attempts"] <= IMAGES * DURABLE_MAX_ATTEMPTS


async def test_source_outage_longer_than_retry_budget_then_resubmit(proxy: FaultProxy, blob_service, container_factory):
    images = 60
    source, output = container_factory(), container_factory(create=False)
    sources = seed_images(blob_service, source, images)
    request = batch_request(source, output, max_concurrency=4, tolerated_failure_percent=100, batch_id="outage-1")
    async with keyed_host() as host, keyed_session() as http:
        status_url = host.api_url("batches/outage-1")
        await start_batch(http, host.api_url("batches"), request)
        await wait_progress(http, status_url, lambda p: p["completed"] >= 10)
        outage_started = time.monotonic()
        # The source container answers 503 to everything for longer than the whole
        # budget (3 Durable attempts x (1 + 3 SDK retries)) of several images.
        with proxy.outage("503", path_contains=f"/{source}/"):
            await wait_progress(http, status_url, lambda p: p["failed"] >= 6)
        outage = time.monotonic() - outage_started
        first = await poll(http, status_url, timeout=60)
        durable = durable_retries(await all_histories(host), images)
        refused = proxy.snapshot().faults["503"]
        # Read it now: the re-submission reuses the batch id, so it rewrites this manifest.
        manifest = read_manifest(blob_service, first["manifest"])
        failed_names = {f["name"] for f in manifest["failures"]}

        await start_batch(http, host.api_url("batches"), request)
        second = await poll(http, status_url, timeout=60)

    print(
        f"\n[source outage] {outage:.1f}s of 503s ({refused} refused requests): "
        f"{len(failed_names)} images transient_exhausted; durable: {durable}; resubmission: {second['progress']}"
    )
    assert first["runtimeStatus"] == "Completed"
    assert sorted(i["name"] for i in manifest["images"]) == sorted(sources)
    assert manifest["counts"]["failed"] == len(failed_names) >= 6
    for failure in manifest["failures"]:
        assert failure["kind"] == "transient_exhausted", failure
        assert failure["message"].startswith(f"gave up after {DURABLE_MAX_ATTEMPTS} attempt(s): "), failure
        assert "ServerBusy" in failure["message"] or "Server Busy" in failure["message"], failure
    assert durable["process_image_failed_attempts"] >= DURABLE_MAX_ATTEMPTS * len(failed_names)

    assert second["runtimeStatus"] == "Completed", second
    progress = second["progress"]
    assert (progress["done"], progress["skipped"], progress["failed"]) == (
        len(failed_names),
        images - len(failed_names),
        0,
    )
    second_manifest = read_manifest(blob_service, second["manifest"])
    processed = {i["name"] for i in second_manifest["images"] if i["status"] == "processed"}
    assert processed == failed_names, "exactly the failed images are processed again"
    assert check_outputs(blob_service, output, "web/", sources) == []


async def test_bookkeeping_outage_keeps_a_record_of_every_image(proxy: FaultProxy, blob_service, container_factory):
    """The batch's bookkeeping blobs (``<output prefix>_batches/``: shard plans and
    results) answer 503 mid-batch until a shard has given up. Whatever failed,
    the manifest must name every image, and what it calls failed must be
    exactly what a re-submission then processes."""
    images = 60
    source, output = container_factory(), container_factory(create=False)
    sources = seed_images(blob_service, source, images)
    request = batch_request(source, output, max_concurrency=4, tolerated_failure_percent=100, batch_id="outage-2")
    async with keyed_host() as host, keyed_session() as http:
        status_url = host.api_url("batches/outage-2")
        await start_batch(http, host.api_url("batches"), request)
        await wait_progress(http, status_url, lambda p: p["completed"] >= 10)
        with proxy.outage("503", path_contains="/web/_batches/"):
            await wait_progress(http, status_url, lambda p: p["failed"] > 0, timeout=60)
        first = await poll(http, status_url, timeout=90)
        manifest = read_manifest(blob_service, first["manifest"])
        await start_batch(http, host.api_url("batches"), request)
        second = await poll(http, status_url, timeout=90)
    failed = {f["name"] for f in manifest["failures"]}
    names = [i["name"] for i in manifest["images"]]
    second_manifest = read_manifest(blob_service, second["manifest"])
    processed = {i["name"] for i in second_manifest["images"] if i["status"] == "processed"}
    print(
        f"\n[bookkeeping outage] first run {first['progress']}: {len(names)} image records for {images} images, "
        f"{len(failed)} failure entries ({sorted(f for f in failed if not f.startswith('in/'))}); "
        f"re-submission processed {len(processed)}, of which listed as failed: {len(processed & failed)}"
    )
    assert check_outputs(blob_service, output, "web/", sources) == [], "outputs themselves are complete"
    assert sorted(names) == sorted(sources), "every image has its own record"
    assert processed == failed, "what the manifest calls failed is exactly what was still to do"


async def test_storage_down_from_the_start_fails_fast_then_recovers(proxy: FaultProxy, blob_service, container_factory):
    source, output = container_factory(), container_factory(create=False)
    sources = seed_images(blob_service, source, 5)
    request = batch_request(source, output, batch_id="down-from-start")
    started_at = time.monotonic()
    async with keyed_host() as host, keyed_session() as http:
        status_url = host.api_url("batches/down-from-start")
        with proxy.outage("reset"):
            await start_batch(http, host.api_url("batches"), request)
            first = await poll(http, status_url, timeout=30)
        failed_after = time.monotonic() - started_at
        await start_batch(http, host.api_url("batches"), request)
        second = await poll(http, status_url, timeout=30)
    print(f"\n[down from start] {first['runtimeStatus']} after {failed_after:.1f}s: {first.get('error', '')[:120]}")
    assert first["runtimeStatus"] == "Failed" and LIST_IMAGES in first.get("error", ""), first
    assert second["runtimeStatus"] == "Completed" and second["progress"]["done"] == 5
    assert check_outputs(blob_service, output, "web/", sources) == []


async def wait_progress(http: aiohttp.ClientSession, url: str, condition, timeout: float = 30) -> dict:
    """Poll the friendly status until ``condition(progress)`` holds (fails if the batch ends first)."""
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        async with http.get(url) as response:
            body = await response.json(content_type=None)
        if body.get("progress") and condition(body["progress"]):
            return body
        assert body.get("runtimeStatus") not in ("Completed", "Failed", "Terminated"), body
        await asyncio.sleep(0.05)
    raise AssertionError(f"progress condition not reached in {timeout}s: {body.get('progress')}")
