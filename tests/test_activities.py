"""Activities against a real Azurite: listing, rendering, idempotence, manifest."""

from __future__ import annotations

import asyncio
import io
import json
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from azure.core.exceptions import ServiceRequestError
from azure.storage.blob import BlobServiceClient
from PIL import Image

from activities.list_images import list_images, plan_batch
from activities.notify_completion import notify_completion
from activities.process_image import process_image
from activities.shard_results import load_shard, record_shard_results
from imagebatch.messages import (
    ImageResult,
    ListImagesInput,
    LoadShardInput,
    NotifyInput,
    ProcessImageInput,
    RecordResultsInput,
    ShardRecord,
    ShardSegment,
    UnprocessedShard,
)
from imagebatch.naming import segment_part_blob, shard_parts_prefix, shard_plan_blob
from imagebatch.results import Progress
from imagebatch.settings import AppSettings
from imagebatch.specs import BatchRequest, RenderSpec, Rendition, SourceBlob
from storage.clients import async_blob_service_client
from tests.azurite import connection_string

SETTINGS = AppSettings(notify_attempts=2, notify_timeout_seconds=2)


def run_async(activity, message):
    """Run an async activity function with the app's asyncio client, as the worker would."""

    async def call():
        service = async_blob_service_client("AzureWebJobsStorage")
        try:
            return await activity(message, service)
        finally:
            await service.close()

    return asyncio.run(call())


def jpeg_bytes(width: int, height: int, color=(200, 60, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def upload(service: BlobServiceClient, container: str, name: str, data: bytes) -> None:
    service.get_blob_client(container, name).upload_blob(data, overwrite=True)


def payload(container: str, name: str, out_container: str, spec: RenderSpec, prefix: str = "web/") -> ProcessImageInput:
    return ProcessImageInput(container, SourceBlob(name), out_container, prefix, spec)


def listing(source: str, output: str, prefix: str = "", *, output_prefix: str = "", **options) -> ListImagesInput:
    """ListImages' input for a batch of ``source`` (a prefix, or ``blobs=[...]``) into ``output``."""
    page_size, shard_size = options.pop("page_size", None), options.pop("shard_size", None)
    blobs = options.pop("blobs", None)
    request = BatchRequest(
        source_container=source,
        output_container=output,
        source_prefix=None if blobs is not None else prefix,
        source_blobs=None if blobs is None else tuple(blobs),
        output_prefix=output_prefix,
        **options,
    )
    return ListImagesInput(options.get("batch_id") or "b1", "r1", request, page_size=page_size, shard_size=shard_size)


SPEC = RenderSpec(renditions=(Rendition("large", 400), Rendition("thumb", 100)), format="jpeg", quality=80)


def test_list_images_follows_every_page_sorted_and_filtered(blob_service, container_factory):
    container = container_factory()
    names = [f"in/img{i:02d}.jpg" for i in (5, 1, 3, 0, 4, 2, 6)]
    for name in names:
        upload(blob_service, container, name, b"x")
    upload(blob_service, container, "in/readme.txt", b"x")
    upload(blob_service, container, "other/skip.jpg", b"x")

    result = list_images(listing(container, "out", "in/", page_size=2), blob_service, 5000)

    assert [i["name"] for i in result["images"]] == sorted(names)
    assert result["pages"] >= 4, "a page size of 2 over 8 blobs must take several pages"
    first = result["images"][0]
    assert set(first) == {"name", "etag", "size"} and first["size"] == 1 and first["etag"]


def test_list_images_never_lists_own_outputs_in_a_shared_container(blob_service, container_factory):
    container = container_factory()
    for name in ("a.jpg", "b.png", "web/a/large.jpg", "web/_batches/x/manifest.json", "web/_batches/x/i.jpg"):
        upload(blob_service, container, name, b"x")
    shared = listing(container, container, "", output_prefix="web/", page_size=2)
    assert shared.exclude_own_outputs
    result = list_images(shared, blob_service, 5000)
    assert [i["name"] for i in result["images"]] == ["a.jpg", "b.png"]


def test_list_images_reports_a_missing_container(blob_service, container_factory):
    missing = container_factory(create=False)
    result = list_images(listing(missing, "out", ""), blob_service, 5000)
    assert result["images"] == [] and missing in result["error"]


def test_process_image_writes_renditions_with_headers_and_metadata(blob_service, container_factory):
    source, output = container_factory(), container_factory()
    upload(blob_service, source, "2024/cat.jpg", jpeg_bytes(800, 600))

    result = process_image(payload(source, "2024/cat.jpg", output, SPEC), blob_service, SETTINGS)

    assert result["status"] == "processed", result
    by_name = {o["rendition"]: o for o in result["outputs"]}
    assert (by_name["large"]["width"], by_name["large"]["height"]) == (400, 300)
    assert (by_name["thumb"]["width"], by_name["thumb"]["height"]) == (100, 75)
    for output_entry in result["outputs"]:
        blob = blob_service.get_blob_client(output, output_entry["blob"])
        props = blob.get_blob_properties()
        assert props.content_settings.content_type == "image/jpeg"
        assert "max-age" in props.content_settings.cache_control
        assert props.metadata["rendition"] == output_entry["rendition"]
        assert props.metadata["width"] == str(output_entry["width"])
        assert props.metadata["source_name"] == "2024/cat.jpg"
        assert props.metadata["source_etag"]
        assert props.size == output_entry["bytes"]
        with Image.open(io.BytesIO(blob.download_blob().readall())) as image:
            assert image.size == (output_entry["width"], output_entry["height"])
        assert output_entry["blob"].startswith("web/")


def test_process_image_skips_unchanged_and_redoes_changed_sources(blob_service, container_factory):
    source, output = container_factory(), container_factory()
    upload(blob_service, source, "dog.jpg", jpeg_bytes(500, 500))
    request = payload(source, "dog.jpg", output, SPEC)

    assert process_image(request, blob_service, SETTINGS)["status"] == "processed"
    again = process_image(request, blob_service, SETTINGS)
    assert again["status"] == "skipped"
    assert {o["rendition"] for o in again["outputs"]} == {"large", "thumb"}

    other_spec = RenderSpec(renditions=SPEC.renditions, format="jpeg", quality=60)
    assert process_image(payload(source, "dog.jpg", output, other_spec), blob_service, SETTINGS)["status"] == (
        "processed"
    ), "different parameters must not be skipped"

    upload(blob_service, source, "dog.jpg", jpeg_bytes(500, 500, color=(0, 0, 255)))
    assert process_image(payload(source, "dog.jpg", output, other_spec), blob_service, SETTINGS)["status"] == (
        "processed"
    ), "a changed source (new etag) must be processed again"


def test_process_image_records_permanent_failures(blob_service, container_factory):
    source, output = container_factory(), container_factory()
    upload(blob_service, source, "broken.jpg", jpeg_bytes(300, 300)[:200])
    upload(blob_service, source, "empty.jpg", b"")
    upload(blob_service, source, "page.jpg", b"<html><body>not an image</body></html>")

    kinds = {
        name: process_image(payload(source, name, output, SPEC), blob_service, SETTINGS)
        for name in ("broken.jpg", "empty.jpg", "page.jpg", "gone.jpg")
    }
    assert {n: r["status"] for n, r in kinds.items()} == dict.fromkeys(kinds, "failed")
    assert kinds["broken.jpg"]["kind"] == "truncated"
    assert kinds["empty.jpg"]["kind"] == "empty"
    assert kinds["page.jpg"]["kind"] == "unsupported"
    assert kinds["gone.jpg"]["kind"] == "blob_gone"
    assert all(r["message"] for r in kinds.values())


def test_process_image_raises_transient_errors_for_the_retry_policy(container_factory):
    dead = BlobServiceClient.from_connection_string(
        connection_string("http://127.0.0.1:9/devstoreaccount1"), retry_total=0, connection_timeout=1
    )
    with pytest.raises(ServiceRequestError):
        process_image(payload("src", "a.jpg", "out", SPEC), dead, SETTINGS)


class _Hook(BaseHTTPRequestHandler):
    received: list[dict] = []
    status = 204

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).received.append(json.loads(self.rfile.read(length)))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def webhook():
    _Hook.received = []
    _Hook.status = 204
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Hook
    server.shutdown()


def _notify_payload(output: str) -> NotifyInput:
    progress = Progress(total=2, done=1, failed=1)
    results = (
        ImageResult("a.jpg", "processed", duration_ms=12),
        ImageResult("b.jpg", "failed", kind="corrupt", message="bad data"),
    )
    return NotifyInput(
        instance_id="batch-1",
        run="r1",
        request=BatchRequest(source_container="photos", output_container=output, output_prefix="web/"),
        # One shard whose one segment's results were carried inline (no blob to read).
        shard_outcomes=(ShardRecord(parts=1, segment_size=2, inline={"0": results}),),
        progress=progress.to_dict(),
        status="failed",
        started="2026-11-26T10:00:00+00:00",
        finished="2026-11-26T10:00:05+00:00",
    )


def test_notify_completion_writes_the_manifest_and_posts_the_summary(blob_service, container_factory, webhook):
    url, hook = webhook
    output = container_factory(create=False)  # NotifyCompletion creates it when missing
    settings = AppSettings(notify_webhook_url=url, notify_attempts=2, notify_timeout_seconds=2)

    summary = notify_completion(_notify_payload(output), blob_service, settings)

    assert summary.manifest == f"{output}/web/_batches/batch-1/runs/r1/manifest.json"
    manifest = json.loads(
        blob_service.get_blob_client(output, "web/_batches/batch-1/runs/r1/manifest.json").download_blob().readall()
    )
    latest_blob = blob_service.get_blob_client(output, "web/_batches/batch-1/latest.json")
    latest = json.loads(latest_blob.download_blob().readall())
    assert latest["run"] == "r1" and latest["manifest"] == "web/_batches/batch-1/runs/r1/manifest.json"
    assert manifest["counts"]["failed"] == 1 and manifest["status"] == "failed"
    assert manifest["failures"] == [{"name": "b.jpg", "kind": "corrupt", "message": "bad data"}]
    assert len(manifest["images"]) == 2
    assert summary.webhook == "delivered"
    assert hook.received == [replace(summary, webhook=None).to_dict()]
    assert "AccountKey" not in json.dumps(manifest)


def test_notify_completion_survives_a_failing_webhook(blob_service, container_factory, webhook):
    url, hook = webhook
    hook.status = 503
    output = container_factory()
    settings = AppSettings(notify_webhook_url=url, notify_attempts=2, notify_timeout_seconds=2)
    summary = notify_completion(_notify_payload(output), blob_service, settings)
    assert summary.webhook == "failed: HTTP 503"
    assert len(hook.received) == 2, "bounded retries: exactly notify_attempts posts"


def test_list_images_writes_a_shard_plan_and_returns_only_sizes(blob_service, container_factory):
    source, output = container_factory(), container_factory()
    names = [f"p/{i:03d}.jpg" for i in range(23)]
    for name in names:
        upload(blob_service, source, name, b"x")
    job = listing(source, output, "p/", output_prefix="web/", page_size=5, max_concurrency=4, shard_size=4)
    plan = plan_batch(job, blob_service, 5000)
    assert plan.total == 23 and sum(plan.shards) == 23 and max(plan.shards) <= 4
    assert plan.pages == 5 and plan.plan.startswith("web/_batches/b1/runs/r1/plans/")
    assert len(json.dumps(plan.to_dict())) < 400, "the listing itself stays out of the orchestration"
    listed = []
    for shard, size in enumerate(plan.shards):
        loaded = run_async(load_shard, LoadShardInput(output, shard_plan_blob(plan.plan, shard)))
        assert loaded.request == job.request, "each shard's plan carries the request"
        assert len(loaded.images) == size
        listed += [image.name for image in loaded.images]
    assert listed == names


def test_explicit_blob_lists_are_planned_without_listing(blob_service, container_factory):
    output = container_factory()
    job = listing("whatever", output, blobs=["b.jpg", "a.jpg"], max_concurrency=1, batch_id="b2")
    plan = plan_batch(job, blob_service, 5000)
    assert plan.shards == (2,)  # one lane: no reason to pay for a second shard
    first = run_async(load_shard, LoadShardInput(output, shard_plan_blob(plan.plan, 0)))
    assert first == ShardSegment(request=job.request, images=(SourceBlob("b.jpg"), SourceBlob("a.jpg")), total=2)
    segment = run_async(load_shard, LoadShardInput(output, shard_plan_blob(plan.plan, 0), start=1, count=10))
    assert segment.images == (SourceBlob("a.jpg"),) and segment.total == 2


def test_shard_results_round_trip_into_the_manifest(blob_service, container_factory):
    output = container_factory()
    notify = _notify_payload(output)
    for shard in (0, 2):
        for segment in range(2):
            blob = segment_part_blob(shard_parts_prefix("web/", notify.instance_id, notify.run, shard), segment)
            result = ImageResult(f"{shard}-{segment}.jpg", "processed", duration_ms=1)
            run_async(record_shard_results, RecordResultsInput(output, blob, (result,)))
    upload(
        blob_service,
        output,
        "plan/00003.json",
        json.dumps({"request": None, "images": [{"name": "x.jpg"}, {"name": "y.jpg"}]}).encode(),
    )
    inline = ImageResult("inline.jpg", "processed", duration_ms=1)
    notify = replace(
        notify,
        shard_outcomes=(
            ShardRecord(parts=2, segment_size=1),
            ShardRecord(parts=1, segment_size=1, inline={"0": (inline,)}),
            ShardRecord(parts=2, segment_size=1),
            ShardRecord(failed=UnprocessedShard("plan/00003.json", 2, "shard_failed", "boom")),
            ShardRecord(failed=UnprocessedShard("plan/missing.json", 5, "shard_failed", "boom")),
        ),
    )
    summary = notify_completion(notify, blob_service, SETTINGS)
    assert summary.manifest is not None
    manifest_blob = summary.manifest.split("/", 1)[1]
    manifest = json.loads(blob_service.get_blob_client(output, manifest_blob).download_blob().readall())
    names = [i["name"] for i in manifest["images"]]
    assert names == [
        "0-0.jpg",
        "0-1.jpg",
        "inline.jpg",
        "2-0.jpg",
        "2-1.jpg",
        "x.jpg",
        "y.jpg",
        "5 image(s) of plan/missing.json",
    ]
    assert [f["name"] for f in manifest["failures"]] == names[5:]
    assert {f["kind"] for f in manifest["failures"]} == {"shard_failed"}


def test_permanent_storage_errors_are_recorded_not_retried(blob_service, container_factory, azurite_connection_string):
    source, output = container_factory(), container_factory()
    upload(blob_service, source, "a.jpg", jpeg_bytes(64, 64))
    wrong_key = azurite_connection_string.replace("AccountKey=Eby8", "AccountKey=AAAA")
    refused = BlobServiceClient.from_connection_string(wrong_key, retry_total=0)
    result = process_image(payload(source, "a.jpg", output, SPEC), refused, SETTINGS)
    assert result["status"] == "failed" and result["kind"] == "storage_error"
    assert "403" in result["message"]
