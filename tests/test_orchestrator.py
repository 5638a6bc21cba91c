"""ImageProcessing_Orchestrator driven through the real Durable SDK replay on
the local dev host, with real activities against Azurite (and, for retries,
activities that fail transiently the way storage does).

The concurrency bound is measured from the instance history, not trusted.
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
from dataclasses import replace

import azure.durable_functions as df
import azure.functions as func
import pytest
from azure.core.exceptions import ServiceResponseError
from PIL import Image

import activities
import orchestrators
from activities.list_images import plan_batch
from activities.notify_completion import notify_completion
from activities.process_image import process_image
from activities.shard_results import load_shard, record_shard_results
from durable_devhost.functions import FunctionIndex
from durable_devhost.invoke import invoke_orchestrator, orchestrator_payload
from durable_devhost.testing import DevHost
from imagebatch.function_names import IMAGE_PROCESSING_ORCHESTRATOR as ORCHESTRATOR_NAME
from imagebatch.function_names import PROCESS_IMAGE, SHARD_ORCHESTRATOR
from imagebatch.messages import (
    BatchInput,
    ListImagesInput,
    LoadShardInput,
    NotifyInput,
    ProcessImageInput,
    RecordResultsInput,
    RetryOptions,
)
from imagebatch.settings import AppSettings
from imagebatch.specs import BatchRequest, RenderSpec, Rendition
from storage.clients import async_blob_service_client
from tests.batchkit import close_app_storage_clients
from tests.history_checks import (
    SUB_CREATED,
    SUB_ORCHESTRATION,
    TASK_SCHEDULED,
    TIMER_CREATED,
    assert_replacements_start_promptly,
    executions,
    peak_in_flight,
    peak_in_flight_across,
    scheduled_count,
    timer_delays_ms,
)

# In-process dev hosts run the async bookkeeping activities: close their storage clients per test.
pytestmark = pytest.mark.usefixtures(close_app_storage_clients.__name__)

RUN = "20261201T000000Z-000000"
FAST_RETRY = RetryOptions(first_interval_ms=10, max_attempts=3, backoff=2.0, max_interval_ms=100)


def real_app() -> df.DFApp:
    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
    app.register_functions(orchestrators.bp)
    app.register_functions(activities.bp)
    return app


def jpeg(width: int, height: int, shade: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (shade, 255 - shade, 90)).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def seed_images(blob_service, container: str, count: int, *, corrupt: int = 0) -> list[str]:
    names = []
    for i in range(count):
        name = f"in/img{i:03d}.jpg"
        data = b"\xff\xd8\xff\xe0 definitely not a jpeg" if i < corrupt else jpeg(96, 64, (i * 37) % 256)
        blob_service.get_blob_client(container, name).upload_blob(data, overwrite=True)
        names.append(name)
    return names


def batch_input(source: str, output: str, *, limit: int, tolerated: float = 0.0, prefix: str = "in/") -> BatchInput:
    request = BatchRequest(
        source_container=source,
        source_prefix=prefix,
        output_container=output,
        output_prefix="out/",
        spec=RenderSpec(renditions=(Rendition("small", 48), Rendition("tiny", 16)), format="jpeg", quality=80),
        max_concurrency=limit,
        tolerated_failure_percent=tolerated,
    )
    # Shards continue as new every 2 images, so every test crosses executions.
    return BatchInput(request, RUN, FAST_RETRY, list_page_size=4, segment_size=2)


async def all_histories(host: DevHost) -> tuple[list[dict], list[list[dict]]]:
    """The parent's history and its shards' histories."""
    instances = await host.engine.list_instances()
    parent = next(i for i in instances if i["name"] == ORCHESTRATOR_NAME)
    shards = [host.history(i["instanceId"], all_executions=True) for i in instances if i["name"] == SHARD_ORCHESTRATOR]
    return host.history(parent["instanceId"]), shards


@pytest.mark.parametrize("limit", [1, 3, 10])
async def test_sliding_window_never_exceeds_and_keeps_the_limit_busy(limit, blob_service, container_factory):
    source, output = container_factory(), container_factory()
    total = 2 * limit + 3
    seed_images(blob_service, source, total)

    async with DevHost(real_app()) as host:
        batch = batch_input(source, output, limit=limit)
        instance_id = await host.start_orchestration(ORCHESTRATOR_NAME, batch.to_dict())
        status = await host.wait(instance_id, timeout=120)
        parent, shards = await all_histories(host)

    assert status["runtimeStatus"] == "Completed", status.get("output")
    assert status["output"]["counts"]["done"] == total
    # Each shard runs its images one at a time, the parent keeps `limit` shards running...
    assert [peak_in_flight(h, PROCESS_IMAGE) for h in shards] == [1] * len(shards)
    assert peak_in_flight(parent, SHARD_ORCHESTRATOR, SUB_ORCHESTRATION) == limit
    assert_replacements_start_promptly(parent, limit, SHARD_ORCHESTRATOR, SUB_ORCHESTRATION)
    # ...so across the whole batch no more than `limit` ProcessImage calls are ever in flight.
    # (Whether all `limit` lanes overlap in an image at some instant depends on timing.)
    assert 1 <= peak_in_flight_across(shards, PROCESS_IMAGE) <= limit
    assert sum(scheduled_count(h, PROCESS_IMAGE) for h in shards) == total
    # Each shard execution holds at most `segment_size` images, then continues as new.
    runs = [run for h in shards for run in executions(h)]
    assert max(scheduled_count(run, PROCESS_IMAGE) for run in runs) == 2
    assert len(runs) == sum(-(-scheduled_count(h, PROCESS_IMAGE) // 2) for h in shards)


async def test_failures_are_tolerated_up_to_the_threshold(blob_service, container_factory):
    source, output = container_factory(), container_factory()
    seed_images(blob_service, source, 10, corrupt=2)

    async with DevHost(real_app()) as host:
        tolerant, intolerant = (batch_input(source, output, limit=4, tolerated=t).to_dict() for t in (20, 10))
        ok = await host.start_orchestration(ORCHESTRATOR_NAME, tolerant)
        ok_status = await host.wait(ok, timeout=120)
        strict = await host.start_orchestration(ORCHESTRATOR_NAME, intolerant)
        strict_status = await host.wait(strict, timeout=120)

    assert ok_status["runtimeStatus"] == "Completed"
    summary = ok_status["output"]
    assert summary["status"] == "succeeded" and summary["counts"]["failed"] == 2
    # The second run sees the same inputs: the 8 good images are skipped (idempotent), 2 fail again.
    assert strict_status["runtimeStatus"] == "Failed"
    assert "2 of 10 images failed" in strict_status["output"]
    assert strict_status["customStatus"]["progress"]["skipped"] == 8
    manifest_name = f"out/_batches/{strict}/runs/{RUN}/manifest.json"
    assert strict_status["customStatus"]["manifest"] == f"{output}/{manifest_name}"
    manifest = json.loads(blob_service.get_blob_client(output, manifest_name).download_blob().readall())
    assert manifest["status"] == "failed"
    assert sorted(f["name"] for f in manifest["failures"]) == ["in/img000.jpg", "in/img001.jpg"]
    assert {f["kind"] for f in manifest["failures"]} <= {"corrupt", "truncated", "unsupported"}


class FlakyStorage:
    """Makes chosen images fail with a storage-style transient error for their
    first ``failures`` attempts, then behave normally."""

    def __init__(self, failures: dict[str, int]) -> None:
        self.failures = dict(failures)
        self.attempts: dict[str, int] = {}
        self.lock = threading.Lock()

    def before(self, name: str) -> None:
        with self.lock:
            attempt = self.attempts[name] = self.attempts.get(name, 0) + 1
        if attempt <= self.failures.get(name, 0):
            raise ServiceResponseError(f"connection reset while reading {name} (attempt {attempt})")


def flaky_app(flaky: FlakyStorage, service) -> df.DFApp:
    """The real orchestrator with the real activity code behind a fault injector."""
    bp = df.Blueprint()
    settings = AppSettings()

    @bp.activity_trigger(input_name="payload")
    def ListImages(payload: dict) -> dict:
        return plan_batch(ListImagesInput.from_dict(payload), service, 5000).to_dict()

    @bp.activity_trigger(input_name="payload")
    async def LoadShard(payload: dict) -> dict:
        segment = await load_shard(LoadShardInput.from_dict(payload), async_blob_service_client("AzureWebJobsStorage"))
        return segment.to_dict()

    @bp.activity_trigger(input_name="payload")
    async def RecordShardResults(payload: dict) -> dict:
        record = RecordResultsInput.from_dict(payload)
        return (await record_shard_results(record, async_blob_service_client("AzureWebJobsStorage"))).to_dict()

    @bp.activity_trigger(input_name="payload")
    def ProcessImage(payload: dict) -> dict:
        work = ProcessImageInput.from_dict(payload)
        flaky.before(work.source.name)
        return process_image(work, service, settings)

    @bp.activity_trigger(input_name="payload")
    def NotifyCompletion(payload: dict) -> dict:
        return notify_completion(NotifyInput.from_dict(payload), service, settings).to_dict()

    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
    app.register_functions(orchestrators.bp)
    app.register_functions(bp)
    return app


async def test_transient_errors_are_retried_with_backoff_and_bounded(blob_service, container_factory):
    source, output = container_factory(), container_factory()
    names = seed_images(blob_service, source, 5)
    flaky = FlakyStorage({names[0]: 1, names[1]: 2, names[2]: 5})  # 5 > max_attempts (3)

    async with DevHost(flaky_app(flaky, blob_service)) as host:
        request = batch_input(source, output, limit=2, tolerated=50)
        instance_id = await host.start_orchestration(ORCHESTRATOR_NAME, request.to_dict())
        status = await host.wait(instance_id, timeout=120)
        _, shards = await all_histories(host)

    assert status["runtimeStatus"] == "Completed", status.get("output")
    counts = status["output"]["counts"]
    assert (counts["done"], counts["failed"]) == (4, 1)
    assert flaky.attempts == {names[0]: 2, names[1]: 3, names[2]: 3, names[3]: 1, names[4]: 1}
    assert sum(scheduled_count(h, PROCESS_IMAGE) for h in shards) == 2 + 3 + 3 + 1 + 1
    # Backoff: 10 ms before every second attempt, 20 ms before every third.
    delays = [d for h in shards for d in timer_delays_ms(h)]
    assert sorted(d for d in delays if d > 0) == [10, 10, 10, 20, 20]
    manifest_name = f"out/_batches/{instance_id}/runs/{RUN}/manifest.json"
    manifest = json.loads(blob_service.get_blob_client(output, manifest_name).download_blob().readall())
    (failure,) = manifest["failures"]
    assert failure["name"] == names[2] and failure["kind"] == "transient_exhausted"
    assert failure["message"].startswith("gave up after 3 attempt(s): connection reset")
    assert len(manifest["images"]) == 5


SCHEDULING_KIND = {TASK_SCHEDULED: "activity", TIMER_CREATED: "timer", SUB_CREATED: "sub"}
ACTION_KIND = {0: "activity", 1: "activity", 2: "sub", 3: "sub", 4: "continue_as_new", 5: "timer"}


def leaf_actions(actions: list[dict]) -> list[tuple[str, str | None]]:
    out = []
    for action in actions:
        if action["actionType"] in (11, 12):
            out += leaf_actions(action["compoundActions"])
        elif action["actionType"] == 6:
            continue  # WaitForExternalEvent: no sequence id, no history event (the cancel wait)
        else:
            out.append((ACTION_KIND[action["actionType"]], action.get("functionName")))
    return out


def assert_replay_is_deterministic(
    index: FunctionIndex, name: str, instance_id: str, history: list[dict], *, continued: bool = False
) -> dict:
    """Replaying a finished history through the SDK gives the same decisions
    every time, and exactly the ones the history recorded, in id order (plus
    the ContinueAsNew that ended it, for an execution that ``continued``)."""
    started = next(e for e in history if e["EventType"] == 0)
    payload = orchestrator_payload(
        history=[{**e, "IsPlayed": True} for e in history],
        input_json=started["Input"],
        instance_id=instance_id,
        parent_instance_id=None,
    )
    orchestrator = index.orchestrator(name)
    first, second = invoke_orchestrator(orchestrator, payload), invoke_orchestrator(orchestrator, payload)
    assert first == second and first["isDone"]
    recorded = sorted((e for e in history if e["EventType"] in SCHEDULING_KIND), key=lambda e: e["EventId"])
    assert [e["EventId"] for e in recorded] == list(range(len(recorded))), "ids are dense from 0"
    expected = [(SCHEDULING_KIND[e["EventType"]], e.get("Name")) for e in recorded]
    assert leaf_actions(first["actions"][0]) == expected + ([("continue_as_new", None)] if continued else [])
    return first


async def test_progress_and_replay_determinism(blob_service, container_factory):
    source, output = container_factory(), container_factory()
    names = seed_images(blob_service, source, 7, corrupt=1)
    flaky = FlakyStorage({names[3]: 2})
    index = FunctionIndex.from_app(flaky_app(flaky, blob_service))

    async with DevHost(index) as host:
        request = replace(batch_input(source, output, limit=3, tolerated=50), segment_size=1)
        instance_id = await host.start_orchestration(ORCHESTRATOR_NAME, request.to_dict())
        status = await host.wait(instance_id, timeout=120)
        instances = await host.engine.list_instances()
        histories = {
            i["instanceId"]: (i["name"], host.history(i["instanceId"], all_executions=True)) for i in instances
        }

    progress = status["customStatus"]["progress"]
    assert status["customStatus"]["stage"] == "done"
    assert (progress["total"], progress["done"], progress["failed"], progress["in_flight"]) == (7, 6, 1, 0)
    assert len(json.dumps(status["customStatus"])) < 16 * 1024

    shard_executions = 0
    for iid, (name, history) in histories.items():
        runs = executions(history)
        shard_executions += len(runs) if name == SHARD_ORCHESTRATOR else 0
        for number, run in enumerate(runs, start=1):
            replayed = assert_replay_is_deterministic(index, name, iid, run, continued=number < len(runs))
        if iid == instance_id:
            assert replayed["output"] == status["output"]
    assert shard_executions > len(histories) - 1, "some shard continued as new"


async def test_retries_in_progress_are_visible_in_the_shard_status(blob_service, container_factory):
    """While an image waits on its backoff, its shard's custom status names it, the
    attempt count and the error, which GET /api/batches/{id} aggregates."""
    from imagebatch.batch_api import live_progress

    source, output = container_factory(), container_factory()
    names = seed_images(blob_service, source, 3)
    flaky = FlakyStorage({names[1]: 2})
    async with DevHost(flaky_app(flaky, blob_service)) as host:
        slow_retry = RetryOptions(first_interval_ms=1500, max_attempts=3, backoff=1.0, max_interval_ms=1500)
        request = replace(batch_input(source, output, limit=1), retry=slow_retry)
        instance_id = await host.start_orchestration(ORCHESTRATOR_NAME, request.to_dict())
        seen: list[dict] = []
        for _ in range(200):
            shards = [i for i in await host.engine.list_instances() if i["name"] == SHARD_ORCHESTRATOR]
            statuses = [(await host.status(s["instanceId"]))["customStatus"] for s in shards]
            live = live_progress({"total": 3}, statuses)
            if live["retrying"]:
                seen.append(live)
            if (await host.status(instance_id))["runtimeStatus"] == "Completed":
                break
            await asyncio.sleep(0.1)
    assert seen, "a retry in progress was visible"
    first = seen[0]
    assert first["progress"]["retrying"] == 1
    (retry,) = first["retrying"]
    assert retry["image"] == names[1] and retry["attempts"] >= 1 and "connection reset" in retry["error"]
    assert "\n" not in retry["error"] and retry["at"]
