"""Emulation of the extension's ``OutOfProcOrchestrationShim`` on top of DTFx's orchestration context.

After the SDK returns its state for an episode, the extension replays the *actions* against a
real DTFx ``TaskOrchestrationContext`` (azure-functions-durable-extension
src/WebJobs.Extensions.DurableTask/Listener/OutOfProcOrchestrationShim.cs).  This module does the same
with synchronous futures:

* ``ProcessAsyncActionsV2``: ``foreach (action in actions) await InvokeAPIFromAction(action)``,
  swallowing exceptions.  Every top-level action is awaited before the next one is even invoked
  (what that does to a ``task_any`` sliding window: docs/design.md §1-2).
* WhenAll = ``Task.WhenAll`` (waits for every child, even after a failure); WhenAny =
  ``Task.WhenAny`` (first child to finish, success, failure or cancellation).
* Sequence ids are taken in DTFx call order from 0 per execution; scheduling events already in
  history are matched against the produced actions (``HandleTaskScheduledEvent`` & co.), which is
  where DTFx detects non-determinism.
* ``RetryInterceptor``: a timer at ``now + first*backoff^n`` after each failure and an immediate
  "Dummy timer for back-compat" after the last attempt.
* A ``CreateTimer`` with ``isCanceled`` is created (id + TimerCreated) and cancelled at once.
* Completion: after the replay of the actions finished and DTFx has no open tasks, ``error`` ->
  Failed "Orchestrator function '<name>' failed: <error>", else ``isDone`` -> Completed / continue.

Over 400 lines on purpose: :class:`ShimReplayer` is one state machine (the shim's loop, DTFx's
sequence ids, the non-determinism checks and the retry interceptor share its state), and splitting
it would scatter one algorithm over several files. What the extension checks before replaying
(retry options, custom status size) is in :mod:`.state_checks`.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from . import history as h
from .history import EventType
from .invoke import NO_STATE_KEY
from .state_checks import (
    MAX_DELAY_DAYS,
    MAX_RETRY_INTERVAL_MS,
    StateError,
    check_custom_status_size,
    check_state_actions,
    parse_retry_options,
)

Outcome = Literal["running", "completed", "failed", "continued_as_new"]


# What the extension does with a call it rejects inside DurableOrchestrationContext.CallDurableTaskFunctionAsync
# (an ``async`` method, so the ArgumentException becomes a *faulted task*):
# OutOfProcOrchestrationShim.ProcessAsyncActionsV2 awaits it inside ``catch (Exception) { }``, the SDK
# never sees a completion, and the instance stays Running forever with the message reported nowhere.
AZURE_STAYS_RUNNING = (
    " [dev host: on Azure this instance would NOT fail: the extension faults this call's task "
    "(DurableOrchestrationContext.CallDurableTaskFunctionAsync) and "
    "OutOfProcOrchestrationShim.ProcessAsyncActionsV2 swallows the exception, so the instance would "
    "stay Running forever and this message would appear nowhere. The dev host fails it instead.]"
)


@dataclass
class Decision:
    """One new DTFx decision (an orchestrator action not yet in history)."""

    kind: Literal["task", "timer", "sub"]
    task_id: int
    name: str | None = None
    input: str | None = None  # JSON text exactly as the SDK's action carried it
    fire_at: datetime | None = None
    instance_id: str | None = None  # sub-orchestrations
    cancelled: bool = False  # timers cancelled by the shim as soon as created

    def to_event(self, now: datetime) -> dict[str, Any]:
        if self.kind == "task":
            # DTFx serialises ScheduleTask's parameters as an array of the (string) input.
            return h.task_scheduled(now, self.task_id, self.name or "", json.dumps([self.input]))
        if self.kind == "timer":
            assert self.fire_at is not None
            return h.timer_created(now, self.task_id, self.fire_at)
        return h.sub_orchestration_created(
            now, self.task_id, self.name or "", self.instance_id or "", json.dumps(self.input)
        )


@dataclass
class ReplayResult:
    decisions: list[Decision] = field(default_factory=list)
    outcome: Outcome = "running"
    output: str | None = None  # JSON text (Completed output / failure reason)
    failure_details: str | None = None
    continue_input: str | None = None  # new ExecutionStarted.Input after ContinueAsNew
    carryover_events: list[dict[str, Any]] = field(default_factory=list)
    custom_status: str | None = None  # JSON text


class _Fatal(Exception):
    """Fails the instance outright (non-determinism, unknown function, unsupported API)."""


class _Future:
    """A tiny synchronous stand-in for a .NET Task."""

    __slots__ = ("_callbacks", "done", "ok", "value")

    def __init__(self) -> None:
        self.done = False
        self.ok = True
        self.value: Any = None
        self._callbacks: list[Callable[[_Future], None]] = []

    def settle(self, ok: bool, value: Any = None) -> None:
        if self.done:
            return
        self.done, self.ok, self.value = True, ok, value
        callbacks, self._callbacks = self._callbacks, []
        for cb in callbacks:
            cb(self)

    def then(self, cb: Callable[[_Future], None]) -> None:
        if self.done:
            cb(self)
        else:
            self._callbacks.append(cb)


def _completed() -> _Future:
    f = _Future()
    f.settle(True)
    return f


_UNSUPPORTED = {
    7: "Durable entities (call_entity)",
    8: "Durable HTTP (call_http)",
    9: "Durable entities (signal_entity)",
    10: "Durable entities (scheduled signal_entity)",
}


class ShimReplayer:
    """Replays one episode's actions against the full history of the current execution."""

    def __init__(
        self,
        *,
        orchestrator_name: str,
        instance_id: str,
        execution_id: str,
        activity_exists: Callable[[str], bool],
        orchestrator_exists: Callable[[str], bool],
        known_activities: Callable[[], list[str]] | None = None,
        known_orchestrators: Callable[[], list[str]] | None = None,
        parent_instance_id: str | None = None,
    ) -> None:
        self.orchestrator_name = orchestrator_name
        self.instance_id = instance_id
        self.parent_instance_id = parent_instance_id
        self.execution_id = execution_id
        self._activity_exists = activity_exists
        self._orchestrator_exists = orchestrator_exists
        self._known_activities = known_activities or (lambda: [])
        self._known_orchestrators = known_orchestrators or (lambda: [])
        self._seq = 0
        self._actions: dict[int, Decision] = {}  # DTFx orchestratorActionsMap
        self._open: dict[int, _Future] = {}  # DTFx openTasks
        # pending WaitForExternalEvent per (case-folded) name: a stack, newest first (see _wait_for_event)
        self._waiters: dict[str, list[_Future]] = {}
        self._buffered: dict[str, deque[Any]] = {}  # events raised before anyone waited (FIFO)
        self._now: datetime | None = None
        self._top_done = False
        self._continue_input: str | None = None
        self._continued = False
        self._carryover: list[dict[str, Any]] = []

    # ---- the DTFx context API used by the shim -----------------------------------------

    def _next_id(self) -> int:
        task_id = self._seq
        self._seq += 1
        return task_id

    def _now_or_fail(self) -> datetime:
        if self._now is None:
            raise _Fatal("history has no OrchestratorStarted event before ExecutionStarted")
        return self._now

    def _schedule(self, decision: Decision) -> _Future:
        fut = _Future()
        self._actions[decision.task_id] = decision
        self._open[decision.task_id] = fut
        return fut

    def _call_activity(self, name: str, input_json: str | None) -> _Future:
        if not self._activity_exists(name):
            raise _Fatal(self._unknown_message(name, "activity", self._known_activities()) + AZURE_STAYS_RUNNING)
        return self._schedule(Decision("task", self._next_id(), name=name, input=input_json))

    def _validate_call(self, kind: int, name: str, instance_id: str | None, retry: dict[str, int] | None) -> None:
        """The checks at the top of ``DurableOrchestrationContext.CallDurableTaskFunctionAsync``, in its order.

        Each throws inside an ``async`` method, i.e. faults the task (see ``AZURE_STAYS_RUNNING``).
        """
        if retry is not None:
            # durabilityProvider.ValidateDelayTime(MaxRetryInterval) then (FirstRetryInterval);
            # AzureStorageDurabilityProvider.ValidateDelayTime: "> MaximumDelayTime" (6 days).
            for field_, param in (
                ("maxRetryIntervalInMilliseconds", "MaxRetryInterval"),
                ("firstRetryIntervalInMilliseconds", "FirstRetryInterval"),
            ):
                if retry.get(field_, 0) > MAX_DELAY_DAYS * 24 * 3600 * 1000:
                    raise _Fatal(
                        f"The Azure Storage provider supports a maximum of {MAX_DELAY_DAYS} days for "
                        f"time-based delays (Parameter '{param}')" + AZURE_STAYS_RUNNING
                    )
        if kind in (0, 1):
            if not self._activity_exists(name):
                raise _Fatal(self._unknown_message(name, "activity", self._known_activities()) + AZURE_STAYS_RUNNING)
            return
        if not self._orchestrator_exists(name):
            raise _Fatal(self._unknown_message(name, "orchestrator", self._known_orchestrators()) + AZURE_STAYS_RUNNING)
        if instance_id is not None and (
            instance_id.lower() == self.instance_id.lower()
            or (self.parent_instance_id is not None and instance_id.lower() == self.parent_instance_id.lower())
        ):
            raise _Fatal(
                "The instance ID of a sub-orchestration must be different than the instance ID of a parent "
                "orchestration." + AZURE_STAYS_RUNNING
            )
        if instance_id is not None and instance_id.startswith("@"):
            # new ArgumentException(nameof(instanceId), "Orchestration instance ids must not start with @"):
            # the extension passes message and parameter name the wrong way round.
            raise _Fatal(
                "instanceId (Parameter 'Orchestration instance ids must not start with @')" + AZURE_STAYS_RUNNING
            )

    def _call_sub(self, name: str, instance_id: str | None, input_json: str | None) -> _Future:
        if not self._orchestrator_exists(name):
            raise _Fatal(self._unknown_message(name, "orchestrator", self._known_orchestrators()) + AZURE_STAYS_RUNNING)
        task_id = self._next_id()
        # TaskOrchestrationContext.CreateSubOrchestrationInstanceCore: "{ExecutionId}:{id}".
        actual = instance_id or f"{self.execution_id}:{task_id}"
        return self._schedule(Decision("sub", task_id, name=name, input=input_json, instance_id=actual))

    def _create_timer(self, fire_at: datetime, cancelled: bool = False) -> _Future:
        timer_id = self._next_id()
        fut = self._schedule(Decision("timer", timer_id, fire_at=fire_at, cancelled=cancelled))
        if cancelled:
            # The shim cancels at once; cancelToken.Register(...) does TrySetCanceled + openTasks.Remove(id),
            # but the CreateTimer action stays in orchestratorActionsMap (so TimerCreated is still written).
            self._open.pop(timer_id, None)
            fut.settle(False, "canceled")
        return fut

    def _wait_for_event(self, name: str) -> _Future:
        """``DurableOrchestrationContext.WaitForExternalEvent<T>(name, reason)``.

        azure-functions-durable-extension src/WebJobs.Extensions.DurableTask/ContextImplementations/
        DurableOrchestrationContext.cs: ``pendingExternalEvents`` is a dictionary keyed case-insensitively
        (``StringComparer.OrdinalIgnoreCase``) whose values are a *stack* ("a custom implementation using a
        single-linked list"): a new waiter is pushed on top, and ``RaiseEvent`` completes the top one,
        i.e. the newest pending wait for that name wins. Events raised before anyone waited are queued
        (``bufferedExternalEvents``, FIFO) and handed to the next waiter at once.
        """
        fut = _Future()
        key = name.lower()
        self._waiters.setdefault(key, []).append(fut)
        buffered = self._buffered.get(key)
        if buffered:
            value = buffered.popleft()
            if not buffered:
                del self._buffered[key]
            self._deliver(key, value)
        return fut

    def _deliver(self, key: str, value: Any) -> bool:
        stack = self._waiters.get(key)
        if not stack:
            return False
        fut = stack.pop()  # newest first
        if not stack:
            del self._waiters[key]
        fut.settle(True, value)
        return True

    def _with_retry(self, options: dict[str, Any], attempt_call: Callable[[], _Future]) -> _Future:
        """DTFx ``RetryInterceptor.Invoke`` as a callback chain."""
        result = _Future()
        max_attempts = int(options.get("maxNumberOfAttempts", 1))
        first_ms = float(options["firstRetryIntervalInMilliseconds"])
        backoff = float(options.get("backoffCoefficient", 1.0))
        max_interval_ms = float(options.get("maxRetryIntervalInMilliseconds", MAX_RETRY_INTERVAL_MS))
        timeout_ms = options.get("retryTimeoutInMilliseconds")
        first_attempt = self._now_or_fail()
        if max_attempts <= 0:
            result.settle(True, None)
            return result

        def start(retry_count: int) -> None:
            attempt_call().then(lambda f: finished(f, retry_count))

        def finished(f: _Future, retry_count: int) -> None:
            if f.ok:
                result.settle(True, f.value)
                return
            error = f.value
            if retry_count + 1 == max_attempts:
                dummy = self._create_timer(self._now_or_fail())  # "Dummy timer for back-compat"
                dummy.then(lambda _t: result.settle(False, error))
                return
            delay_ms = 0.0
            expired = timeout_ms is not None and self._now_or_fail() >= first_attempt + timedelta(
                milliseconds=float(timeout_ms)
            )
            if not expired:
                delay_ms = min(first_ms * backoff**retry_count, max_interval_ms)
            if delay_ms <= 0:
                result.settle(False, error)
                return
            timer = self._create_timer(self._now_or_fail() + timedelta(milliseconds=delay_ms))
            timer.then(lambda _t: start(retry_count + 1))

        start(0)
        return result

    # ---- OutOfProcOrchestrationShim.InvokeAPIFromAction --------------------------------

    def _invoke(self, action: dict[str, Any]) -> _Future:
        kind = action.get("actionType")
        if kind in (0, 1, 2, 3):
            retry = parse_retry_options(action.get("retryOptions")) if kind in (1, 3) else None
            self._validate_call(kind, action.get("functionName") or "", action.get("instanceId"), retry)
        if kind == 0:
            return self._call_activity(action["functionName"], action.get("input"))
        if kind == 1:
            return self._with_retry(
                parse_retry_options(action.get("retryOptions")),
                lambda: self._call_activity(action["functionName"], action.get("input")),
            )
        if kind == 2:
            return self._call_sub(action["functionName"], action.get("instanceId"), action.get("input"))
        if kind == 3:
            return self._with_retry(
                parse_retry_options(action.get("retryOptions")),
                lambda: self._call_sub(action["functionName"], action.get("instanceId"), action.get("input")),
            )
        if kind == 4:
            self._continued = True
            self._continue_input = action.get("input")
            return _completed()
        if kind == 5:
            return self._create_timer(h.parse_ts(action["fireAt"]), bool(action.get("isCanceled")))
        if kind == 6:
            return self._wait_for_event(action["externalEventName"])
        if kind in _UNSUPPORTED:
            raise _Fatal(f"{_UNSUPPORTED[kind]} is not supported by the local dev host")
        if kind == 11:
            return self._when_any([self._invoke(a) for a in action.get("compoundActions") or []])
        if kind == 12:
            return self._when_all([self._invoke(a) for a in action.get("compoundActions") or []])
        raise _Fatal(f"Received an unexpected action type from the out-of-proc function: '${kind}'.")

    @staticmethod
    def _when_all(children: list[_Future]) -> _Future:
        result = _Future()
        remaining = [len(children)]
        if not children:
            result.settle(True, [])
            return result

        def one_done(_f: _Future) -> None:
            remaining[0] -= 1
            if remaining[0] == 0:
                result.settle(all(c.ok for c in children), None)

        for child in children:
            child.then(one_done)
        return result

    @staticmethod
    def _when_any(children: list[_Future]) -> _Future:
        result = _Future()
        if not children:  # Task.WhenAny([]) throws: a faulted task, swallowed by the shim
            result.settle(False, "empty WhenAny")
        for child in children:
            child.then(lambda f: result.settle(True, f))
        return result

    def _run_v2(self, actions: list[dict[str, Any]], index: int = 0) -> None:
        """``ProcessAsyncActionsV2``: invoke, await, next (exceptions are swallowed)."""
        while index < len(actions):
            fut = self._invoke(actions[index])
            index += 1
            if not fut.done:

                def resume_v2(_f: _Future, i: int = index) -> None:
                    self._run_v2(actions, i)

                fut.then(resume_v2)
                return
        self._top_done = True

    def _run_v1(self, action_sets: list[list[dict[str, Any]]], index: int = 0) -> None:
        """``ProcessAsyncActionsV1``: each set's tasks are invoked, then ``Task.WhenAny`` awaited."""
        while index < len(action_sets):
            futs = [self._invoke(a) for a in action_sets[index]]
            index += 1
            if futs:
                any_fut = self._when_any(futs)
                if not any_fut.done:

                    def resume_v1(_f: _Future, i: int = index) -> None:
                        self._run_v1(action_sets, i)

                    any_fut.then(resume_v1)
                    return
        self._top_done = True

    # ---- DTFx TaskOrchestrationContext.Handle*Event -------------------------------------

    def _nondeterministic(self, message: str) -> _Fatal:
        return _Fatal("Non-Deterministic workflow detected: " + message)

    _CHANGED = "Was a change made to the orchestrator code after this instance had already started running?"

    def _match_scheduled(self, ev: dict[str, Any]) -> None:
        task_id = ev["EventId"]
        decision = self._actions.get(task_id)
        name = ev.get("Name")
        if decision is None:
            raise self._nondeterministic(
                f"A previous execution of this orchestration scheduled an activity task with sequence ID {task_id} "
                f"and name '{name}' (version '{ev.get('Version', '')}'), but the current replay execution hasn't "
                f"(yet?) scheduled this task. {self._CHANGED}"
            )
        if decision.kind != "task":
            raise self._nondeterministic(
                f"A previous execution of this orchestration scheduled an activity task with sequence number "
                f"{task_id} named '{name}', but the current orchestration replay instead produced a "
                f"{_action_class(decision)} action with this sequence number. {self._CHANGED}"
            )
        if (decision.name or "").lower() != (name or "").lower():
            raise self._nondeterministic(
                f"A previous execution of this orchestration scheduled an activity task with sequence number "
                f"{task_id} named '{name}', but the current orchestration replay instead scheduled an activity "
                f"task named '{decision.name}' with this sequence number.  {self._CHANGED}"
            )
        del self._actions[task_id]

    def _match_timer(self, ev: dict[str, Any]) -> None:
        task_id = ev["EventId"]
        decision = self._actions.get(task_id)
        if decision is None:
            raise self._nondeterministic(
                f"A previous execution of this orchestration scheduled a timer task with sequence number {task_id} "
                f"but the current replay execution hasn't (yet?) scheduled this task. {self._CHANGED}"
            )
        if decision.kind != "timer":
            raise self._nondeterministic(
                f"A previous execution of this orchestration scheduled a timer task with sequence number {task_id} "
                f"named but the current orchestration replay instead produced a {_action_class(decision)} action "
                f"with this sequence number. {self._CHANGED}"
            )
        del self._actions[task_id]

    def _match_sub(self, ev: dict[str, Any]) -> None:
        task_id = ev["EventId"]
        decision = self._actions.get(task_id)
        name, version, inst = ev.get("Name"), ev.get("Version", ""), ev.get("InstanceId")
        prefix = (
            f"A previous execution of this orchestration scheduled a sub-orchestration task with sequence "
            f"ID {task_id} and name '{name}' (version '{version}', instance ID '{inst}'), "
        )
        if decision is None:
            raise self._nondeterministic(
                prefix + f"but the current replay execution hasn't (yet?) scheduled this task. {self._CHANGED}"
            )
        if decision.kind != "sub":
            raise self._nondeterministic(
                prefix + f"but the current orchestration replay instead produced a {_action_class(decision)} "
                f"action at this sequence number. {self._CHANGED}"
            )
        if (decision.name or "").lower() != (name or "").lower():
            raise self._nondeterministic(
                prefix + f"but the current orchestration replay instead scheduled a sub-orchestration task with "
                f"name {decision.name} at this sequence number. {self._CHANGED}"
            )
        del self._actions[task_id]

    def _complete(self, task_id: int, ok: bool, value: Any) -> None:
        fut = self._open.pop(task_id, None)
        if fut is not None:  # otherwise a duplicate / cancelled: DTFx logs and ignores it
            fut.settle(ok, value)

    def _raise_event(self, ev: dict[str, Any]) -> None:
        if self._continued:
            # HandleEventRaisedEvent: after ContinueAsNew, events go to the next iteration.
            self._carryover.append(ev)
            return
        key = (ev.get("Name") or "").lower()
        if not self._deliver(key, ev.get("Input")):
            self._buffered.setdefault(key, deque()).append(ev.get("Input"))

    def _process(self, ev: dict[str, Any], actions_payload: Any, schema: int) -> None:
        et = ev["EventType"]
        if et == EventType.ORCHESTRATOR_STARTED:
            self._now = h.parse_ts(ev["Timestamp"])
        elif et == EventType.EXECUTION_STARTED:
            if schema >= 1:
                if not isinstance(actions_payload, list) or len(actions_payload) != 1:
                    raise _Fatal(
                        f"With OOProc schema {schema}, expected actions array to be of length 1 in outer "
                        f"layer but got size: {len(actions_payload or [])}"
                    )
                self._run_v2(actions_payload[0])
            else:
                self._run_v1(actions_payload or [])
        elif et == EventType.TASK_SCHEDULED:
            self._match_scheduled(ev)
        elif et == EventType.TIMER_CREATED:
            self._match_timer(ev)
        elif et == EventType.SUB_ORCHESTRATION_INSTANCE_CREATED:
            self._match_sub(ev)
        elif et in (EventType.TASK_COMPLETED, EventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED):
            self._complete(ev["TaskScheduledId"], True, ev.get("Result"))
        elif et in (EventType.TASK_FAILED, EventType.SUB_ORCHESTRATION_INSTANCE_FAILED):
            self._complete(ev["TaskScheduledId"], False, ev.get("Reason"))
        elif et == EventType.TIMER_FIRED:
            self._complete(ev["TimerId"], True, None)
        elif et == EventType.EVENT_RAISED:
            self._raise_event(ev)

    # ---- entry point ------------------------------------------------------------------------

    def replay(self, history: list[dict[str, Any]], state: dict[str, Any]) -> ReplayResult:
        result = ReplayResult()
        custom = state.get("customStatus")
        result.custom_status = json.dumps(custom) if custom is not None else None
        schema = int(state.get("schemaVersion", 0) or 0)
        if state.get(NO_STATE_KEY):
            # TaskOrchestrationShim: no $OutOfProcData$ -> fail without replaying the actions.
            message = f"Orchestrator function '{self.orchestrator_name}' failed: {state.get('error')}"
            return ReplayResult(
                outcome="failed",
                output=json.dumps(message),
                failure_details=message,
                custom_status=result.custom_status,
            )
        try:
            # OutOfProcOrchestrationShim.ScheduleDurableTaskEvents: ToObject (RetryOptionsConverter), then
            # context.SetCustomStatus (16 KB check), then the replay. Either throw fails the instance through
            # TaskOrchestrationShim's catch: "Orchestrator function '<name>' failed: <message>".
            check_state_actions(state.get("actions"))
            if custom is not None:
                check_custom_status_size(custom)
        except StateError as exc:
            message = f"Orchestrator function '{self.orchestrator_name}' failed: {exc}"
            return ReplayResult(
                outcome="failed", output=json.dumps(message), failure_details=message, custom_status=None
            )
        try:
            for ev in history:
                self._process(ev, state.get("actions"), schema)
        except _Fatal as fatal:
            result.outcome = "failed"
            result.output = json.dumps(str(fatal))
            result.failure_details = str(fatal)
            return result

        result.decisions = [self._actions[k] for k in sorted(self._actions)]
        if not self._top_done or self._open:
            return result  # DTFx: not complete while the shim awaits or tasks are open
        error = state.get("error")
        if error:
            message = f"Orchestrator function '{self.orchestrator_name}' failed: {error}"
            result.outcome = "failed"
            result.output = json.dumps(message)
            result.failure_details = f"Message: {error}"
        elif state.get("isDone"):
            if self._continued:
                result.outcome = "continued_as_new"
                result.continue_input = json.dumps(self._continue_input)
                result.carryover_events = self._carryover
            else:
                result.outcome = "completed"
                result.output = json.dumps(state.get("output"))
        return result

    @staticmethod
    def _unknown_message(name: str, kind: str, known: list[str]) -> str:
        """``DurableTaskExtension.GetInvalid{Activity,Orchestrator}FunctionMessage``."""
        message = f"The function '{name}' doesn't exist, is disabled, or is not an {kind} function. Additional info: "
        if known:
            joined = "', '".join(known)
            message += f"The following are the known {kind} functions: '{joined}'."
        else:
            message += f"No {kind} functions are currently registered!"
        return message


def unknown_function_message(name: str, kind: str, known: list[str]) -> str:
    return ShimReplayer._unknown_message(name, kind, known)


def _action_class(decision: Decision) -> str:
    return {
        "task": "ScheduleTaskOrchestratorAction",
        "timer": "CreateTimerOrchestratorAction",
        "sub": "CreateSubOrchestrationAction",
    }[decision.kind]
