"""Emulation of the extension's ``OutOfProcOrchestrationShim`` on top of DTFx's orchestration context.

After the SDK returns its state for an episode, the extension replays the *actions* against a
real DTFx ``TaskOrchestrationContext`` (azure-functions-durable-extension
src/WebJobs.Extensions.DurableTask/Listener/OutOfProcOrchestrationShim.cs).  This module does the same
with synchronous futures:

* ``ProcessAsyncActionsV2``: ``foreach (action in actions) await InvokeAPIFromAction(action)``,
  swallowing exceptions.  Every top-level action is awaited before the next one is even invoked
  (what that does to a ``task_any`` sliding window: docs/design.md §1-2).
* WhenAll, WhenAny and DTFx's ``RetryInterceptor`` (a timer at ``now + first*backoff^n`` after
  each failure, a "Dummy timer for back-compat" after the last attempt): :mod:`.shim_tasks`.
* Sequence ids are taken in DTFx call order from 0 per execution; scheduling events already in
  history are matched against the produced decisions (``HandleTaskScheduledEvent`` & co.), which
  is where DTFx detects non-determinism: :mod:`.replay_decisions`.
* A ``CreateTimer`` with ``isCanceled`` is created (id + TimerCreated) and cancelled at once.
* Completion: after the replay of the actions finished and DTFx has no open tasks, ``error`` ->
  Failed "Orchestrator function '<name>' failed: <error>", else ``isDone`` -> Completed / continue.

:class:`ShimReplayer` keeps the state the shim's loop and DTFx's context share (sequence ids, open
tasks, event waiters). What the extension checks before replaying (retry options, custom status
size) is in :mod:`.state_checks`.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

from . import history as h
from .history import EventType
from .invoke import NO_STATE_KEY
from .replay_decisions import (
    Decision,
    ReplayFatal,
    ReplayResult,
    match_scheduled,
    match_sub,
    match_timer,
    unknown_function_message,
)
from .shim_tasks import ShimTask, completed, when_all, when_any, with_retry
from .state_checks import (
    MAX_DELAY_DAYS,
    StateError,
    check_custom_status_size,
    check_state_actions,
    parse_retry_options,
)

__all__ = ["AZURE_STAYS_RUNNING", "Decision", "ReplayResult", "ShimReplayer", "unknown_function_message"]

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
        self._open: dict[int, ShimTask] = {}  # DTFx openTasks
        # pending WaitForExternalEvent per (case-folded) name: a stack, newest first (see _wait_for_event)
        self._waiters: dict[str, list[ShimTask]] = {}
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
            raise ReplayFatal("history has no OrchestratorStarted event before ExecutionStarted")
        return self._now

    def _unknown(self, name: str, kind: str) -> ReplayFatal:
        known = self._known_activities() if kind == "activity" else self._known_orchestrators()
        return ReplayFatal(unknown_function_message(name, kind, known) + AZURE_STAYS_RUNNING)

    def _schedule(self, decision: Decision) -> ShimTask:
        fut = ShimTask()
        self._actions[decision.task_id] = decision
        self._open[decision.task_id] = fut
        return fut

    def _call_activity(self, name: str, input_json: str | None) -> ShimTask:
        if not self._activity_exists(name):
            raise self._unknown(name, "activity")
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
                    raise ReplayFatal(
                        f"The Azure Storage provider supports a maximum of {MAX_DELAY_DAYS} days for "
                        f"time-based delays (Parameter '{param}')" + AZURE_STAYS_RUNNING
                    )
        if kind in (0, 1):
            if not self._activity_exists(name):
                raise self._unknown(name, "activity")
            return
        if not self._orchestrator_exists(name):
            raise self._unknown(name, "orchestrator")
        if instance_id is not None and (
            instance_id.lower() == self.instance_id.lower()
            or (self.parent_instance_id is not None and instance_id.lower() == self.parent_instance_id.lower())
        ):
            raise ReplayFatal(
                "The instance ID of a sub-orchestration must be different than the instance ID of a parent "
                "orchestration." + AZURE_STAYS_RUNNING
            )
        if instance_id is not None and instance_id.startswith("@"):
            # new ArgumentException(nameof(instanceId), "Orchestration instance ids must not start with @"):
            # the extension passes message and parameter name the wrong way round.
            raise ReplayFatal(
                "instanceId (Parameter 'Orchestration instance ids must not start with @')" + AZURE_STAYS_RUNNING
            )

    def _call_sub(self, name: str, instance_id: str | None, input_json: str | None) -> ShimTask:
        if not self._orchestrator_exists(name):
            raise self._unknown(name, "orchestrator")
        task_id = self._next_id()
        # TaskOrchestrationContext.CreateSubOrchestrationInstanceCore: "{ExecutionId}:{id}".
        actual = instance_id or f"{self.execution_id}:{task_id}"
        return self._schedule(Decision("sub", task_id, name=name, input=input_json, instance_id=actual))

    def _create_timer(self, fire_at: datetime, cancelled: bool = False) -> ShimTask:
        timer_id = self._next_id()
        fut = self._schedule(Decision("timer", timer_id, fire_at=fire_at, cancelled=cancelled))
        if cancelled:
            # The shim cancels at once; cancelToken.Register(...) does TrySetCanceled + openTasks.Remove(id),
            # but the CreateTimer action stays in orchestratorActionsMap (so TimerCreated is still written).
            self._open.pop(timer_id, None)
            fut.settle(False, "canceled")
        return fut

    def _wait_for_event(self, name: str) -> ShimTask:
        """``DurableOrchestrationContext.WaitForExternalEvent<T>(name, reason)``.

        azure-functions-durable-extension src/WebJobs.Extensions.DurableTask/ContextImplementations/
        DurableOrchestrationContext.cs: ``pendingExternalEvents`` is a dictionary keyed case-insensitively
        (``StringComparer.OrdinalIgnoreCase``) whose values are a *stack* ("a custom implementation using a
        single-linked list"): a new waiter is pushed on top, and ``RaiseEvent`` completes the top one,
        i.e. the newest pending wait for that name wins. Events raised before anyone waited are queued
        (``bufferedExternalEvents``, FIFO) and handed to the next waiter at once.
        """
        fut = ShimTask()
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

    def _with_retry(self, options: dict[str, Any], attempt_call: Callable[[], ShimTask]) -> ShimTask:
        return with_retry(options, attempt_call, self._now_or_fail, self._create_timer)

    # ---- OutOfProcOrchestrationShim.InvokeAPIFromAction --------------------------------

    def _invoke(self, action: dict[str, Any]) -> ShimTask:
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
            return completed()
        if kind == 5:
            return self._create_timer(h.parse_ts(action["fireAt"]), bool(action.get("isCanceled")))
        if kind == 6:
            return self._wait_for_event(action["externalEventName"])
        if kind in _UNSUPPORTED:
            raise ReplayFatal(f"{_UNSUPPORTED[kind]} is not supported by the local dev host")
        if kind == 11:
            return when_any([self._invoke(a) for a in action.get("compoundActions") or []])
        if kind == 12:
            return when_all([self._invoke(a) for a in action.get("compoundActions") or []])
        raise ReplayFatal(f"Received an unexpected action type from the out-of-proc function: '${kind}'.")

    def _run_v2(self, actions: list[dict[str, Any]], index: int = 0) -> None:
        """``ProcessAsyncActionsV2``: invoke, await, next (exceptions are swallowed)."""
        while index < len(actions):
            fut = self._invoke(actions[index])
            index += 1
            if not fut.done:

                def resume_v2(_f: ShimTask, i: int = index) -> None:
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
                any_fut = when_any(futs)
                if not any_fut.done:

                    def resume_v1(_f: ShimTask, i: int = index) -> None:
                        self._run_v1(action_sets, i)

                    any_fut.then(resume_v1)
                    return
        self._top_done = True

    # ---- DTFx TaskOrchestrationContext.Handle*Event -------------------------------------

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
                    raise ReplayFatal(
                        f"With OOProc schema {schema}, expected actions array to be of length 1 in outer "
                        f"layer but got size: {len(actions_payload or [])}"
                    )
                self._run_v2(actions_payload[0])
            else:
                self._run_v1(actions_payload or [])
        elif et == EventType.TASK_SCHEDULED:
            match_scheduled(self._actions, ev)
        elif et == EventType.TIMER_CREATED:
            match_timer(self._actions, ev)
        elif et == EventType.SUB_ORCHESTRATION_INSTANCE_CREATED:
            match_sub(self._actions, ev)
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
        except ReplayFatal as fatal:
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
