"""Live controls of a running batch over the app's HTTP API, on the local dev host with
real Azurite: pause / resume, a new concurrency bound, the deadline.

Every claim is read from the instance histories (what was scheduled when), never
from what the app says about itself.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import azure.durable_functions as df
import azure.functions as func
import pytest
from azure.durable_functions.models.Task import TaskState

from durable_devhost.history import parse_ts
from durable_devhost.testing import DevHost
from imagebatch.function_names import PROCESS_IMAGE
from orchestrators.bounded_fan_out import RetryPolicy, bounded_fan_out
from orchestrators.controls import RunControls
from tests.batchkit import (
    batch_request,
    close_app_storage_clients,
    keyed_host,
    keyed_session,
    poll,
    read_manifest,
    seed_images,
    start_batch,
)
from tests.history_checks import (
    ORCHESTRATOR_COMPLETED,
    ORCHESTRATOR_STARTED,
    SUB_COMPLETED,
    SUB_CREATED,
    SUB_FAILED,
    TASK_COMPLETED,
    TASK_SCHEDULED,
    executions,
    peak_in_flight,
    timer_delays_ms,
)
from tests.test_lifecycle import batch_instances, get_json, post_json

REPO = Path(__file__).resolve().parent.parent
ACTIVE = {"Running", "Pending", "ContinuedAsNew", "Suspended"}
EVENT_RAISED = 15
ITEMS = 8
work_delays: dict[int, float] = {}
failures_left: dict[int, int] = {}


# --- bounded_fan_out with controls, no storage: the hazardous event orders ------------------


def controls_app() -> df.DFApp:
    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.activity_trigger(input_name="item")
    def Work(item: int) -> int:
        time.sleep(work_delays.get(item, 0.3))
        if failures_left.get(item, 0) > 0:
            failures_left[item] -= 1
            raise ConnectionResetError(f"reset while working on {item}")
        return item

    @app.orchestration_trigger(context_name="context")
    def controlled(context: df.DurableOrchestrationContext):
        options = context.get_input() or {}
        if options.get("warmup"):
            yield context.call_activity("Work", -1)  # events raised now arrive before any control wait
        controls = RunControls(context, options.get("limit", 1))
        done: list[int] = []
        failed: list[int] = []

        def on_done(index: int, task: Any, attempts: int) -> None:
            (failed if task.state is TaskState.FAILED else done).append(index)

        never = yield from bounded_fan_out(
            context,
            list(range(ITEMS)),
            lambda item: context.call_activity("Work", item),
            options.get("limit", 1),
            on_done,
            retry=RetryPolicy(first_interval_ms=1000, max_attempts=3),
            controls=controls,
        )
        return {"done": sorted(done), "failed": failed, "never": never, "changes": controls.changes}

    return app


def positions(history: list[dict[str, Any]], event_type: int, name: str | None = None) -> list[int]:
    return [
        i for i, e in enumerate(history) if e["EventType"] == event_type and (name is None or e.get("Name") == name)
    ]


async def run_controlled(options: dict[str, Any], script) -> tuple[dict, list[dict]]:
    async with DevHost(controls_app()) as host:
        instance_id = await host.start_orchestration("controlled", options)
        await script(host, instance_id)
        status = await host.wait(instance_id, timeout=60)
        return status, host.history(instance_id)


async def test_an_event_raised_before_the_control_wait_applies_at_the_first_fill():
    work_delays.clear()
    failures_left.clear()

    async def script(host: DevHost, instance_id: str) -> None:
        await host.raise_event(instance_id, "control-1", {"version": 1, "paused": False, "max_concurrency": 3})

    status, history = await run_controlled({"warmup": True, "limit": 1}, script)
    assert status["runtimeStatus"] == "Completed", status["output"]
    assert status["output"]["done"] == list(range(ITEMS))
    assert status["output"]["changes"] == [{"version": 1, "paused": False, "max_concurrency": 3}]
    raised = positions(history, EVENT_RAISED)[0]
    first_work = [i for i in positions(history, TASK_SCHEDULED, "Work") if i > raised]
    assert raised < first_work[0], "the event arrived during the warm-up, before any control wait"
    assert peak_in_flight(history, "Work") == 3


async def test_a_pause_during_a_retry_backoff_holds_the_retry_until_resume():
    work_delays.clear()
    work_delays.update({0: 0.05})
    failures_left.clear()
    failures_left.update({0: 1})

    async def script(host: DevHost, instance_id: str) -> None:
        await asyncio.sleep(0.4)  # item 0 failed, its 1 s backoff runs
        await host.raise_event(instance_id, "control-1", {"version": 1, "paused": True, "max_concurrency": 1})
        await asyncio.sleep(1.5)  # the backoff ends while paused
        await host.raise_event(instance_id, "control-2", {"version": 2, "paused": False, "max_concurrency": 1})

    status, history = await run_controlled({"limit": 1}, script)
    assert status["runtimeStatus"] == "Completed", status["output"]
    assert status["output"]["done"] == list(range(ITEMS)) and status["output"]["failed"] == []
    pause, resume = positions(history, EVENT_RAISED)
    fired_while_paused = [i for i in positions(history, 11) if pause < i < resume]
    assert fired_while_paused, "the backoff timer ended while paused"
    assert not [i for i in positions(history, TASK_SCHEDULED, "Work") if pause < i < resume], "no work while paused"
    assert [i for i in positions(history, TASK_SCHEDULED, "Work") if i > resume], "the retry ran after the resume"


async def test_two_events_out_of_order_end_in_the_newest_state():
    work_delays.clear()
    failures_left.clear()

    async def script(host: DevHost, instance_id: str) -> None:
        await asyncio.sleep(0.1)
        await host.raise_event(instance_id, "control-2", {"version": 2, "paused": False, "max_concurrency": 2})
        await host.raise_event(instance_id, "control-1", {"version": 1, "paused": False, "max_concurrency": 4})

    status, history = await run_controlled({"limit": 1}, script)
    assert status["runtimeStatus"] == "Completed", status["output"]
    assert status["output"]["done"] == list(range(ITEMS))
    assert [c["version"] for c in status["output"]["changes"]] == [1, 2]
    assert status["output"]["changes"][-1]["max_concurrency"] == 2
    second = positions(history, EVENT_RAISED)[-1]
    # Once version 2 applied (in the episode that saw both events), the window drains to 2.
    episode_end = next(i for i in positions(history, ORCHESTRATOR_COMPLETED) if i > second)
    assert peak_in_flight(history[episode_end:], "Work") <= 2


# --- over HTTP with storage --------------------------------------------------------------


async def patch_json(http: aiohttp.ClientSession, url: str, body: Any) -> tuple[int, Any]:
    async with http.patch(url, json=body) as response:
        return response.status, await response.json(content_type=None)


def process_image_calls(host: DevHost, instances: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every ProcessImage call of the shards: when it was scheduled and what it answered."""
    calls = []
    for instance in instances:
        if ":" not in instance["instanceId"]:
            continue
        for run in executions(host.history(instance["instanceId"], all_executions=True)):
            scheduled = {
                e["EventId"]: e for e in run if e["EventType"] == TASK_SCHEDULED and e["Name"] == PROCESS_IMAGE
            }
            for event in run:
                if event["EventType"] == TASK_COMPLETED and event["TaskScheduledId"] in scheduled:
                    result = json.loads(event["Result"])
                    result = json.loads(result) if isinstance(result, str) else result
                    calls.append(
                        {
                            "lane": instance["instanceId"],
                            "scheduled": parse_ts(scheduled[event["TaskScheduledId"]]["Timestamp"]),
                            "status": result["status"],
                        }
                    )
    return calls


def lanes_over_time(parent: list[dict[str, Any]]) -> list[tuple[int, int, str | None]]:
    """(position, lanes running after it, control event name or None) along the parent history."""
    level, marks = 0, []
    for i, event in enumerate(parent):
        if event["EventType"] == SUB_CREATED:
            level += 1
        elif event["EventType"] in (SUB_COMPLETED, SUB_FAILED):
            level -= 1
        marks.append((i, level, event.get("Name") if event["EventType"] == EVENT_RAISED else None))
    return marks


async def wait_for(http: aiohttp.ClientSession, url: str, check, timeout: float = 60) -> dict[str, Any]:
    for _ in range(int(timeout / 0.05)):
        _, status = await get_json(http, url)
        if check(status):
            return status
        assert status["runtimeStatus"] in ACTIVE, status
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition not reached: {status}")


@pytest.mark.usefixtures(close_app_storage_clients.__name__)
async def test_pause_starts_no_image_until_resume_then_the_batch_completes(
    monkeypatch, blob_service, container_factory
):
    monkeypatch.setenv("SHARD_SIZE", "6")
    monkeypatch.setenv("HOLD_POLL_MS", "100,400")
    source, output = container_factory(), container_factory()
    sources = seed_images(blob_service, source, 36)
    request = batch_request(source, output, max_concurrency=3, batch_id="ctl-pause")
    async with keyed_host() as host, keyed_session() as http:
        started = await start_batch(http, host.api_url("batches"), request)
        url = started["statusQueryGetUri"]
        await wait_for(http, url, lambda s: s["progress"]["completed"] >= 4)
        code, paused = await post_json(http, url + "/pause")
        assert code == 202 and paused["batchStatus"] == "Paused" and paused["controls"]["paused"], paused
        status = await wait_for(http, url, lambda s: s["batchStatus"] == "Paused")
        assert status["controls"]["paused"] is True
        # Let the lanes finish the images in hand and look at the marker a few times.
        await asyncio.sleep(1.5)
        calls = process_image_calls(host, await batch_instances(host, "ctl-pause"))
        done_while_paused = sum(1 for c in calls if c["status"] != "not_started")
        await asyncio.sleep(1.5)
        calls = process_image_calls(host, await batch_instances(host, "ctl-pause"))
        assert sum(1 for c in calls if c["status"] != "not_started") == done_while_paused, "nothing done while paused"
        held = [c for c in calls if c["status"] == "not_started"]
        assert held, "lanes reached the pause"
        lanes = {c["lane"] for c in held}
        assert len(held) == len(lanes), "one ProcessImage per held lane: later looks are ReadRunHold only"
        _, still = await get_json(http, url)
        assert still["batchStatus"] == "Paused" and still["progress"]["completed"] < 36

        code, resumed = await post_json(http, url + "/resume")
        assert code == 202 and resumed["batchStatus"] == "Running", resumed
        final = await poll(http, url, timeout=120)
        instances = await batch_instances(host, "ctl-pause")
        parent = host.history("ctl-pause")
        calls = process_image_calls(host, instances)

    assert final["batchStatus"] == "Succeeded", final
    manifest = read_manifest(blob_service, final["manifest"])
    assert manifest["counts"]["done"] == 36 and manifest["counts"]["not_started"] == 0
    assert sorted(i["name"] for i in manifest["images"]) == sorted(sources)
    assert sorted(c["status"] for c in calls).count("processed") == 36
    assert not [i for i in instances if i["runtimeStatus"] in ACTIVE]
    # The parent started no lane between the pause and the resume events.
    raised = [(i, e["Name"]) for i, e in enumerate(parent) if e["EventType"] == EVENT_RAISED]
    assert [name for _, name in raised] == ["control-1", "control-2"]
    (pause_at, _), (resume_at, _) = raised
    assert not [e for e in parent[pause_at:resume_at] if e["EventType"] == SUB_CREATED]


@pytest.mark.usefixtures(close_app_storage_clients.__name__)
async def test_a_new_bound_widens_and_narrows_the_lane_window_at_once(monkeypatch, blob_service, container_factory):
    monkeypatch.setenv("SHARD_SIZE", "2")
    source, output = container_factory(), container_factory()
    # 80 images: after the narrowing at 20 done, enough work is left (about 15 images a
    # lane) that the second PATCH lands while lanes run, however loaded the machine.
    seed_images(blob_service, source, 80)
    request = batch_request(source, output, max_concurrency=1, batch_id="ctl-bound")
    async with keyed_host() as host, keyed_session() as http:
        started = await start_batch(http, host.api_url("batches"), request)
        url = started["statusQueryGetUri"]
        await wait_for(http, url, lambda s: s["progress"]["completed"] >= 4)
        code, body = await patch_json(http, url, {"max_concurrency": 4})
        assert code == 202 and body["controls"]["max_concurrency"] == 4, body
        await wait_for(http, url, lambda s: s["progress"]["completed"] >= 20)
        code, body = await patch_json(http, url, {"max_concurrency": 2})
        assert code == 202 and body["controls"] == {"version": 2, "paused": False, "max_concurrency": 2}, body
        final = await poll(http, url, timeout=120)
        parent = host.history("ctl-bound")
        code, late = await patch_json(http, url, {"max_concurrency": 3})
        bad_code, bad = await patch_json(http, url, {"max_concurrency": 0, "extra": 1})

    assert final["batchStatus"] == "Succeeded" and final["progress"]["done"] == 80, final
    assert code == 409 and late["error"] == "conflict"
    assert bad_code == 400 and {e["field"] for e in bad["errors"]} == {"max_concurrency", "extra"}, bad
    marks = lanes_over_time(parent)
    widen = next(i for i, _, name in marks if name == "control-1")
    narrow = next(i for i, _, name in marks if name == "control-2")
    assert max(level for i, level, _ in marks if i < widen) == 1
    # Widened at once: the three new lanes start in the episode that saw the event.
    end_of_episode = next(i for i, e in enumerate(parent) if i > widen and e["EventType"] == 13)
    assert marks[end_of_episode][1] == 4
    assert max(level for i, level, _ in marks if widen < i < narrow) == 4
    # Narrowed: the episode that delivered the event may still start a lane it decided on
    # before reading it (a completion earlier in the same episode is processed first, as on
    # the extension); from the next episode on, a lane starts only while fewer than 2 run,
    # and once fewer than 2 run, never more than 2 do.
    next_episode = next(i for i, e in enumerate(parent) if i > narrow and e["EventType"] == ORCHESTRATOR_STARTED)
    starts = [i for i, e in enumerate(parent) if i > next_episode and e["EventType"] == SUB_CREATED]
    assert starts and all(marks[i - 1][1] < 2 for i in starts), [(i, marks[i - 1][1]) for i in starts]
    after = [(i, level) for i, level, _ in marks if i > narrow]
    drained = next(i for i, level in after if level < 2)
    assert max(level for i, level in after if i >= drained) <= 2


@pytest.mark.usefixtures(close_app_storage_clients.__name__)
async def test_deadline_stops_new_images_then_a_resubmit_does_exactly_the_rest(
    monkeypatch, blob_service, container_factory
):
    monkeypatch.setenv("SHARD_SIZE", "4")
    monkeypatch.setenv("HOLD_POLL_MS", "100,400")
    source, output = container_factory(), container_factory()
    sources = seed_images(blob_service, source, 24)
    request = batch_request(source, output, max_concurrency=2, batch_id="ctl-deadline", deadline_minutes=14400)
    async with keyed_host(time_skipping=False) as host, keyed_session() as http:
        started = await start_batch(http, host.api_url("batches"), request)
        url = started["statusQueryGetUri"]
        await wait_for(http, url, lambda s: s["progress"]["completed"] >= 3)
        # Pause, so the lanes hold, then let ten days pass: beyond Azure Storage's 6-day
        # short-timer limit, so the parent's deadline is a chain of <= 3-day timers.
        code, _ = await post_json(http, url + "/pause")
        assert code == 202
        await wait_for(http, url, lambda s: s["batchStatus"] == "Paused")
        await asyncio.sleep(0.5)
        await host.skip(timedelta(days=10, minutes=1))
        final = await poll(http, url, timeout=120)
        instances = await batch_instances(host, "ctl-deadline")
        parent = host.history("ctl-deadline")
        code, late = await post_json(http, url + "/resume")

    assert code == 409 and late["error"] == "conflict"
    delays = timer_delays_ms(parent)
    assert max(delays) == 3 * 24 * 3600 * 1000, delays  # the first 3-day link of the chain
    assert final["batchStatus"] == "DeadlineExceeded" and final["runtimeStatus"] == "Completed", final
    assert not [i for i in instances if i["runtimeStatus"] in ACTIVE]
    manifest = read_manifest(blob_service, final["manifest"])
    counts = manifest["counts"]
    assert manifest["status"] == "deadline_exceeded"
    assert counts["done"] >= 3 and counts["not_started"] > 0 and counts["done"] + counts["not_started"] == 24
    not_started = {i["name"] for i in manifest["images"] if i["status"] == "not_started"}
    assert sorted(manifest["not_started"]) == sorted(not_started)

    monkeypatch.delenv("HOLD_POLL_MS")
    request.pop("deadline_minutes")
    async with keyed_host() as host, keyed_session() as http:
        again = await start_batch(http, host.api_url("batches"), request)
        second = await poll(http, again["statusQueryGetUri"], timeout=120)
        calls = process_image_calls(host, await batch_instances(host, "ctl-deadline"))
    assert second["batchStatus"] == "Succeeded"
    rendered = read_manifest(blob_service, second["manifest"])
    assert rendered["counts"]["skipped"] == counts["done"] and rendered["counts"]["done"] == len(not_started)
    assert sorted(c["status"] for c in calls).count("processed") == len(not_started)
    assert {i["name"] for i in rendered["images"] if i["status"] == "processed"} == not_started
    assert set(sources) == {i["name"] for i in rendered["images"]}


@pytest.mark.usefixtures(close_app_storage_clients.__name__)
async def test_resume_wakes_held_lanes_at_once(monkeypatch, blob_service, container_factory):
    """Lanes held by a pause look again every minute here; a resume raises ``resume`` to the
    held lanes, so the batch goes on within seconds, not at the next look."""
    monkeypatch.setenv("SHARD_SIZE", "6")
    monkeypatch.setenv("HOLD_POLL_MS", "60000,60000")
    source, output = container_factory(), container_factory()
    seed_images(blob_service, source, 24)
    request = batch_request(source, output, max_concurrency=2, batch_id="ctl-wake")
    async with keyed_host() as host, keyed_session() as http:
        started = await start_batch(http, host.api_url("batches"), request)
        url = started["statusQueryGetUri"]
        await wait_for(http, url, lambda s: s["progress"]["completed"] >= 2)
        code, _ = await post_json(http, url + "/pause")
        assert code == 202
        await wait_for(http, url, lambda s: s["batchStatus"] == "Paused")
        for _ in range(200):  # until every running lane is held (its status says paused)
            lanes = [
                i
                for i in await batch_instances(host, "ctl-wake")
                if ":" in i["instanceId"] and i["runtimeStatus"] in ACTIVE
            ]
            if lanes and all((i.get("customStatus") or {}).get("paused") for i in lanes):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(lanes)
        resumed_at = time.monotonic()
        code, _ = await post_json(http, url + "/resume")
        assert code == 202
        final = await poll(http, url, timeout=40)
        took = time.monotonic() - resumed_at
        histories = [
            host.history(i["instanceId"], all_executions=True)
            for i in await batch_instances(host, "ctl-wake")
            if ":" in i["instanceId"]
        ]

    assert final["batchStatus"] == "Succeeded" and final["progress"]["done"] == 24, final
    assert took < 40, took  # a lane's own next look would have been a minute away
    woken = sum(1 for h in histories for e in h if e["EventType"] == EVENT_RAISED and e.get("Name") == "resume")
    assert woken >= 1, "held lanes were woken by the resume event"


@pytest.mark.usefixtures(close_app_storage_clients.__name__)
async def test_a_smaller_bound_parks_running_lanes_at_their_next_segment(monkeypatch, blob_service, container_factory):
    """Lowered from 4 to 1 while four lanes run: the lanes beyond slot 0 park at their next
    segment boundary (not at the end of their shard) and start again from there later; every
    image is processed exactly once, and after the last park at most one image is in flight."""
    monkeypatch.setenv("SHARD_SIZE", "30")
    source, output = container_factory(), container_factory()
    sources = seed_images(blob_service, source, 120)
    request = batch_request(source, output, max_concurrency=4, batch_id="ctl-park")
    async with keyed_host() as host, keyed_session() as http:
        started = await start_batch(http, host.api_url("batches"), request)
        url = started["statusQueryGetUri"]
        await wait_for(http, url, lambda s: s["progress"]["completed"] >= 4)
        code, body = await patch_json(http, url, {"max_concurrency": 1})
        assert code == 202, body
        final = await poll(http, url, timeout=180)
        instances = await batch_instances(host, "ctl-park")
        lanes = {
            i["instanceId"]: host.history(i["instanceId"], all_executions=True)
            for i in instances
            if ":" in i["instanceId"]
        }
        parent = host.history("ctl-park")

    assert final["batchStatus"] == "Succeeded" and final["progress"]["done"] == 120, final
    manifest = read_manifest(blob_service, final["manifest"])
    assert sorted(i["name"] for i in manifest["images"]) == sorted(sources)
    names, intervals = [], []
    for history in lanes.values():
        for run in executions(history):
            scheduled = {
                e["EventId"]: e for e in run if e["EventType"] == TASK_SCHEDULED and e["Name"] == PROCESS_IMAGE
            }
            for event in run:
                if event["EventType"] == TASK_COMPLETED and event["TaskScheduledId"] in scheduled:
                    result = json.loads(event["Result"])
                    result = json.loads(result) if isinstance(result, str) else result
                    names.append(result["name"])
                    begin = parse_ts(scheduled[event["TaskScheduledId"]]["Timestamp"])
                    intervals.append((begin, parse_ts(event["Timestamp"])))
    assert sorted(names) == sorted(sources), "every image processed exactly once across parks and restarts"
    parks = [e for e in parent if e["EventType"] == SUB_COMPLETED and "parked" in str(e.get("Result"))]
    assert parks, "lanes beyond the new bound parked"
    assert [i for i in lanes if i.endswith("-1")], "a parked shard started again under a new instance id"
    last_park = max(parse_ts(e["Timestamp"]) for e in parks)
    after = [(b, e) for b, e in intervals if b >= last_park]
    marks = sorted([(b, 1) for b, _ in after] + [(e, -1) for _, e in after])
    level = peak = 0
    for _, step in marks:
        level += step
        peak = max(peak, level)
    assert after and peak <= 1, peak
