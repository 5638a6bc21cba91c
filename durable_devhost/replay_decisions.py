"""What replaying one episode decides, and DTFx's non-determinism checks of those decisions.

A :class:`Decision` is an orchestrator action not yet in history (it becomes a ``TaskScheduled``,
``TimerCreated`` or ``SubOrchestrationInstanceCreated`` event); a :class:`ReplayResult` is the
episode's outcome. :func:`match_scheduled` / :func:`match_timer` / :func:`match_sub` are DTFx's
``TaskOrchestrationContext.Handle*Event``: a scheduling event already in history must meet the
decision the replay produced under the same sequence id, with DTFx's messages when it does not.
:class:`ReplayFatal` fails the instance outright; :mod:`.replay` produces and matches decisions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from . import history as h

Outcome = Literal["running", "completed", "failed", "continued_as_new"]


class ReplayFatal(Exception):
    """Fails the instance outright (non-determinism, unknown function, unsupported API)."""


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


def unknown_function_message(name: str, kind: str, known: list[str]) -> str:
    """``DurableTaskExtension.GetInvalid{Activity,Orchestrator}FunctionMessage``."""
    message = f"The function '{name}' doesn't exist, is disabled, or is not an {kind} function. Additional info: "
    if known:
        joined = "', '".join(known)
        message += f"The following are the known {kind} functions: '{joined}'."
    else:
        message += f"No {kind} functions are currently registered!"
    return message


# ---- DTFx TaskOrchestrationContext.Handle*Event -------------------------------------------

_CHANGED = "Was a change made to the orchestrator code after this instance had already started running?"


def _nondeterministic(message: str) -> ReplayFatal:
    return ReplayFatal("Non-Deterministic workflow detected: " + message)


def _action_class(decision: Decision) -> str:
    return {
        "task": "ScheduleTaskOrchestratorAction",
        "timer": "CreateTimerOrchestratorAction",
        "sub": "CreateSubOrchestrationAction",
    }[decision.kind]


def match_scheduled(actions: dict[int, Decision], ev: dict[str, Any]) -> None:
    """A ``TaskScheduled`` in history takes its decision out of ``actions`` (or fails the replay)."""
    task_id = ev["EventId"]
    decision = actions.get(task_id)
    name = ev.get("Name")
    if decision is None:
        raise _nondeterministic(
            f"A previous execution of this orchestration scheduled an activity task with sequence ID {task_id} "
            f"and name '{name}' (version '{ev.get('Version', '')}'), but the current replay execution hasn't "
            f"(yet?) scheduled this task. {_CHANGED}"
        )
    if decision.kind != "task":
        raise _nondeterministic(
            f"A previous execution of this orchestration scheduled an activity task with sequence number "
            f"{task_id} named '{name}', but the current orchestration replay instead produced a "
            f"{_action_class(decision)} action with this sequence number. {_CHANGED}"
        )
    if (decision.name or "").lower() != (name or "").lower():
        raise _nondeterministic(
            f"A previous execution of this orchestration scheduled an activity task with sequence number "
            f"{task_id} named '{name}', but the current orchestration replay instead scheduled an activity "
            f"task named '{decision.name}' with this sequence number.  {_CHANGED}"
        )
    del actions[task_id]


def match_timer(actions: dict[int, Decision], ev: dict[str, Any]) -> None:
    """A ``TimerCreated`` in history takes its decision out of ``actions`` (or fails the replay)."""
    task_id = ev["EventId"]
    decision = actions.get(task_id)
    if decision is None:
        raise _nondeterministic(
            f"A previous execution of this orchestration scheduled a timer task with sequence number {task_id} "
            f"but the current replay execution hasn't (yet?) scheduled this task. {_CHANGED}"
        )
    if decision.kind != "timer":
        raise _nondeterministic(
            f"A previous execution of this orchestration scheduled a timer task with sequence number {task_id} "
            f"named but the current orchestration replay instead produced a {_action_class(decision)} action "
            f"with this sequence number. {_CHANGED}"
        )
    del actions[task_id]


def match_sub(actions: dict[int, Decision], ev: dict[str, Any]) -> None:
    """A ``SubOrchestrationInstanceCreated`` in history takes its decision out of ``actions``."""
    task_id = ev["EventId"]
    decision = actions.get(task_id)
    name, version, inst = ev.get("Name"), ev.get("Version", ""), ev.get("InstanceId")
    prefix = (
        f"A previous execution of this orchestration scheduled a sub-orchestration task with sequence "
        f"ID {task_id} and name '{name}' (version '{version}', instance ID '{inst}'), "
    )
    if decision is None:
        raise _nondeterministic(
            prefix + f"but the current replay execution hasn't (yet?) scheduled this task. {_CHANGED}"
        )
    if decision.kind != "sub":
        raise _nondeterministic(
            prefix + f"but the current orchestration replay instead produced a {_action_class(decision)} "
            f"action at this sequence number. {_CHANGED}"
        )
    if (decision.name or "").lower() != (name or "").lower():
        raise _nondeterministic(
            prefix + f"but the current orchestration replay instead scheduled a sub-orchestration task with "
            f"name {decision.name} at this sequence number. {_CHANGED}"
        )
    del actions[task_id]
