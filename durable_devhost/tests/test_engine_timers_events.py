"""External events, timers, retries and the skippable clock, end to end."""

from __future__ import annotations

import time
from datetime import timedelta

import azure.durable_functions as df
import pytest
from devhost_helpers import client_input, event_types, running

from durable_devhost import SkippableClock
from durable_devhost.history import EventType, parse_ts

ATTEMPTS: dict[str, int] = {}


def make_app() -> df.DFApp:
    app = df.DFApp()

    @app.orchestration_trigger(context_name="context")
    def race(context: df.DurableOrchestrationContext):
        cancel = context.get_input() != "leave-timer"
        deadline = context.current_utc_datetime + timedelta(hours=1)
        timeout = context.create_timer(deadline)
        approval = context.wait_for_external_event("Approval")
        winner = yield context.task_any([approval, timeout])
        if winner == approval:
            if cancel:
                timeout.cancel()
            return {"approved": approval.result}
        return "timed out"

    @app.orchestration_trigger(context_name="context")
    def sleep_then_wait(context: df.DurableOrchestrationContext):
        yield context.create_timer(context.current_utc_datetime + timedelta(hours=1))
        value = yield context.wait_for_external_event("E")
        return value

    @app.orchestration_trigger(context_name="context")
    def one_day(context: df.DurableOrchestrationContext):
        yield context.create_timer(context.current_utc_datetime + timedelta(days=1))
        return context.current_utc_datetime.isoformat()

    @app.orchestration_trigger(context_name="context")
    def ten_days(context: df.DurableOrchestrationContext):
        yield context.create_timer(context.current_utc_datetime + timedelta(days=10))
        return "done"

    @app.orchestration_trigger(context_name="context")
    def retrying(context: df.DurableOrchestrationContext):
        key = context.get_input()
        return (yield context.call_activity_with_retry("flaky", df.RetryOptions(1000, 3), key))

    @app.activity_trigger(input_name="key")
    def flaky(key: str) -> str:
        ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
        succeed_on = {"second": 2}.get(key.split("-")[0], 99)
        if ATTEMPTS[key] < succeed_on:
            raise RuntimeError(f"attempt {ATTEMPTS[key]} failed")
        return f"ok after {ATTEMPTS[key]}"

    return app


async def test_timer_wins_race_with_time_skipping():
    async with running(make_app(), clock=SkippableClock(auto_skip=True)) as engine:
        t0 = time.monotonic()
        iid = await engine.start_orchestration("race", client_input("cancel"))
        status = await engine.wait_for_completion(iid, 5)
        assert status["output"] == "timed out"
        assert time.monotonic() - t0 < 1


async def test_event_wins_race_and_cancelled_timer_does_not_block():
    async with running(make_app()) as engine:
        iid = await engine.start_orchestration("race", client_input("cancel"))
        await engine.raise_event(iid, "Approval", '{"by": "ann"}')
        status = await engine.wait_for_completion(iid, 5)
        assert status["output"] == {"approved": {"by": "ann"}}
        hist = engine.history(iid)
        assert [e["EventId"] for e in hist if e["EventType"] == EventType.TIMER_CREATED] == [0]
        assert EventType.TIMER_FIRED not in event_types(hist)


async def test_uncancelled_timer_keeps_instance_running_until_it_fires():
    """DTFx will not complete an orchestration with open tasks (see durable_devhost/replay.py)."""
    clock = SkippableClock()
    async with running(make_app(), clock=clock) as engine:
        iid = await engine.start_orchestration("race", client_input("leave-timer"))
        await engine.wait_idle()
        await engine.raise_event(iid, "Approval", '"yes"')
        with pytest.raises(TimeoutError):
            await engine.wait_for_completion(iid, 0.3)
        assert (await engine.get_status(iid))["runtimeStatus"] == "Running"
        await engine.advance_time(timedelta(hours=2))
        status = await engine.wait_for_completion(iid, 5)
        assert status["output"] == {"approved": "yes"}


async def test_event_raised_before_the_wait():
    clock = SkippableClock()
    async with running(make_app(), clock=clock) as engine:
        iid = await engine.start_orchestration("sleep_then_wait")
        await engine.wait_idle()
        await engine.raise_event(iid, "E", '"early"')  # buffered: nobody waits yet
        await engine.wait_idle()
        await engine.advance_time(timedelta(hours=2))
        status = await engine.wait_for_completion(iid, 5)
        assert status["output"] == "early"


async def test_event_raised_after_the_wait():
    clock = SkippableClock()
    async with running(make_app(), clock=clock) as engine:
        iid = await engine.start_orchestration("sleep_then_wait")
        await engine.wait_idle()
        await engine.advance_time(timedelta(hours=2))
        with pytest.raises(TimeoutError):
            await engine.wait_for_completion(iid, 0.2)
        await engine.raise_event(iid, "E", '"late"')
        status = await engine.wait_for_completion(iid, 5)
        assert status["output"] == "late"


async def test_one_day_timer_completes_in_under_a_second():
    clock = SkippableClock(auto_skip=True)
    async with running(make_app(), clock=clock) as engine:
        t0 = time.monotonic()
        iid = await engine.start_orchestration("one_day")
        status = await engine.wait_for_completion(iid, 5)
        assert time.monotonic() - t0 < 1
        started = parse_ts(engine.history(iid)[0]["Timestamp"])
        assert parse_ts(status["output"]) - started >= timedelta(days=1)


async def test_long_timer_is_split_by_the_sdk():
    async with running(make_app(), clock=SkippableClock(auto_skip=True)) as engine:
        iid = await engine.start_orchestration("ten_days")
        status = await engine.wait_for_completion(iid, 5)
        assert status["output"] == "done"
        timers = [e for e in engine.history(iid) if e["EventType"] == EventType.TIMER_CREATED]
        assert [t["EventId"] for t in timers] == [0, 1, 2]


async def test_retry_succeeds_on_second_attempt():
    async with running(make_app(), clock=SkippableClock(auto_skip=True)) as engine:
        iid = await engine.start_orchestration("retrying", client_input("second-a"))
        status = await engine.wait_for_completion(iid, 5)
        assert status["output"] == "ok after 2"
        hist = engine.history(iid)
        shape = [
            (e["EventType"], e["EventId"] if e["EventId"] >= 0 else e.get("TaskScheduledId", e.get("TimerId")))
            for e in hist
            if e["EventType"] in (4, 5, 6, 10, 11)
        ]
        assert shape == [(4, 0), (6, 0), (10, 1), (11, 1), (4, 2), (5, 2)]
        timer = next(e for e in hist if e["EventType"] == EventType.TIMER_CREATED)
        failed_at = next(i for i, e in enumerate(hist) if e["EventType"] == EventType.TASK_FAILED)
        episode_start = next(e for e in reversed(hist[:failed_at]) if e["EventType"] == 12)
        delay = parse_ts(timer["FireAt"]) - parse_ts(episode_start["Timestamp"])
        assert delay == timedelta(seconds=1)


async def test_retry_exhausted_with_dummy_timer():
    async with running(make_app(), clock=SkippableClock(auto_skip=True)) as engine:
        iid = await engine.start_orchestration("retrying", client_input("never-a"))
        status = await engine.wait_for_completion(iid, 5)
        assert status["runtimeStatus"] == "Failed"
        assert status["output"].startswith(
            "Orchestrator function 'retrying' failed: Activity function 'flaky' failed: attempt 3 failed"
        )
        hist = engine.history(iid)
        scheduling = [(e["EventType"], e["EventId"]) for e in hist if e["EventType"] in (4, 10)]
        assert scheduling == [(4, 0), (10, 1), (4, 2), (10, 3), (4, 4), (10, 5)]
        dummy = next(e for e in hist if e["EventType"] == 10 and e["EventId"] == 5)
        last_failure = max(i for i, e in enumerate(hist) if e["EventType"] == EventType.TASK_FAILED)
        episode_start = next(e for e in reversed(hist[:last_failure]) if e["EventType"] == 12)
        assert dummy["FireAt"] == episode_start["Timestamp"]  # fires at once
