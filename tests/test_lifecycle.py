"""A batch's life over the app's own HTTP API, on the local dev host with real
Azurite: graceful cancel, runs that never mix, race-free starts, no system key
handed out, live progress, and history retention.

Each claim is checked from the outside: instance lists and histories from the
host, blobs from Azurite, never from what the app says about itself.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from azure.storage.blob import BlobServiceClient

from durable_devhost.testing import DevHost
from imagebatch.function_names import PROCESS_IMAGE
from imagebatch.naming import BATCHES_FOLDER, cancel_blob_name
from tests.batchkit import (
    batch_request,
    close_app_storage_clients,
    keyed_host,
    keyed_session,
    poll,
    read_manifest,
    seed_images,
    small_jpeg,
    start_batch,
)
from tests.history_checks import executions

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.usefixtures(close_app_storage_clients.__name__)
ACTIVE = {"Running", "Pending", "ContinuedAsNew", "Suspended"}


async def get_json(http: aiohttp.ClientSession, url: str, **kwargs: Any) -> tuple[int, Any]:
    async with http.get(url, **kwargs) as response:
        return response.status, await response.json(content_type=None)


async def post_json(http: aiohttp.ClientSession, url: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
    async with http.post(url, json=body, **kwargs) as response:
        return response.status, await response.json(content_type=None)


async def batch_instances(host: DevHost, batch_id: str) -> list[dict[str, Any]]:
    """The parent and every shard of every run of ``batch_id``."""
    return [
        i
        for i in await host.engine.list_instances()
        if i["instanceId"] == batch_id or i["instanceId"].startswith(batch_id + ":")
    ]


def processed_images(host: DevHost, instances: Iterable[dict[str, Any]]) -> int:
    """ProcessImage calls that have completed, counted in the shards' histories (the truth)."""
    done = 0
    for instance in instances:
        # Sequence ids restart in every execution (continue-as-new): match them per execution.
        for history in executions(host.history(instance["instanceId"], all_executions=True)):
            names = {e["EventId"]: e.get("Name") for e in history if e["EventType"] == 4}
            done += sum(1 for e in history if e["EventType"] == 5 and names.get(e["TaskScheduledId"]) == PROCESS_IMAGE)
    return done


def output_snapshot(service: BlobServiceClient, container: str) -> dict[str, str]:
    return {b.name: str(b.etag) for b in service.get_container_client(container).list_blobs()}


def manifest_names(manifest: dict[str, Any]) -> list[str]:
    return [image["name"] for image in manifest["images"]]


async def test_cancel_stops_every_lane_then_a_resubmit_lists_every_image_once(
    monkeypatch, blob_service, container_factory
):
    monkeypatch.setenv("SHARD_SIZE", "4")  # many shards: some never start
    source, output = container_factory(), container_factory()
    sources = seed_images(blob_service, source, 60)
    request = batch_request(source, output, max_concurrency=3, batch_id="life-cancel")
    async with keyed_host() as host, keyed_session() as http:
        started = await start_batch(http, host.api_url("batches"), request)
        while True:
            _, status = await get_json(http, started["statusQueryGetUri"])
            if status["progress"]["completed"] >= 6:
                break
            assert status["runtimeStatus"] in ACTIVE, status
            await asyncio.sleep(0.05)
        code, cancelled = await post_json(http, started["cancelPostUri"])
        assert code == 202 and cancelled["batchStatus"] == "Cancelling", cancelled

        final = await poll(http, started["statusQueryGetUri"], timeout=120)
        assert final["batchStatus"] == "Cancelled" and final["runtimeStatus"] == "Completed", final
        # Nothing of the run is still running: parent and every shard, from the host's instance list.
        instances = await batch_instances(host, "life-cancel")
        assert len(instances) > 1 and not [i for i in instances if i["runtimeStatus"] in ACTIVE], instances
        before = output_snapshot(blob_service, output)
        await asyncio.sleep(1.0)
        await host.wait_idle(timeout=10)
        assert output_snapshot(blob_service, output) == before, "no output changes after Cancelled"

        first = read_manifest(blob_service, final["manifest"])
        counts = first["counts"]
        assert first["status"] == "cancelled" and counts["total"] == 60
        assert counts["done"] + counts["skipped"] + counts["failed"] + counts["not_started"] == 60
        assert 6 <= counts["done"] < 60 and counts["not_started"] > 0
        assert sorted(manifest_names(first)) == sorted(sources), "every image once: done, failed or not started"
        not_started = sorted(i["name"] for i in first["images"] if i["status"] == "not_started")
        assert sorted(first["not_started"]) == not_started
        # Images in hand finished: every processed image has its renditions, nothing else was rendered.
        rendered = {name.rsplit("/", 1)[0] for name in before if not name.startswith("web/" + BATCHES_FOLDER)}
        assert rendered == {f"web/{i['name']}" for i in first["images"] if i["status"] == "processed"}

        # Re-submit at once, with new images that sort before the old ones.
        added = {f"in/aaa{i}.jpg" for i in range(5)}
        for i, name in enumerate(sorted(added)):
            blob_service.get_blob_client(source, name).upload_blob(small_jpeg(100 + i), overwrite=True)
        again = await start_batch(http, host.api_url("batches"), request)
        assert again["run"] != started["run"]
        second_status = await poll(http, again["statusQueryGetUri"], timeout=180)

    assert second_status["batchStatus"] == "Succeeded", second_status
    second = read_manifest(blob_service, second_status["manifest"])
    names = manifest_names(second)
    assert len(names) == len(set(names)) == 65 and set(names) == set(sources) | added
    c = second["counts"]
    assert (c["total"], c["done"] + c["skipped"], c["failed"], c["not_started"]) == (65, 65, 0, 0)
    assert c["skipped"] == counts["done"], "what the cancelled run finished is up to date, not redone"
    assert [r["run"] for r in second_status["runs"]] == [started["run"]], "the earlier run is linked"
    # Each run keeps its manifest and report; scratch blobs are gone; latest.json points at the new run.
    kept = sorted(
        b.name for b in blob_service.get_container_client(output).list_blobs(name_starts_with="web/_batches/")
    )
    runs = sorted([started["run"], again["run"]])
    assert kept == [
        "web/_batches/life-cancel/latest.json",
        *[f"web/_batches/life-cancel/runs/{r}/{f}" for r in runs for f in ("index.html", "manifest.json")],
    ]
    latest = json.loads(
        blob_service.get_blob_client(output, "web/_batches/life-cancel/latest.json").download_blob().readall()
    )
    assert latest["run"] == again["run"] and latest["status"] == "succeeded"
    assert read_manifest(blob_service, f"{output}/{latest['manifest']}")["run"] == again["run"]


async def test_a_terminated_runs_leftover_shards_never_reach_the_next_run(monkeypatch, blob_service, container_factory):
    """Terminating a parent leaves its shards running (as on Azure); with
    run-scoped plans and parts they can only write into their own run."""
    monkeypatch.setenv("SHARD_SIZE", "30")  # 2 lanes of 3 segments: terminated after the first segment
    source, output = container_factory(), container_factory()
    sources = seed_images(blob_service, source, 60)
    request = batch_request(source, output, max_concurrency=4, batch_id="life-term")
    async with keyed_host() as host, keyed_session() as http:
        started = await start_batch(http, host.api_url("batches"), request)
        while (await get_json(http, started["statusQueryGetUri"]))[1]["progress"]["completed"] < 1:
            await asyncio.sleep(0.05)
        await host.engine.terminate("life-term", "terminated by the test")
        await poll(http, started["statusQueryGetUri"], timeout=30)
        leftovers = [i for i in await batch_instances(host, "life-term") if i["runtimeStatus"] in ACTIVE]
        added = {"in/aaa.jpg"}
        blob_service.get_blob_client(source, "in/aaa.jpg").upload_blob(small_jpeg(7), overwrite=True)
        again = await start_batch(http, host.api_url("batches"), request)
        final = await poll(http, again["statusQueryGetUri"], timeout=180)
        await host.wait_idle(timeout=60)
        still = [i for i in await batch_instances(host, "life-term") if i["runtimeStatus"] in ACTIVE]

    assert leftovers, "the old run's shards were still running when the new run started"
    assert not still
    manifest = read_manifest(blob_service, final["manifest"])
    names = manifest_names(manifest)
    assert len(names) == len(set(names)) == 61 and set(names) == set(sources) | added
    assert manifest["counts"]["done"] + manifest["counts"]["skipped"] == 61 and manifest["run"] == again["run"]


async def test_concurrent_starts_of_one_batch_id_give_one_202_and_409s(blob_service, container_factory):
    source, output = container_factory(), container_factory()
    async with keyed_host() as host, keyed_session() as http:

        async def start(batch_id: str) -> tuple[int, Any]:
            request = batch_request(source, output, batch_id=batch_id)
            return await post_json(http, host.api_url("batches"), request)

        pairs = await asyncio.gather(*[asyncio.gather(start(f"race-{n}"), start(f"race-{n}")) for n in range(20)])
        for n, answers in enumerate(pairs):
            codes = sorted(code for code, _ in answers)
            assert codes == [202, 409], (n, answers)
            conflict = next(body for code, body in answers if code == 409)
            assert conflict["error"] == "conflict" and conflict["errors"][0]["field"] == "batch_id", conflict
        for n in range(20):
            assert (await poll(http, host.api_url(f"batches/race-{n}"), timeout=60))["batchStatus"] == "Succeeded"


async def test_with_keys_on_no_url_carries_a_key(blob_service, container_factory):
    source, output = container_factory(), container_factory()
    seed_images(blob_service, source, 3)
    key = "test-function-key-123"
    headers = {"x-functions-key": key}
    async with DevHost(REPO, keys={"function": [key]}) as host, aiohttp.ClientSession() as http:
        system_key = host.keys_in_use.system
        url = host.api_url("batches") + f"?code={key}"
        async with http.post(url, json=batch_request(source, output, batch_id="keys-on")) as response:
            assert response.status == 202
            started_text = await response.text()
            location = response.headers["Location"]
        started = json.loads(started_text)
        assert set(started) == {"id", "run", "statusQueryGetUri", "cancelPostUri"}
        final = await poll_with(http, started["statusQueryGetUri"], headers)
        _, cancel_after = await post_json(http, started["cancelPostUri"], headers=headers)
        answers = [started_text, location, json.dumps(final), json.dumps(cancel_after)]
    for text in answers:
        assert "code=" not in text and key not in text, text
        assert system_key and system_key not in text, "the durabletask_extension system key is never handed out"
    assert final["batchStatus"] == "Succeeded" and "cancelPostUri" not in final
    assert cancel_after["error"] == "conflict", "a finished batch cannot be cancelled"


async def poll_with(http: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> dict[str, Any]:
    for _ in range(600):
        code, body = await get_json(http, url, headers=headers)
        assert code == 200, (code, body)
        if body["runtimeStatus"] not in ACTIVE:
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"still running: {body}")


async def test_progress_lags_by_at_most_one_segment_per_lane(monkeypatch, blob_service, container_factory):
    monkeypatch.setenv("SHARD_SIZE", "30")  # 2 shards of 30 images = 3 segments of 10 each
    source, output = container_factory(), container_factory()
    seed_images(blob_service, source, 60)
    lanes, segment = 2, 10
    lags: list[int] = []
    before_any_shard_ended: list[int] = []
    async with keyed_host() as host, keyed_session() as http:
        started = await start_batch(http, host.api_url("batches"), batch_request(source, output, max_concurrency=lanes))
        while True:
            _, status = await get_json(http, started["statusQueryGetUri"])
            truth = processed_images(host, await batch_instances(host, started["id"]))
            reported = status["progress"]["completed"]
            assert reported <= truth, "progress never runs ahead of the work"
            lags.append(truth - reported)
            shards = [i for i in await batch_instances(host, started["id"]) if ":" in i["instanceId"]]
            if reported and not [s for s in shards if s["runtimeStatus"] == "Completed"]:
                before_any_shard_ended.append(reported)
            if status["runtimeStatus"] not in ACTIVE:
                break
            await asyncio.sleep(0.05)
    assert status["batchStatus"] == "Succeeded" and status["progress"]["completed"] == 60
    assert max(lags) <= lanes * segment, lags
    assert before_any_shard_ended, "progress moves before a whole shard ends"
    print(f"progress lag over {len(lags)} polls: max {max(lags)}, bound {lanes * segment}")


async def test_finished_histories_are_purged_after_the_retention(monkeypatch, blob_service, container_factory):
    monkeypatch.setenv("SHARD_SIZE", "2")
    source, output = container_factory(), container_factory()
    seed_images(blob_service, source, 6)
    async with keyed_host() as host, keyed_session() as http:
        started = await start_batch(http, host.api_url("batches"), batch_request(source, output, batch_id="purged"))
        final = await poll(http, started["statusQueryGetUri"], timeout=60)
        instances = await batch_instances(host, "purged")
        assert len(instances) > 2, "the parent and its shards"

        await host.run_timer("purge_history")  # default retention (7 days): too young to purge
        assert len(await batch_instances(host, "purged")) == len(instances)

        monkeypatch.setenv("HISTORY_RETENTION_DAYS", "0")
        await host.run_timer("purge_history")
        assert await batch_instances(host, "purged") == []
        for instance in instances:  # every execution of every shard too
            assert host.history(instance["instanceId"], all_executions=True) == []
        code, _ = await get_json(http, started["statusQueryGetUri"])
        assert code == 404, "the history is gone"
    # The record of the batch is in storage, not in the task hub.
    assert read_manifest(blob_service, final["manifest"])["counts"]["done"] == 6


async def test_the_cancel_marker_alone_stops_the_lanes(monkeypatch, blob_service, container_factory):
    """If raising the event failed after the marker was written, the lanes still stop
    and the run still ends cancelled (every later shard stops at its first image)."""
    monkeypatch.setenv("SHARD_SIZE", "5")
    source, output = container_factory(), container_factory()
    seed_images(blob_service, source, 40)
    async with keyed_host() as host, keyed_session() as http:
        started = await start_batch(http, host.api_url("batches"), batch_request(source, output, max_concurrency=2))
        while (await get_json(http, started["statusQueryGetUri"]))[1]["progress"]["completed"] < 2:
            await asyncio.sleep(0.05)
        marker = cancel_blob_name("web/", started["id"], started["run"])
        blob_service.get_blob_client(output, marker).upload_blob(b"{}")
        final = await poll(http, started["statusQueryGetUri"], timeout=120)
    manifest = read_manifest(blob_service, final["manifest"])
    assert final["batchStatus"] == "Cancelled" and manifest["status"] == "cancelled"
    assert manifest["counts"]["not_started"] > 0 and len(manifest["images"]) == 40


def test_earlier_runs_are_found_without_listing_a_running_runs_blobs(
    azurite_connection_string, blob_service, container_factory
):
    """The status route's earlier-runs lookup reads one entry per run folder and one
    manifest by name, however many plan and part blobs a running run holds."""
    from azure.storage.blob import BlobServiceClient

    from storage.runs import finished_runs

    container = container_factory()
    folder = "web/_batches/b/runs/"
    client = blob_service.get_container_client(container)
    for run in ("20261201T100000Z-aaaaaa", "20261201T090000Z-bbbbbb"):
        client.upload_blob(f"{folder}{run}/manifest.json", b"{}")
        client.upload_blob(f"{folder}{run}/index.html", b"<html>")
    running = "20261201T110000Z-cccccc"
    for part in range(30):
        client.upload_blob(f"{folder}{running}/parts/{part:05d}-0000.json", b"{}")
    client.upload_blob(f"{folder}stray.json", b"{}")  # a blob beside the run folders is no run

    calls: list[str] = []
    counted = BlobServiceClient.from_connection_string(
        azurite_connection_string, raw_request_hook=lambda request: calls.append(request.http_request.method)
    )
    assert finished_runs(counted, container, folder) == ["20261201T090000Z-bbbbbb", "20261201T100000Z-aaaaaa"]
    # One delimiter listing, then one HEAD per run folder: no page of the running run's parts.
    assert calls == ["GET", "HEAD", "HEAD", "HEAD"], calls
    assert finished_runs(blob_service, container_factory(create=False), folder) == []


def test_scratch_blobs_go_in_batches_and_a_second_cleanup_finds_nothing(
    azurite_connection_string, blob_service, container_factory
):
    """A run's plans and parts (300 here) are deleted in Blob Batch calls of 256, the
    manifest beside them stays, and running the cleanup again (Durable may) is harmless."""
    from azure.storage.blob import BlobServiceClient

    from storage.runs import delete_prefixes

    container = container_factory()
    client = blob_service.get_container_client(container)
    run = "web/_batches/b/runs/r/"
    names = [f"{run}parts/{i:05d}-0000.json" for i in range(280)] + [f"{run}plans/{i:05d}.json" for i in range(20)]
    for name in names:
        client.upload_blob(name, b"{}")
    client.upload_blob(f"{run}manifest.json", b"{}")

    calls: list[str] = []
    counted = BlobServiceClient.from_connection_string(
        azurite_connection_string, raw_request_hook=lambda request: calls.append(request.http_request.method)
    )
    assert delete_prefixes(counted, container, (f"{run}parts/", f"{run}plans/")) == 300
    assert [b.name for b in client.list_blobs()] == [f"{run}manifest.json"]
    assert calls.count("DELETE") == 0 and calls.count("POST") == 3, calls  # 256 + 24 parts, 20 plans
    assert delete_prefixes(blob_service, container, (f"{run}parts/", f"{run}plans/")) == 0
