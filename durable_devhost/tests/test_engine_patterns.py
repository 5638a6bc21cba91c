"""End-to-end orchestration patterns through the real SDK 1.7.0 and the engine."""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from typing import Any

import azure.durable_functions as df
import pytest
from devhost_helpers import client_input, event_types, running

from durable_devhost import InstanceExistsError, UnknownFunctionError
from durable_devhost.history import EventType


class Order:
    """A custom class with to_json/from_json (the SDK's serialisation envelope:
    azure-functions-durable-python azure/durable_functions/models/utils/json_utils.py)."""

    def __init__(self, item: str, qty: int) -> None:
        self.item, self.qty = item, qty

    @staticmethod
    def to_json(obj: Order) -> dict[str, Any]:
        return {"item": obj.item, "qty": obj.qty}

    @staticmethod
    def from_json(data: dict[str, Any]) -> Order:
        return Order(data["item"], data["qty"])


def make_app() -> df.DFApp:
    app = df.DFApp()

    @app.orchestration_trigger(context_name="context")
    def chain(context: df.DurableOrchestrationContext):
        city = context.get_input()
        a = yield context.call_activity("hello", city)
        b = yield context.call_activity("Hello", a)  # names are case-insensitive in the extension
        return [a, b]

    @app.orchestration_trigger(context_name="context")
    def fan_out(context: df.DurableOrchestrationContext):
        n = context.get_input()
        results = yield context.task_all([context.call_activity("jitter_square", i) for i in range(n)])
        return sum(results)

    @app.orchestration_trigger(context_name="context")
    def with_status(context: df.DurableOrchestrationContext):
        context.set_custom_status({"stage": "start"})
        yield context.call_activity("hello", "x")
        context.set_custom_status({"stage": "done"})
        return "ok"

    @app.orchestration_trigger(context_name="context")
    def uses_async(context: df.DurableOrchestrationContext):
        return (yield context.call_activity("async_double", 21))

    @app.orchestration_trigger(context_name="context")
    def uses_class(context: df.DurableOrchestrationContext):
        order = context.get_input()
        result = yield context.call_activity("double_order", order)
        # The SDK json.dumps()es an orchestrator's output without the custom-object hook.
        return {"type": type(result).__name__, "input_type": type(order).__name__, **Order.to_json(result)}

    @app.orchestration_trigger(context_name="context")
    def calls_missing(context: df.DurableOrchestrationContext):
        yield context.call_activity("does_not_exist", 1)
        return "never"

    @app.orchestration_trigger(context_name="context")
    def parent(context: df.DurableOrchestrationContext):
        ok = yield context.call_sub_orchestrator("child", 5)
        try:
            yield context.call_sub_orchestrator("failing_child", None, "fixed-child-id")
        except Exception as exc:
            return {"ok": ok, "error": str(exc)}
        return {"ok": ok}

    @app.orchestration_trigger(context_name="context")
    def child(context: df.DurableOrchestrationContext):
        n = context.get_input()
        return (yield context.call_activity("jitter_square", n))

    @app.orchestration_trigger(context_name="context")
    def failing_child(context: df.DurableOrchestrationContext):
        yield context.call_activity("boom", "child")
        return "never"

    @app.orchestration_trigger(context_name="context")
    def counter(context: df.DurableOrchestrationContext):
        n = context.get_input()
        context.set_custom_status({"n": n})
        if n < 3:
            yield context.call_activity("hello", str(n))
            context.continue_as_new(n + 1)
            return None
        return n

    @app.orchestration_trigger(context_name="context")
    def awaits_counter(context: df.DurableOrchestrationContext):
        return (yield context.call_sub_orchestrator("counter", 0, "counter-child"))

    @app.orchestration_trigger(context_name="context")
    def not_a_generator(context: df.DurableOrchestrationContext):
        return {"input": context.get_input()}

    @app.orchestration_trigger(context_name="context")
    def waits_forever(context: df.DurableOrchestrationContext):
        value = yield context.wait_for_external_event("Go")
        result = yield context.call_activity("hello", value)
        return result

    @app.activity_trigger(input_name="name")
    def hello(name: str) -> str:
        return f"Hello {name}"

    @app.activity_trigger(input_name="n")
    def jitter_square(n: int) -> int:
        time.sleep(random.random() * 0.01)  # completions arrive out of order
        return n * n

    @app.activity_trigger(input_name="n")
    async def async_double(n: int) -> int:
        await asyncio.sleep(0)
        return n * 2

    @app.activity_trigger(input_name="order")
    def double_order(order: Order) -> Order:
        assert isinstance(order, Order)
        return Order(order.item, order.qty * 2)

    @app.activity_trigger(input_name="where")
    def boom(where: str) -> None:
        raise ValueError(f"boom in {where}")

    return app


@pytest.fixture
async def engine():
    async with running(make_app()) as e:
        yield e


async def test_chaining(engine):
    iid = await engine.start_orchestration("chain", client_input("Tokyo"))
    status = await engine.wait_for_completion(iid, 5)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == ["Hello Tokyo", "Hello Hello Tokyo"]
    assert status["input"] == '"Tokyo"'  # the Python client's double encoding (docs/devhost.md)
    hist = engine.history(iid)
    assert event_types(hist)[:4] == [12, 0, 4, 13]
    assert [e["EventId"] for e in hist if e["EventType"] == EventType.TASK_SCHEDULED] == [0, 1]
    assert all(e["IsPlayed"] for e in hist)
    assert hist[-2]["EventType"] == EventType.EXECUTION_COMPLETED


async def test_fan_out_fan_in_out_of_order(engine):
    iid = await engine.start_orchestration("fan_out", client_input(20))
    status = await engine.wait_for_completion(iid, 10)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == sum(i * i for i in range(20))
    scheduled = [e["EventId"] for e in engine.history(iid) if e["EventType"] == EventType.TASK_SCHEDULED]
    assert scheduled == list(range(20))


async def test_custom_status(engine):
    iid = await engine.start_orchestration("with_status", client_input(None))
    status = await engine.wait_for_completion(iid, 5)
    assert status["customStatus"] == {"stage": "done"}
    assert status["output"] == "ok"


async def test_async_activity(engine):
    iid = await engine.start_orchestration("uses_async")
    status = await engine.wait_for_completion(iid, 5)
    assert status["output"] == 42


async def test_custom_class_input_and_output(engine):
    from azure.functions._durable_functions import df_dumps

    iid = await engine.start_orchestration("uses_class", json.dumps(df_dumps(Order("pen", 3))))
    status = await engine.wait_for_completion(iid, 5)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == {"type": "Order", "input_type": "Order", "item": "pen", "qty": 6}


async def test_unknown_activity_fails_instance(engine):
    iid = await engine.start_orchestration("calls_missing")
    status = await engine.wait_for_completion(iid, 5)
    assert status["runtimeStatus"] == "Failed"
    assert status["output"].startswith(
        "The function 'does_not_exist' doesn't exist, is disabled, or is not an activity function. "
        "Additional info: The following are the known activity functions: "
    )


async def test_unknown_orchestrator_start(engine):
    with pytest.raises(UnknownFunctionError, match="doesn't exist, is disabled, or is not an orchestrator"):
        await engine.start_orchestration("nope")


async def test_sub_orchestrations_success_failure_and_default_id(engine):
    iid = await engine.start_orchestration("parent", None, "the-parent")
    status = await engine.wait_for_completion(iid, 10)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"]["ok"] == 25
    assert "Activity function 'boom' failed: boom in child" in status["output"]["error"]
    hist = engine.history(iid)
    created = [e for e in hist if e["EventType"] == EventType.SUB_ORCHESTRATION_INSTANCE_CREATED]
    execution_id = hist[1]["OrchestrationInstance"]["ExecutionId"]
    assert [c["InstanceId"] for c in created] == [f"{execution_id}:0", "fixed-child-id"]
    child = await engine.get_status(f"{execution_id}:0")
    assert child["runtimeStatus"] == "Completed" and child["output"] == 25 and child["input"] == "5"
    failed = await engine.get_status("fixed-child-id")
    assert failed["runtimeStatus"] == "Failed"
    assert failed["output"].startswith("Orchestrator function 'failing_child' failed: Activity function 'boom'")


async def test_continue_as_new(engine):
    iid = await engine.start_orchestration("counter", client_input(0))
    status = await engine.wait_for_completion(iid, 10)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == 3
    assert status["customStatus"] == {"n": 3}
    hist = engine.history(iid)  # only the last execution's history
    assert hist[1]["EventType"] == EventType.EXECUTION_STARTED
    assert json.loads(hist[1]["Input"]) == "3"
    assert EventType.TASK_SCHEDULED not in event_types(hist)


async def test_history_of_every_execution_is_kept_for_inspection(engine):
    iid = await engine.start_orchestration("counter", client_input(0))
    await engine.wait_for_completion(iid, 10)
    everything = engine.history(iid, all_executions=True)
    starts = [json.loads(e["Input"]) for e in everything if e["EventType"] == EventType.EXECUTION_STARTED]
    assert starts == ["0", "1", "2", "3"]  # the SDK's client input is a JSON string
    assert event_types(everything).count(EventType.TASK_SCHEDULED) == 3
    assert everything[-len(engine.history(iid)) :] == engine.history(iid)
    await engine.purge(iid)
    assert engine.history(iid, all_executions=True) == []


async def test_sub_orchestration_that_continues_as_new_reports_only_its_last_execution(engine):
    """DTFx keeps ParentInstance on ContinueAsNew and notifies the parent only at the end."""
    iid = await engine.start_orchestration("awaits_counter")
    status = await engine.wait_for_completion(iid, 10)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == 3
    parent = engine.history(iid)
    assert event_types(parent).count(EventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED) == 1
    child_starts = [
        e for e in engine.history("counter-child", all_executions=True) if e["EventType"] == EventType.EXECUTION_STARTED
    ]
    assert len(child_starts) == 4
    assert all(e["ParentInstance"]["OrchestrationInstance"]["InstanceId"] == iid for e in child_starts)


async def test_non_generator_orchestrator(engine):
    iid = await engine.start_orchestration("not_a_generator", client_input({"a": 1}))
    status = await engine.wait_for_completion(iid, 5)
    assert status["output"] == {"input": {"a": 1}}


async def test_terminate(engine):
    iid = await engine.start_orchestration("waits_forever")
    await asyncio.sleep(0.05)
    await engine.terminate(iid, "enough")
    status = await engine.wait_for_completion(iid, 5)
    assert status["runtimeStatus"] == "Terminated"
    assert status["output"] == "enough"
    from durable_devhost import InstanceGoneError

    with pytest.raises(InstanceGoneError):
        await engine.raise_event(iid, "Go", '"late"')


async def test_suspend_resume(engine):
    iid = await engine.start_orchestration("waits_forever")
    await asyncio.sleep(0.05)
    await engine.suspend(iid, "pause")
    await asyncio.sleep(0.05)
    assert (await engine.get_status(iid))["runtimeStatus"] == "Suspended"
    await engine.raise_event(iid, "Go", '"later"')
    await asyncio.sleep(0.1)
    status = await engine.get_status(iid)
    assert status["runtimeStatus"] == "Suspended"  # the event stays queued
    await engine.resume(iid, "go on")
    status = await engine.wait_for_completion(iid, 5)
    assert status["output"] == "Hello later"
    types = event_types(engine.history(iid))
    assert EventType.EXECUTION_SUSPENDED in types and EventType.EXECUTION_RESUMED in types


async def test_instance_exists_purge_and_list(engine):
    iid = await engine.start_orchestration("waits_forever", None, "fixed")
    with pytest.raises(InstanceExistsError):
        await engine.start_orchestration("waits_forever", None, "fixed")
    await engine.wait_idle()
    assert await engine.purge(iid) == 1  # Azure Storage purges a Running instance too
    assert await engine.get_status(iid) is None
    iid = await engine.start_orchestration("waits_forever", None, "fixed")  # the id is free again
    await engine.raise_event(iid, "Go", '"x"')
    await engine.wait_for_completion(iid, 5)
    done = await engine.start_orchestration("chain", client_input("a"))
    await engine.wait_for_completion(done, 5)
    listed = await engine.list_instances(runtime_status=["Completed"])
    assert {s["instanceId"] for s in listed} == {"fixed", done}
    assert [s["instanceId"] for s in await engine.list_instances(instance_id_prefix="fix")] == ["fixed"]
    assert await engine.purge("fixed") == 1
    assert await engine.get_status("fixed") is None
    assert engine.history("fixed") == []
    assert await engine.purge_by(runtime_status=["Completed"]) == 1
    assert await engine.list_instances() == []


async def test_status_with_history(engine):
    iid = await engine.start_orchestration("chain", client_input("z"))
    await engine.wait_for_completion(iid, 5)
    status = await engine.get_status(iid, show_history=True, show_history_output=False)
    names = [e["EventType"] for e in status["historyEvents"]]
    assert names[0] == "ExecutionStarted"  # the extension's summarised form (see test_strict.py)
    assert all("Result" not in e for e in status["historyEvents"])
    status = await engine.get_status(iid, show_history=True, show_history_output=True)
    assert any(e.get("Result") == "Hello z" for e in status["historyEvents"])
    assert engine.history(iid)[0]["EventType"] == EventType.ORCHESTRATOR_STARTED  # raw history unchanged


GATES: dict[int, threading.Event] = {}


def make_window_app() -> df.DFApp:
    app = df.DFApp()

    @app.orchestration_trigger(context_name="context")
    def window(context: df.DurableOrchestrationContext):
        """A naive sliding window (width 2 over 4 items) that re-yields task_any(in_flight)."""
        in_flight = [context.call_activity("gated", i) for i in range(2)]
        nxt, results = 2, []
        while in_flight:
            done = yield context.task_any(in_flight)
            in_flight.remove(done)
            results.append(done.result)
            if nxt < 4:
                in_flight.append(context.call_activity("gated", nxt))
                nxt += 1
        return results

    @app.activity_trigger(input_name="n")
    def gated(n: int) -> int:
        assert GATES[n].wait(5)
        return n

    return app


async def test_sliding_window_new_activity_waits_for_the_awaited_action():
    """The shim is stuck awaiting WhenAny[a2]; a3 (already yielded by Python) is scheduled only after a2."""
    GATES.clear()
    GATES.update({i: threading.Event() for i in range(4)})

    async def settled(engine, iid: str, completed: int) -> list[int]:
        for _ in range(500):
            hist = engine.history(iid)
            done = [e for e in hist if e["EventType"] == EventType.TASK_COMPLETED]
            if hist and len(done) >= completed and hist[-1]["EventType"] == EventType.ORCHESTRATOR_COMPLETED:
                return [e["EventId"] for e in hist if e["EventType"] == EventType.TASK_SCHEDULED]
            await asyncio.sleep(0.01)
        raise AssertionError("history did not settle")

    try:
        async with running(make_window_app()) as engine:
            iid = await engine.start_orchestration("window")
            assert await settled(engine, iid, 0) == [0, 1]
            GATES[0].set()
            assert await settled(engine, iid, 1) == [0, 1, 2]
            GATES[1].set()
            await asyncio.sleep(0.1)
            assert await settled(engine, iid, 2) == [0, 1, 2]  # a3 NOT scheduled yet
            GATES[2].set()
            assert await settled(engine, iid, 3) == [0, 1, 2, 3]
            GATES[3].set()
            status = await engine.wait_for_completion(iid, 5)
            assert status["output"] == [0, 1, 2, 3]
    finally:
        for gate in GATES.values():
            gate.set()
