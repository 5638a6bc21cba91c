"""Instance lifecycle details: failures, sub-orchestration retries, carry-over, logging, replacement."""

from __future__ import annotations

import logging

import azure.durable_functions as df
import pytest
from devhost_helpers import client_input, running

from durable_devhost import InstanceNotFoundError, SkippableClock
from durable_devhost.history import EventType

CALLS: dict[str, int] = {}


def make_app() -> df.DFApp:
    app = df.DFApp()

    @app.orchestration_trigger(context_name="context")
    def raises_at_once(context: df.DurableOrchestrationContext):
        raise ValueError("bad input")

    @app.orchestration_trigger(context_name="context")
    def uncaught_activity_failure(context: df.DurableOrchestrationContext):
        yield context.call_activity("explode", "x")

    @app.orchestration_trigger(context_name="context")
    def retry_parent(context: df.DurableOrchestrationContext):
        return (
            yield context.call_sub_orchestrator_with_retry("flaky_child", df.RetryOptions(500, 3), context.get_input())
        )

    @app.orchestration_trigger(context_name="context")
    def flaky_child(context: df.DurableOrchestrationContext):
        key = context.get_input()
        attempt = yield context.call_activity("count_call", key)
        if attempt < 2:
            raise RuntimeError(f"child attempt {attempt} failed")
        return f"child ok on {attempt}"

    @app.orchestration_trigger(context_name="context")
    def waiting_parent(context: df.DurableOrchestrationContext):
        try:
            yield context.call_sub_orchestrator("waiting_child", None, "the-child")
        except Exception as exc:
            return f"child failed: {exc}"
        return "child ok"

    @app.orchestration_trigger(context_name="context")
    def waiting_child(context: df.DurableOrchestrationContext):
        return (yield context.wait_for_external_event("Never"))

    @app.orchestration_trigger(context_name="context")
    def echo_event(context: df.DurableOrchestrationContext):
        return (yield context.wait_for_external_event("E"))

    @app.activity_trigger(input_name="what")
    def explode(what: str) -> None:
        raise RuntimeError(f"exploded {what}")

    @app.activity_trigger(input_name="key")
    def count_call(key: str) -> int:
        CALLS[key] = CALLS.get(key, 0) + 1
        return CALLS[key]

    return app


@pytest.fixture
async def engine():
    async with running(make_app(), clock=SkippableClock(auto_skip=True)) as e:
        yield e


async def test_orchestrator_exception_fails_instance(engine):
    iid = await engine.start_orchestration("raises_at_once")
    status = await engine.wait_for_completion(iid, 5)
    assert status["runtimeStatus"] == "Failed"
    assert status["output"] == "Orchestrator function 'raises_at_once' failed: bad input"


async def test_uncaught_activity_failure_message(engine):
    iid = await engine.start_orchestration("uncaught_activity_failure")
    status = await engine.wait_for_completion(iid, 5)
    assert status["output"].startswith(
        "Orchestrator function 'uncaught_activity_failure' failed: Activity function 'explode' failed: "
        "exploded x \n RuntimeError: exploded x"
    )


async def test_an_activity_the_worker_cannot_run_fails_the_task_instead_of_hanging(engine, monkeypatch):
    from durable_devhost import activity_dispatch

    def broken_worker(*args, **kwargs):
        raise RuntimeError("worker could not start")

    monkeypatch.setattr(activity_dispatch, "run_activity_sync", broken_worker)
    iid = await engine.start_orchestration("uncaught_activity_failure")
    status = await engine.wait_for_completion(iid, 5)
    assert status["runtimeStatus"] == "Failed"
    assert "Activity function 'explode' failed: worker could not start" in status["output"]


async def test_sub_orchestration_with_retry_uses_new_default_ids(engine):
    iid = await engine.start_orchestration("retry_parent", client_input("sub-retry"))
    status = await engine.wait_for_completion(iid, 5)
    assert status["output"] == "child ok on 2"
    hist = engine.history(iid)
    execution_id = hist[1]["OrchestrationInstance"]["ExecutionId"]
    created = [
        (e["EventId"], e["InstanceId"]) for e in hist if e["EventType"] == EventType.SUB_ORCHESTRATION_INSTANCE_CREATED
    ]
    assert created == [(0, f"{execution_id}:0"), (2, f"{execution_id}:2")]
    assert [e["EventId"] for e in hist if e["EventType"] == EventType.TIMER_CREATED] == [1]
    first = await engine.get_status(f"{execution_id}:0")
    assert first["runtimeStatus"] == "Failed"


async def test_terminating_a_child_fails_the_parents_task(engine):
    iid = await engine.start_orchestration("waiting_parent")
    await engine.wait_idle()
    await engine.terminate("the-child", "stop it")
    status = await engine.wait_for_completion(iid, 5)
    assert status["output"] == "child failed: stop it \n None"
    assert (await engine.get_status("the-child"))["runtimeStatus"] == "Terminated"


async def test_event_to_pending_instance_and_errors(engine):
    iid = await engine.start_orchestration("echo_event")
    await engine.raise_event(iid, "E", '{"raw": true}')  # a raw JSON body (curl), not the Python client
    status = await engine.wait_for_completion(iid, 5)
    assert status["output"] == {"raw": True}
    with pytest.raises(InstanceNotFoundError):
        await engine.raise_event("missing", "E", "1")


async def test_finished_instance_id_can_be_reused(engine):
    await engine.start_orchestration("raises_at_once", None, "reused")
    await engine.wait_for_completion("reused", 5)
    await engine.start_orchestration("echo_event", None, "reused")
    await engine.raise_event("reused", "E", '"second"')
    status = await engine.wait_for_completion("reused", 5)
    assert status["name"] == "echo_event" and status["output"] == "second"


async def test_function_log_lines(engine, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="durable_devhost")
    iid = await engine.start_orchestration("uncaught_activity_failure")
    await engine.wait_for_completion(iid, 5)
    lines = [r.getMessage() for r in caplog.records if r.name == "durable_devhost"]
    assert any(line.startswith(f"Executed 'Functions.explode' (Failed, Id={iid}, Duration=") for line in lines)
    assert any(line.startswith(f"Executed 'Functions.uncaught_activity_failure' (Failed, Id={iid}") for line in lines)
