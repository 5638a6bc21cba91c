"""Every run ends with a true manifest, whatever storage does to its bookkeeping.

The real orchestrators and activity code on the local dev host against Azurite,
with one activity wrapped to misbehave the way storage does: a results blob
that vanishes, a plan blob that is gone, a manifest blob under someone else's
lease, a storage outage that outlasts every retry. Attempts are counted from
the instance histories.
"""

from __future__ import annotations

from dataclasses import replace

import azure.durable_functions as df
import azure.functions as func
import pytest
from azure.core.exceptions import ServiceResponseError

import orchestrators
from activities.list_images import plan_batch
from activities.notify_completion import notify_completion
from activities.process_image import process_image
from activities.shard_results import load_shard, record_shard_results
from durable_devhost.testing import DevHost
from imagebatch.function_names import IMAGE_PROCESSING_ORCHESTRATOR as ORCHESTRATOR_NAME
from imagebatch.function_names import LIST_IMAGES, LOAD_SHARD, NOTIFY_COMPLETION, SHARD_ORCHESTRATOR
from imagebatch.messages import (
    BatchInput,
    BatchSummary,
    ListImagesInput,
    LoadShardInput,
    NotifyInput,
    ProcessImageInput,
    RecordResultsInput,
    ShardPlan,
    ShardRecord,
)
from imagebatch.naming import manifest_blob_name, shard_plan_blob
from imagebatch.settings import AppSettings
from imagebatch.specs import BatchRequest, RenderSpec, Rendition
from storage.clients import async_blob_service_client
from tests.batchkit import close_app_storage_clients, keyed_host, keyed_session, read_manifest
from tests.history_checks import executions
from tests.test_orchestrator import RUN, batch_input, seed_images

pytestmark = pytest.mark.usefixtures(close_app_storage_clients.__name__)


def hooked_app(service, *, after_list=None, after_record=None, notify=None) -> df.DFApp:
    """The real app's orchestrators and activity code; ``after_*`` run after the real
    activity (to damage what it wrote), ``notify`` replaces NotifyCompletion."""
    bp = df.Blueprint()
    settings = AppSettings()

    @bp.activity_trigger(input_name="payload")
    def ListImages(payload: dict) -> dict:
        job = ListImagesInput.from_dict(payload)
        plan = plan_batch(job, service, 5000)
        if after_list:
            after_list(job, plan)
        return plan.to_dict()

    @bp.activity_trigger(input_name="payload")
    async def LoadShard(payload: dict) -> dict:
        segment = await load_shard(LoadShardInput.from_dict(payload), async_blob_service_client("AzureWebJobsStorage"))
        return segment.to_dict()

    @bp.activity_trigger(input_name="payload")
    async def RecordShardResults(payload: dict) -> dict:
        record = RecordResultsInput.from_dict(payload)
        result = await record_shard_results(record, async_blob_service_client("AzureWebJobsStorage"))
        if after_record:
            after_record(record)
        return result.to_dict()

    @bp.activity_trigger(input_name="payload")
    def ProcessImage(payload: dict) -> dict:
        return process_image(ProcessImageInput.from_dict(payload), service, settings)

    @bp.activity_trigger(input_name="payload")
    def NotifyCompletion(payload: dict) -> dict:
        return (notify or notify_completion)(NotifyInput.from_dict(payload), service, settings).to_dict()

    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
    app.register_functions(orchestrators.bp)
    app.register_functions(bp)
    return app


Histories = dict[str, tuple[str, list[dict]]]


def attempts(histories: Histories, activity: str, instance_suffix: str = "") -> tuple[int, int]:
    """(scheduled, failed) attempts of ``activity`` over every instance (whose id ends
    with ``instance_suffix``) and every execution."""
    scheduled = failed = 0
    for instance_id, (_, all_runs) in histories.items():
        if not instance_id.endswith(instance_suffix):
            continue
        for history in executions(all_runs):  # sequence ids restart in every execution
            names = {e["EventId"]: e.get("Name") for e in history if e["EventType"] == 4}
            scheduled += sum(1 for e in history if e["EventType"] == 4 and e.get("Name") == activity)
            failed += sum(1 for e in history if e["EventType"] == 6 and names.get(e["TaskScheduledId"]) == activity)
    return scheduled, failed


async def run(app: df.DFApp, request: BatchInput, instance_id: str | None = None) -> tuple[dict, Histories]:
    async with DevHost(app) as host:
        instance_id = await host.start_orchestration(ORCHESTRATOR_NAME, request.to_dict(), instance_id)
        status = await host.wait(instance_id, timeout=120)
        histories = {
            i["instanceId"]: (i["name"], host.history(i["instanceId"], all_executions=True))
            for i in await host.engine.list_instances()
        }
    return status, histories


async def test_a_vanished_results_blob_costs_no_record(blob_service, container_factory):
    source, output = container_factory(), container_factory()
    names = seed_images(blob_service, source, 8)

    def delete_results(record: RecordResultsInput) -> None:  # "a results blob deleted as it appeared"
        blob_service.get_blob_client(record.container, record.blob).delete_blob()

    status, _ = await run(hooked_app(blob_service, after_record=delete_results), batch_input(source, output, limit=2))
    assert status["runtimeStatus"] == "Completed", status["output"]
    manifest = read_manifest(blob_service, status["output"]["manifest"])
    images = {i["name"]: i for i in manifest["images"]}
    assert sorted(images) == sorted(names), "every image has its record"
    assert all(i["status"] == "processed" and i.get("recovered") for i in images.values()), images
    assert all(len(i["outputs"]) == 2 for i in images.values()), "outputs re-checked in storage"


async def test_a_gone_plan_fails_its_shard_once_without_retries(blob_service, container_factory):
    source, output = container_factory(), container_factory()
    seed_images(blob_service, source, 6)

    def delete_first_plan(job: ListImagesInput, plan: ShardPlan) -> None:
        blob_service.get_blob_client(job.output_container, shard_plan_blob(plan.plan, 0)).delete_blob()

    request = batch_input(source, output, limit=1, tolerated=100)
    status, histories = await run(hooked_app(blob_service, after_list=delete_first_plan), request)
    assert status["runtimeStatus"] == "Completed", status["output"]
    manifest = read_manifest(blob_service, status["output"]["manifest"])
    failed = manifest["failures"]
    assert failed and {f["kind"] for f in failed} == {"blob_gone"}, failed
    assert "cannot be read" in failed[0]["message"] and "\n" not in failed[0]["message"]
    shards = [i for i, (name, _) in histories.items() if name == SHARD_ORCHESTRATOR]
    # A 404 can never succeed: one LoadShard attempt, one shard attempt (it was 4 x 4 = 16).
    assert attempts(histories, LOAD_SHARD, ":00000") == (1, 0)
    (parent,) = [h for name, h in histories.values() if name == ORCHESTRATOR_NAME]
    created = [e for e in parent if e["EventType"] == 7]
    assert len(created) == len(shards), "no shard was started twice"


async def test_a_storage_outage_through_every_retry_still_ends_with_the_counts(blob_service, container_factory):
    source, output = container_factory(), container_factory()
    seed_images(blob_service, source, 4)

    def storage_down(notify: NotifyInput, service, settings) -> BatchSummary:
        raise ServiceResponseError("Connection reset by peer")

    status, histories = await run(hooked_app(blob_service, notify=storage_down), batch_input(source, output, limit=2))
    assert status["runtimeStatus"] == "Completed", status["output"]
    summary = status["output"]
    assert summary["counts"]["done"] == 4 and summary["status"] == "succeeded" and summary["manifest"] is None
    expected = f"{output}/{manifest_blob_name('out/', status['instanceId'], RUN)}"
    assert summary["manifest_error"].startswith(f"the manifest could not be written to {expected}: ")
    assert "\n" not in summary["manifest_error"] and "Traceback" not in summary["manifest_error"]
    assert attempts(histories, NOTIFY_COMPLETION) == (3, 3), "transient: every attempt of the policy"


async def test_a_refused_manifest_write_is_not_retried(blob_service, container_factory):
    source, output = container_factory(), container_factory()
    seed_images(blob_service, source, 3)
    instance_id = "leased-manifest"
    manifest = blob_service.get_blob_client(output, manifest_blob_name("out/", instance_id, RUN))
    manifest.upload_blob(b"{}")
    manifest.acquire_lease(lease_duration=-1)  # someone else's infinite lease: 412 on every overwrite

    status, histories = await run(hooked_app(blob_service), batch_input(source, output, limit=2), instance_id)
    summary = status["output"]
    assert status["runtimeStatus"] == "Completed" and summary["counts"]["done"] == 3
    assert summary["manifest"] is None and "412" in summary["manifest_error"], summary
    assert attempts(histories, NOTIFY_COMPLETION) == (1, 0), "a lease cannot clear by retrying"


async def test_a_batch_with_no_images_says_so(blob_service, container_factory):
    source, output = container_factory(), container_factory()
    request = batch_input(source, output, limit=2, prefix="typo/")
    status, _ = await run(hooked_app(blob_service), request)
    summary = status["output"]
    assert status["runtimeStatus"] == "Completed" and summary["counts"]["total"] == 0
    assert summary["warnings"] == [f"no images found under '{source}/typo/': check the container and prefix"]
    assert read_manifest(blob_service, summary["manifest"])["warnings"] == summary["warnings"]


def test_sniffing_and_output_name_limits() -> None:
    from imagebatch.source_check import output_name_error, sniff_image_format

    assert sniff_image_format(b"\xff\xd8\xff\xe0\x00\x10JFIF") == "jpeg"
    assert sniff_image_format(b"RIFF\x10\x00\x00\x00WEBPVP8 ") == "webp"
    assert sniff_image_format(b"<x:xmpmeta xmlns") is None and sniff_image_format(b"") is None
    assert output_name_error("web/", "a.jpg", ["thumb"], "jpg") is None
    long_name = "d/" * 10 + "x" * 1000 + ".jpg"
    assert "over Azure's 1024" in (output_name_error("web/", long_name, ["thumb"], "jpg") or "")
    deep = "/".join(["d"] * 254) + ".jpg"  # a valid source name (254 segments); its outputs have 255
    assert "path segments, over Azure's 254" in (output_name_error("", deep, ["t"], "jpg") or "")


async def test_nothing_under_the_prefix_is_silently_ignored(blob_service, container_factory):
    """Sidecars are listed as not images, an extensionless JPEG is processed, and an
    image whose output name would exceed Azure's limits fails as invalid_name."""
    from tests.batchkit import small_jpeg

    source, output = container_factory(), container_factory()
    seed_images(blob_service, source, 2)
    extra = {
        "in/img000.xmp": b"<x:xmpmeta/>",
        "in/notes": b"hello",
        "in/empty": b"",
        "in/EXPORT_0001": small_jpeg(5),  # a JPEG without an extension
        "in/" + "x" * 1010 + ".jpg": small_jpeg(6),  # its outputs would be over 1,024 characters
    }
    for name, data in extra.items():
        blob_service.get_blob_client(source, name).upload_blob(data)
    status, _ = await run(hooked_app(blob_service), batch_input(source, output, limit=2, tolerated=50))
    summary = status["output"]
    assert status["runtimeStatus"] == "Completed", summary
    manifest = read_manifest(blob_service, summary["manifest"])
    images = {i["name"]: i for i in manifest["images"]}
    assert images["in/EXPORT_0001"]["status"] == "processed"
    too_long = images["in/" + "x" * 1010 + ".jpg"]
    assert too_long["status"] == "failed" and too_long["kind"] == "invalid_name", too_long
    assert manifest["counts"]["total"] == 4 and manifest["counts"]["failed"] == 1
    not_images = manifest["not_images"]
    assert not_images["count"] == 3
    assert {i["name"] for i in not_images["items"]} == {"in/img000.xmp", "in/notes", "in/empty"}
    assert all("not an image" in i["reason"] for i in not_images["items"])


def test_an_image_is_all_or_nothing(blob_service, container_factory):
    """One rendition's blob under someone else's lease: the other rendition written in
    the same attempt is removed again, and the image is recorded with no outputs."""
    from activities.process_image import process_image
    from tests.batchkit import small_jpeg
    from tests.test_activities import SETTINGS, SPEC, payload

    source, output = container_factory(), container_factory()
    blob_service.get_blob_client(source, "cat.jpg").upload_blob(small_jpeg(1, (600, 400)))
    from imagebatch.naming import output_blob_name, output_version

    etag = str(blob_service.get_blob_client(source, "cat.jpg").get_blob_properties().etag).strip('"')
    thumb = output_blob_name("web/", "cat.jpg", "thumb", "jpg", output_version(etag, SPEC.fingerprint()))
    leased = blob_service.get_blob_client(output, thumb)
    leased.upload_blob(b"someone else's")
    leased.acquire_lease(lease_duration=-1)

    result = process_image(payload(source, "cat.jpg", output, SPEC), blob_service, SETTINGS)
    assert result["status"] == "failed" and result["kind"] == "storage_error" and result["outputs"] == []
    names = {b.name for b in blob_service.get_container_client(output).list_blobs()}
    assert names == {thumb}, "large was written, then removed: nothing half-made"
    assert leased.download_blob().readall() == b"someone else's"


def test_a_source_that_turned_bad_loses_its_old_renditions(blob_service, container_factory):
    from activities.process_image import process_image
    from tests.batchkit import small_jpeg
    from tests.test_activities import SETTINGS, SPEC, payload

    source, output = container_factory(), container_factory()
    blob = blob_service.get_blob_client(source, "cat.jpg")
    blob.upload_blob(small_jpeg(1, (600, 400)))
    assert process_image(payload(source, "cat.jpg", output, SPEC), blob_service, SETTINGS)["status"] == "processed"
    blob.upload_blob(b"\xff\xd8\xff\xe0 no longer a picture", overwrite=True)

    result = process_image(payload(source, "cat.jpg", output, SPEC), blob_service, SETTINGS)
    assert result["status"] == "failed" and result["removed_outputs"] == 2, result
    assert list(blob_service.get_container_client(output).list_blobs()) == [], "no stale picture beside 'failed'"


def test_notify_completion_run_again_after_its_cleanup_keeps_the_manifest(blob_service, container_factory):
    """At-least-once: the host died after NotifyCompletion wrote the manifest and removed
    the run's parts. The re-run must not rebuild the manifest from parts that are gone."""
    import json

    from imagebatch.results import Progress

    output = container_factory()
    from imagebatch.naming import segment_part_blob, shard_parts_prefix

    part = segment_part_blob(shard_parts_prefix("web/", "b-again", "r1", 0), 0)
    records = [
        {"name": "a.jpg", "status": "processed", "outputs": [], "duration_ms": 5},
        {"name": "b.jpg", "status": "processed", "outputs": [], "duration_ms": 6},
    ]
    blob_service.get_blob_client(output, part).upload_blob(json.dumps(records))
    notify = NotifyInput(
        instance_id="b-again",
        run="r1",
        request=BatchRequest(
            source_container="photos",
            output_container=output,
            output_prefix="web/",
            spec=RenderSpec(renditions=(Rendition("t", 16),), format="jpeg", quality=80),
        ),
        plan_folder="web/_batches/b-again/runs/r1/plans/p/",
        shard_outcomes=(ShardRecord(parts=1, segment_size=10),),
        progress=Progress(total=2, done=2).to_dict(),
        status="succeeded",
        started="2026-12-01T10:00:00+00:00",
        finished="2026-12-01T10:00:05+00:00",
    )
    first = notify_completion(notify, blob_service, AppSettings())
    assert not blob_service.get_blob_client(output, part).exists(), "the parts are gone after the first attempt"
    again = notify_completion(notify, blob_service, AppSettings())
    assert again == first
    manifest = read_manifest(blob_service, again.manifest)
    assert [i["status"] for i in manifest["images"]] == ["processed", "processed"]


def test_a_changed_source_gets_new_urls_and_its_old_versions_go(blob_service, container_factory):
    from activities.process_image import process_image
    from tests.batchkit import small_jpeg
    from tests.test_activities import SETTINGS, SPEC, payload

    source, output = container_factory(), container_factory()
    blob = blob_service.get_blob_client(source, "cat.jpg")
    blob.upload_blob(small_jpeg(1, (600, 400)))
    legacy = blob_service.get_blob_client(output, "web/cat.jpg/thumb.jpg")  # an older release's name
    legacy.upload_blob(b"old")
    first = process_image(payload(source, "cat.jpg", output, SPEC), blob_service, SETTINGS)
    blob.upload_blob(small_jpeg(2, (600, 400)), overwrite=True)
    second = process_image(payload(source, "cat.jpg", output, SPEC), blob_service, SETTINGS)

    old_urls = {o["blob"] for o in first["outputs"]}
    new_urls = {o["blob"] for o in second["outputs"]}
    assert first["status"] == second["status"] == "processed" and not old_urls & new_urls
    stored = {b.name: b for b in blob_service.get_container_client(output).list_blobs()}
    assert set(stored) == new_urls, "only the current version is left (and no unversioned legacy name)"
    assert all(b.content_settings.cache_control == SETTINGS.cache_control for b in stored.values())
    assert "immutable" in SETTINGS.cache_control
    again = process_image(payload(source, "cat.jpg", output, SPEC), blob_service, SETTINGS)
    assert again["status"] == "skipped" and {o["blob"] for o in again["outputs"]} == new_urls


async def test_a_read_only_credential_ends_at_once_with_a_clear_reason(
    blob_service, container_factory, azurite_connection_string
):
    """The app's storage credential can read and list but not write (a read-only SAS):
    nothing can ever succeed, so the batch ends Failed at once, each bookkeeping
    activity tried once, with one line saying why (before: retried as transient)."""
    from datetime import UTC, datetime, timedelta

    from azure.storage.blob import AccountSasPermissions, BlobServiceClient, ResourceTypes, generate_account_sas

    from tests.azurite import ACCOUNT, ACCOUNT_KEY

    source, output = container_factory(), container_factory()
    seed_images(blob_service, source, 3)
    sas = generate_account_sas(
        ACCOUNT,
        ACCOUNT_KEY,
        ResourceTypes(service=True, container=True, object=True),
        AccountSasPermissions(read=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    read_only = BlobServiceClient(blob_service.url, credential=sas, retry_total=0)
    status, histories = await run(hooked_app(read_only), batch_input(source, output, limit=2))
    assert status["runtimeStatus"] == "Failed", status
    error = status["output"]
    assert "cannot list the source or write the batch plan: storage returned 403" in error, error
    assert "the manifest could not be written" in error and "Traceback" not in error
    assert attempts(histories, LIST_IMAGES) == (1, 0) and attempts(histories, NOTIFY_COMPLETION) == (1, 0)


async def test_the_output_container_deleted_mid_batch(blob_service, container_factory):
    """Someone deletes the output container while the batch runs (renditions, plans and
    results with it). The run still ends with a manifest that says what it lost, and a
    re-submission leaves every rendition in place."""
    from tests.batchkit import check_outputs

    source, output = container_factory(), container_factory()
    names = seed_images(blob_service, source, 12)
    etags = {n: str(blob_service.get_blob_client(source, n).get_blob_properties().etag).strip('"') for n in names}
    deleted: list[str] = []

    def delete_container_once(record: RecordResultsInput) -> None:
        if not deleted:
            deleted.append(record.blob)
            blob_service.delete_container(output)

    request = batch_input(source, output, limit=2, tolerated=100)
    status, _ = await run(hooked_app(blob_service, after_record=delete_container_once), request, "deleted-1")
    assert deleted and status["runtimeStatus"] == "Completed", status
    manifest = read_manifest(blob_service, status["output"]["manifest"])
    assert manifest["counts"]["total"] == 12 and manifest["images"], "a manifest, whatever was lost"
    assert {i["status"] for i in manifest["images"]} <= {"processed", "unknown", "failed"}

    again = replace(request, run="20261201T000001Z-000001")
    second, _ = await run(hooked_app(blob_service), again, "deleted-2")
    assert second["runtimeStatus"] == "Completed" and second["output"]["counts"]["failed"] == 0, second
    spec = request.request.spec
    assert check_outputs(blob_service, output, "out/", etags, spec) == []


async def test_azurite_restarted_mid_batch(tmp_path, monkeypatch, azurite_connection_string):
    """The storage service itself goes away mid-batch and comes back 3 s later with its
    data (a persistent Azurite restarted on the same port). Transient errors are retried:
    the batch ends with a manifest naming every image once, and every rendition exists.
    (Stopped with SIGTERM: a SIGKILLed Azurite loses its last writes from its metadata
    store, which Azure Storage never does to an acknowledged write.)"""
    import asyncio
    import signal
    import subprocess

    from azure.storage.blob import BlobServiceClient

    import storage.clients
    from tests.azurite import _free_port, _wait_for_port, azurite_command, connection_string
    from tests.batchkit import batch_request, check_outputs, poll, seed_images, start_batch

    port = _free_port()
    command = [a if a != "--inMemoryPersistence" else "--location" for a in azurite_command(port)]
    command.insert(command.index("--location") + 1, str(tmp_path / "azurite"))

    def start() -> subprocess.Popen:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for_port(port, 30)
        return process

    azurite = start()
    try:
        conn = connection_string(f"http://127.0.0.1:{port}/devstoreaccount1")
        monkeypatch.setenv("AzureWebJobsStorage", conn)
        monkeypatch.setenv("ACTIVITY_RETRY_FIRST_INTERVAL_MS", "500")
        monkeypatch.setenv("ACTIVITY_RETRY_MAX_ATTEMPTS", "6")
        storage.clients.reset_clients()
        service = BlobServiceClient.from_connection_string(conn)
        service.create_container("src")
        sources = seed_images(service, "src", 40)
        async with keyed_host() as host, keyed_session() as http:
            started = await start_batch(http, host.api_url("batches"), batch_request("src", "out", max_concurrency=4))
            while True:
                async with http.get(started["statusQueryGetUri"]) as response:
                    progress = (await response.json())["progress"]
                if progress["completed"] >= 8:
                    break
                await asyncio.sleep(0.05)
            azurite.send_signal(signal.SIGTERM)  # it saves its metadata, then waits on open connections
            try:
                azurite.wait(5)
            except subprocess.TimeoutExpired:
                azurite.kill()
                azurite.wait()
            await asyncio.sleep(3)
            azurite = start()
            final = await poll(http, started["statusQueryGetUri"], timeout=180)
        manifest = read_manifest(service, final["manifest"])
        names = [i["name"] for i in manifest["images"]]
        assert final["batchStatus"] == "Succeeded", final
        assert sorted(names) == sorted(sources) and manifest["counts"]["done"] == 40
        assert check_outputs(service, "out", "web/", sources) == []
    finally:
        azurite.kill()
        azurite.wait()
        storage.clients.reset_clients()
