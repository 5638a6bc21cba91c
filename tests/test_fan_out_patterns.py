"""Why ``bounded_fan_out`` looks the way it does, shown on the dev host (which
replays actions the way the extension's out-of-process shim does).

No storage here: tiny activities that sleep, so only the orchestration
patterns are compared.
"""

from __future__ import annotations

import time
from datetime import timedelta

import azure.durable_functions as df
import azure.functions as func
import pytest

from durable_devhost.testing import DevHost
from imagebatch.function_names import PROCESS_IMAGE
from orchestrators.bounded_fan_out import RetryPolicy, bounded_fan_out
from tests.history_checks import assert_replacements_start_promptly, peak_in_flight

LIMIT, ITEMS = 3, 10
failures_left: dict[int, int] = {}
delays: dict[int, float] = {}


def patterns_app() -> df.DFApp:
    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.activity_trigger(input_name="item")
    def ProcessImage(item: int) -> int:
        time.sleep(delays.get(item, 0.01 * (1 + item % 3)))
        if failures_left.get(item, 0) > 0:
            failures_left[item] -= 1
            raise ConnectionResetError(f"reset while processing {item}")
        return item

    @app.orchestration_trigger(context_name="context")
    def naive_window(context: df.DurableOrchestrationContext):
        pending, in_flight, done = list(range(ITEMS)), [], []
        while pending or in_flight:
            while pending and len(in_flight) < LIMIT:
                in_flight.append(context.call_activity(PROCESS_IMAGE, pending.pop(0)))
            finished = yield context.task_any(in_flight)
            in_flight.remove(finished)
            done.append(finished.result)
        return sorted(done)

    @app.orchestration_trigger(context_name="context")
    def bounded_window(context: df.DurableOrchestrationContext):
        done: list[int] = []
        yield from bounded_fan_out(
            context,
            list(range(ITEMS)),
            lambda item: context.call_activity(PROCESS_IMAGE, item),
            LIMIT,
            lambda index, task, attempts: done.append(task.result),
            retry=RetryPolicy(first_interval_ms=10, max_attempts=3),
        )
        return sorted(done)

    @app.orchestration_trigger(context_name="context")
    def kick_window_with_sdk_retries(context: df.DurableOrchestrationContext):
        """The kick trick alone, with call_activity_with_retry doing the retries."""
        retry = df.RetryOptions(10, 3)
        pending, in_flight, done = list(range(ITEMS)), [], []
        while pending or in_flight:
            new = []
            while pending and len(in_flight) < LIMIT:
                task = context.call_activity_with_retry(PROCESS_IMAGE, retry, pending.pop(0))
                in_flight.append(task)
                new.append(task)
            if new:
                yield context.task_any([*new, context.create_timer(context.current_utc_datetime)])
            yield context.task_any(in_flight)
            for task in [t for t in in_flight if t.is_completed]:
                in_flight.remove(task)
                done.append(task.result)
        return sorted(done)

    return app


async def run(name: str) -> tuple[dict, list[dict]]:
    async with DevHost(patterns_app()) as host:
        instance_id = await host.start_orchestration(name, None)
        status = await host.wait(instance_id, timeout=60)
        return status, host.history(instance_id)


async def test_naive_task_any_window_stalls_on_the_extension():
    delays.clear()
    status, history = await run("naive_window")
    assert status["output"] == list(range(ITEMS)), "it completes..."
    try:
        assert_replacements_start_promptly(history, LIMIT, PROCESS_IMAGE)
    except AssertionError:
        pass
    else:
        raise AssertionError("...but new work should have waited for the newest task: the window stalls")


ADVERSARIAL = {0: 0.15, **{i: 0.6 for i in range(1, ITEMS)}}


@pytest.mark.parametrize(
    ("timing", "failures"), [({}, {2: 1, 5: 2}), (ADVERSARIAL, {0: 1})], ids=["mixed", "adversarial"]
)
async def test_bounded_window_keeps_the_window_full_and_retries_deterministically(timing, failures):
    delays.clear()
    delays.update(timing)
    failures_left.clear()
    failures_left.update(failures)
    status, history = await run("bounded_window")
    assert status["runtimeStatus"] == "Completed", status["output"]
    assert status["output"] == list(range(ITEMS))
    assert peak_in_flight(history, PROCESS_IMAGE) == LIMIT
    assert all(left == 0 for left in failures_left.values())


async def test_sdk_retries_inside_a_kick_window_are_non_deterministic():
    # Item 0 fails after the first kick timer fired and before any other item
    # finishes, so its retry timer's id is taken while the orchestrator waits
    # without an action; the refill that follows is then replayed out of order.
    failures_left.clear()
    failures_left.update({0: 1})
    delays.clear()
    delays.update(ADVERSARIAL)
    status, _ = await run("kick_window_with_sdk_retries")
    assert status["runtimeStatus"] == "Failed"
    assert "Non-Deterministic workflow detected" in status["output"]


def test_retry_policy_backs_off_exponentially_and_is_bounded():
    policy = RetryPolicy(first_interval_ms=100, max_attempts=5, backoff=3.0, max_interval_ms=1000)
    delays = [policy.delay_after(n) for n in range(1, 6)]
    assert delays == [
        timedelta(milliseconds=100),
        timedelta(milliseconds=300),
        timedelta(milliseconds=900),
        timedelta(milliseconds=1000),
        None,
    ]
