"""The shim emulation against hand-built histories and the real SDK (no engine)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.durable_functions as df
import pytest
from devhost_helpers import client_input, running

from durable_devhost import FunctionIndex, SkippableClock
from durable_devhost import history as h
from durable_devhost.invoke import invoke_orchestrator, orchestrator_payload
from durable_devhost.replay import ReplayResult, ShimReplayer

T0 = datetime(2024, 1, 1, tzinfo=UTC)
CHANGE = {"name": "step_a"}
MODE = {"first": "activity"}


def make_app() -> df.DFApp:
    app = df.DFApp()

    @app.orchestration_trigger(context_name="context")
    def window(context: df.DurableOrchestrationContext):
        """A naive sliding window of width 2 over 5 items."""
        in_flight = [context.call_activity("work", i) for i in range(2)]
        nxt, results = 2, []
        while in_flight:
            done = yield context.task_any(in_flight)
            in_flight.remove(done)
            results.append(done.result)
            if nxt < 5:
                in_flight.append(context.call_activity("work", nxt))
                nxt += 1
        return results

    @app.orchestration_trigger(context_name="context")
    def all_fail_one(context: df.DurableOrchestrationContext):
        yield context.task_all([context.call_activity("work", 1), context.call_activity("work", 2)])
        return "never"

    @app.orchestration_trigger(context_name="context")
    def changing(context: df.DurableOrchestrationContext):
        yield context.call_activity(CHANGE["name"], 1)
        value = yield context.wait_for_external_event("Go")
        return value

    @app.orchestration_trigger(context_name="context")
    def uses_entity(context: df.DurableOrchestrationContext):
        return (yield context.call_entity(df.EntityId("Counter", "k"), "add", 1))

    @app.orchestration_trigger(context_name="context")
    def uses_http(context: df.DurableOrchestrationContext):
        return (yield context.call_http("GET", "https://example.invalid/"))

    @app.orchestration_trigger(context_name="context")
    def fan(context: df.DurableOrchestrationContext):
        first = yield context.call_activity("work", 0)
        rest = yield context.task_all([context.call_activity("work", i) for i in range(1, 4)])
        timer = context.create_timer(context.current_utc_datetime + timedelta(seconds=1))
        yield timer
        return [first, *rest]

    @app.orchestration_trigger(context_name="context")
    def shape_shifter(context: df.DurableOrchestrationContext):
        if MODE["first"] == "activity":
            yield context.call_activity("work", 1)
        elif MODE["first"] == "timer":
            yield context.create_timer(context.current_utc_datetime + timedelta(seconds=5))
        return (yield context.wait_for_external_event("Go"))

    @app.orchestration_trigger(context_name="context")
    def can_loop(context: df.DurableOrchestrationContext):
        if context.get_input() == 0:
            yield context.call_activity("work", 1)
            context.continue_as_new(1)
            return None
        return (yield context.wait_for_external_event("E"))

    @app.activity_trigger(input_name="n")
    def work(n: int) -> int:
        return n * 10

    @app.activity_trigger(input_name="n")
    def step_a(n: int) -> int:
        return n

    @app.activity_trigger(input_name="n")
    def step_b(n: int) -> int:
        return n

    return app


INDEX = FunctionIndex.from_app(make_app())


class Harness:
    """Drives episodes by hand: history in, SDK state, shim replay, decisions appended."""

    def __init__(self, name: str, input_json: str | None = None) -> None:
        self.name = name
        self.now = T0
        self.history: list[dict[str, Any]] = []
        self.pending: list[dict[str, Any]] = [
            h.execution_started(T0, name=name, instance_id="inst", execution_id="exec", input_json=input_json)
        ]
        self.input_json = input_json

    def episode(self, *events: dict[str, Any]) -> ReplayResult:
        self.now += timedelta(seconds=1)
        new = [h.orchestrator_started(self.now), *self.pending, *events]
        self.pending = []
        full = self.history + new
        fn = INDEX.orchestrator(self.name)
        assert fn is not None
        payload = orchestrator_payload(
            history=full, input_json=self.input_json, instance_id="inst", parent_instance_id=None
        )
        self.state = invoke_orchestrator(fn, payload)
        result = ShimReplayer(
            orchestrator_name=fn.name,
            instance_id="inst",
            execution_id="exec",
            activity_exists=lambda n: INDEX.activity(n) is not None,
            orchestrator_exists=lambda n: INDEX.orchestrator(n) is not None,
        ).replay(full, self.state)
        for ev in new:
            ev["IsPlayed"] = True
        decided = [d.to_event(self.now) for d in result.decisions]
        for ev in decided:
            ev["IsPlayed"] = True
        self.history = full + decided + [h.orchestrator_completed(self.now) | {"IsPlayed": True}]
        return result

    def done(self, task_id: int, value: Any) -> dict[str, Any]:
        return h.task_completed(self.now, task_id, json.dumps(value))


def scheduled(result: ReplayResult) -> list[tuple[str, int]]:
    return [(d.kind, d.task_id) for d in result.decisions]


def test_sliding_window_waits_for_the_previously_awaited_action():
    """The shim awaits each top-level action before invoking the next one (ProcessAsyncActionsV2)."""
    hx = Harness("window")
    assert scheduled(hx.episode()) == [("task", 0), ("task", 1)]
    # a0 done: Python yields task_any([a1, a2]); the SDK only emits WhenAny[a2].
    r = hx.episode(hx.done(0, 0))
    assert scheduled(r) == [("task", 2)]
    # a1 done: Python already yields WhenAny[a3], but the shim is still awaiting WhenAny[a2].
    r = hx.episode(hx.done(1, 10))
    assert scheduled(r) == []
    assert [a["actionType"] for a in hx.state["actions"][0]] == [11, 11, 11]
    assert r.outcome == "running"
    # a2 done: WhenAny[a2] completes, the shim reaches WhenAny[a3] and schedules it (id 3).
    r = hx.episode(hx.done(2, 20))
    assert scheduled(r) == [("task", 3)]
    r = hx.episode(hx.done(3, 30))
    assert scheduled(r) == [("task", 4)]
    r = hx.episode(hx.done(4, 40))
    assert r.outcome == "completed"
    assert json.loads(r.output or "null") == [0, 10, 20, 30, 40]


def test_task_all_failure_waits_for_siblings():
    hx = Harness("all_fail_one")
    hx.episode()
    r = hx.episode(h.task_failed(hx.now, 0, "Activity function 'work' failed: x", "details"))
    assert "error" in hx.state and r.outcome == "running"  # WhenAll still waits for task 1
    r = hx.episode(hx.done(1, 20))
    assert r.outcome == "failed"
    assert json.loads(r.output or "null").startswith(
        "Orchestrator function 'all_fail_one' failed: Activity function 'work' failed: x"
    )


def test_non_determinism_detected_by_replay():
    CHANGE["name"] = "step_a"
    hx = Harness("changing")
    hx.episode()
    hx.episode(hx.done(0, 1))
    CHANGE["name"] = "step_b"
    try:
        r = hx.episode(h.event_raised(hx.now, "Go", '"v"'))
    finally:
        CHANGE["name"] = "step_a"
    assert r.outcome == "failed"
    assert json.loads(r.output or "null") == (
        "Non-Deterministic workflow detected: A previous execution of this orchestration scheduled an activity "
        "task with sequence number 0 named 'step_a', but the current orchestration replay instead scheduled an "
        "activity task named 'step_b' with this sequence number.  Was a change made to the orchestrator code "
        "after this instance had already started running?"
    )


def test_names_are_matched_case_insensitively():
    hx = Harness("changing")
    hx.episode()
    hx.history[2]["Name"] = "STEP_A"  # DTFx compares OrdinalIgnoreCase
    r = hx.episode(hx.done(0, 1))
    assert r.outcome == "running" and r.decisions == []


@pytest.mark.parametrize(
    ("name", "what"), [("uses_entity", "Durable entities (call_entity)"), ("uses_http", "Durable HTTP (call_http)")]
)
def test_entities_and_http_fail_fast(name: str, what: str):
    r = Harness(name).episode()
    assert r.outcome == "failed"
    assert json.loads(r.output or "null") == f"{what} is not supported by the local dev host"


async def test_determinism_check_on_finished_history():
    """Replaying a finished history through the SDK gives the same actions and no new decisions."""
    async with running(INDEX, clock=SkippableClock(auto_skip=True)) as engine:
        iid = await engine.start_orchestration("fan", client_input(None))
        status = await engine.wait_for_completion(iid, 5)
        final = engine.history(iid)
    fn = INDEX.orchestrator("fan")
    assert fn is not None
    payload = orchestrator_payload(history=final, input_json=None, instance_id=iid, parent_instance_id=None)
    state = invoke_orchestrator(fn, payload)
    assert state["isDone"] is True and state["output"] == status["output"] == [0, 10, 20, 30]
    again = invoke_orchestrator(fn, payload)
    assert again["actions"] == state["actions"]
    execution_id = final[1]["OrchestrationInstance"]["ExecutionId"]
    result = ShimReplayer(
        orchestrator_name="fan",
        instance_id=iid,
        execution_id=execution_id,
        activity_exists=lambda n: True,
        orchestrator_exists=lambda n: True,
    ).replay(final, state)
    assert result.decisions == [] and result.outcome == "completed"


async def test_non_determinism_through_the_engine():
    CHANGE["name"] = "step_a"
    try:
        async with running(INDEX) as engine:
            iid = await engine.start_orchestration("changing")
            await engine.wait_idle()
            CHANGE["name"] = "step_b"  # "deploy" a changed orchestrator mid-flight
            await engine.raise_event(iid, "Go", '"v"')
            status = await engine.wait_for_completion(iid, 5)
    finally:
        CHANGE["name"] = "step_a"
    assert status["runtimeStatus"] == "Failed"
    assert status["output"].startswith(
        "Non-Deterministic workflow detected: A previous execution of this "
        "orchestration scheduled an activity task with sequence number 0 named "
        "'step_a'"
    )


def test_continue_as_new_carries_over_events_raised_after_it():
    """An EventRaised processed after ContinueAsNew in the same episode goes to the next execution."""
    hx = Harness("can_loop", client_input(0))
    hx.episode()
    result = hx.episode(hx.done(0, 10), h.event_raised(hx.now, "E", '"carried"'))
    assert result.outcome == "continued_as_new"
    assert json.loads(result.continue_input or "null") == "1"
    assert [e["Input"] for e in result.carryover_events] == ['"carried"']


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (
            "nothing",
            "Non-Deterministic workflow detected: A previous execution of this orchestration scheduled an "
            "activity task with sequence ID 0 and name 'work' (version ''), but the current replay execution "
            "hasn't (yet?) scheduled this task.",
        ),
        (
            "timer",
            "Non-Deterministic workflow detected: A previous execution of this orchestration scheduled an "
            "activity task with sequence number 0 named 'work', but the current orchestration replay instead "
            "produced a CreateTimerOrchestratorAction action with this sequence number.",
        ),
    ],
)
def test_non_determinism_missing_or_different_kind(mode: str, expected: str):
    MODE["first"] = "activity"
    hx = Harness("shape_shifter")
    hx.episode()
    hx.episode(hx.done(0, 10))
    MODE["first"] = mode
    try:
        r = hx.episode(h.event_raised(hx.now, "Go", '"v"'))
    finally:
        MODE["first"] = "activity"
    assert r.outcome == "failed"
    assert json.loads(r.output or "null").startswith(expected)


def _retry_state(**options: Any) -> dict[str, Any]:
    action = {
        "actionType": 1,
        "functionName": "work",
        "input": "1",
        "retryOptions": {"firstRetryIntervalInMilliseconds": 1000, **options},
    }
    return {"isDone": False, "schemaVersion": 2, "actions": [[{"actionType": 12, "compoundActions": [action]}]]}


def _drive_retry(state: dict[str, Any], failures: int) -> list[tuple[str, int, float]]:
    """Fail the task ``failures`` times, firing each retry timer; return (kind, id, delay s) decisions."""
    now = T0
    history = [
        h.orchestrator_started(now),
        h.execution_started(now, name="r", instance_id="i", execution_id="e", input_json=None),
    ]
    decisions: list[tuple[str, int, float]] = []

    def replay() -> ReplayResult:
        r = ShimReplayer(
            orchestrator_name="r",
            instance_id="i",
            execution_id="e",
            activity_exists=lambda n: True,
            orchestrator_exists=lambda n: True,
        ).replay(history, state)
        for d in r.decisions:
            delay = (d.fire_at - now).total_seconds() if d.fire_at else 0.0
            decisions.append((d.kind, d.task_id, delay))
            history.append(d.to_event(now))
        return r

    replay()
    for _ in range(failures):
        task_id = decisions[-1][1]
        now += timedelta(seconds=10)
        history.extend([h.orchestrator_started(now), h.task_failed(now, task_id, "x", "y")])
        replay()
        if decisions[-1][0] != "timer":
            continue
        timer_id, delay = decisions[-1][1], decisions[-1][2]
        now += timedelta(seconds=delay)
        history.extend([h.orchestrator_started(now), h.timer_fired(now, timer_id, h.format_ts(now))])
        replay()
    return decisions


def test_retry_interceptor_backoff_and_max_interval():
    decisions = _drive_retry(
        _retry_state(maxNumberOfAttempts=4, backoffCoefficient=2, maxRetryIntervalInMilliseconds=3000), failures=4
    )
    assert decisions == [
        ("task", 0, 0.0),
        ("timer", 1, 1.0),
        ("task", 2, 0.0),
        ("timer", 3, 2.0),
        ("task", 4, 0.0),
        ("timer", 5, 3.0),
        ("task", 6, 0.0),
        ("timer", 7, 0.0),
    ]


def test_retry_interceptor_retry_timeout_stops_retrying():
    decisions = _drive_retry(_retry_state(maxNumberOfAttempts=5, retryTimeoutInMilliseconds=15000), failures=2)
    # 1st failure at +10 s (< 15 s): retry timer; 2nd failure at +21 s: timeout expired -> no timer.
    assert decisions == [("task", 0, 0.0), ("timer", 1, 1.0), ("task", 2, 0.0)]
