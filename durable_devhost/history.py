"""Constructors for DTFx history events, serialised the way the extension sends them
(durabletask src/DurableTask.Core/History/*.cs, written by Newtonsoft in the orchestration trigger's payload).

DTFx ``[DataMember]`` properties serialised by Newtonsoft: PascalCase keys, ``EventType`` as
an int (the SDK compares ints; a string silently breaks replay), ``EventId`` = sequence id for
scheduling events and -1 otherwise, ``IsPlayed`` and ``Timestamp`` with 7 fractional digits + Z.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

from dateutil import parser as _dtparser

from .runtime_status import ORDERED, TERMINAL_STATUSES, RuntimeStatus


class EventType(IntEnum):
    """DTFx ``EventType`` values (the SDK's ``HistoryEventType`` has the same numbers)."""

    EXECUTION_STARTED = 0
    EXECUTION_COMPLETED = 1
    EXECUTION_FAILED = 2
    EXECUTION_TERMINATED = 3
    TASK_SCHEDULED = 4
    TASK_COMPLETED = 5
    TASK_FAILED = 6
    SUB_ORCHESTRATION_INSTANCE_CREATED = 7
    SUB_ORCHESTRATION_INSTANCE_COMPLETED = 8
    SUB_ORCHESTRATION_INSTANCE_FAILED = 9
    TIMER_CREATED = 10
    TIMER_FIRED = 11
    ORCHESTRATOR_STARTED = 12
    ORCHESTRATOR_COMPLETED = 13
    EVENT_SENT = 14
    EVENT_RAISED = 15
    CONTINUE_AS_NEW = 16
    GENERIC_EVENT = 17
    HISTORY_STATE = 18
    EXECUTION_SUSPENDED = 19
    EXECUTION_RESUMED = 20


def format_ts(dt: datetime) -> str:
    """.NET round-trip format: ``2024-01-01T00:00:00.1234567Z`` (7 fractional digits, UTC)."""
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}0Z"


def format_status_ts(dt: datetime) -> str:
    """Status payload timestamps (``createdTime``/``lastUpdatedTime``): seconds + Z, like the extension."""
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_ts(text: str) -> datetime:
    """Parse an ISO-8601 timestamp (DTFx or SDK format) into an aware UTC datetime.

    ``datetime.fromisoformat`` (Python 3.11+) reads DTFx's 7-digit fractions and ``Z`` about
    much faster than dateutil, which stays as the fallback for anything more exotic."""
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        dt = _dtparser.isoparse(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def event(
    event_type: EventType, now: datetime, *, event_id: int = -1, is_played: bool = False, **fields: Any
) -> dict[str, Any]:
    """One history event: the four keys every event must have, then the type's own fields."""
    ev: dict[str, Any] = {
        "EventType": int(event_type),
        "EventId": event_id,
        "IsPlayed": is_played,
        "Timestamp": format_ts(now),
    }
    ev.update(fields)
    return ev


def orchestrator_started(now: datetime) -> dict[str, Any]:
    return event(EventType.ORCHESTRATOR_STARTED, now)


def orchestrator_completed(now: datetime) -> dict[str, Any]:
    return event(EventType.ORCHESTRATOR_COMPLETED, now)


def execution_started(
    now: datetime,
    *,
    name: str,
    instance_id: str,
    execution_id: str,
    input_json: str | None,
    parent: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``Version`` must be present (SDK 1.7.0 reads ``event.Version`` unconditionally:
    azure-functions-durable-python azure/durable_functions/models/history/HistoryEvent.py)."""
    return event(
        EventType.EXECUTION_STARTED,
        now,
        OrchestrationInstance={"InstanceId": instance_id, "ExecutionId": execution_id},
        ParentInstance=parent,
        Name=name,
        Version="",
        Input=input_json,
        Tags=None,
        Correlation=None,
        ScheduledStartTime=None,
        Generation=0,
    )


def parent_instance(*, name: str, instance_id: str, execution_id: str, task_schedule_id: int) -> dict[str, Any]:
    """DTFx ``ParentInstance`` of a sub-orchestration's ExecutionStarted."""
    return {
        "Name": name,
        "OrchestrationInstance": {"InstanceId": instance_id, "ExecutionId": execution_id},
        "TaskScheduleId": task_schedule_id,
        "Version": "",
    }


def task_scheduled(now: datetime, task_id: int, name: str, input_json: str | None) -> dict[str, Any]:
    return event(EventType.TASK_SCHEDULED, now, event_id=task_id, Name=name, Version="", Input=input_json)


def task_completed(now: datetime, task_scheduled_id: int, result: str | None) -> dict[str, Any]:
    return event(EventType.TASK_COMPLETED, now, TaskScheduledId=task_scheduled_id, Result=result)


def task_failed(now: datetime, task_scheduled_id: int, reason: str, details: str | None) -> dict[str, Any]:
    return event(EventType.TASK_FAILED, now, TaskScheduledId=task_scheduled_id, Reason=reason, Details=details)


def sub_orchestration_created(
    now: datetime, task_id: int, name: str, instance_id: str, input_json: str | None
) -> dict[str, Any]:
    return event(
        EventType.SUB_ORCHESTRATION_INSTANCE_CREATED,
        now,
        event_id=task_id,
        Name=name,
        Version="",
        InstanceId=instance_id,
        Input=input_json,
    )


def sub_orchestration_completed(now: datetime, task_scheduled_id: int, result: str | None) -> dict[str, Any]:
    return event(EventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED, now, TaskScheduledId=task_scheduled_id, Result=result)


def sub_orchestration_failed(now: datetime, task_scheduled_id: int, reason: str, details: str | None) -> dict[str, Any]:
    return event(
        EventType.SUB_ORCHESTRATION_INSTANCE_FAILED,
        now,
        TaskScheduledId=task_scheduled_id,
        Reason=reason,
        Details=details,
    )


def timer_created(now: datetime, timer_id: int, fire_at: datetime) -> dict[str, Any]:
    return event(EventType.TIMER_CREATED, now, event_id=timer_id, FireAt=format_ts(fire_at))


def timer_fired(now: datetime, timer_id: int, fire_at: str) -> dict[str, Any]:
    return event(EventType.TIMER_FIRED, now, TimerId=timer_id, FireAt=fire_at)


def event_raised(now: datetime, name: str, input_json: str | None) -> dict[str, Any]:
    return event(EventType.EVENT_RAISED, now, Name=name, Input=input_json)


def execution_terminated(now: datetime, reason: str | None) -> dict[str, Any]:
    return event(EventType.EXECUTION_TERMINATED, now, Input=reason)


def execution_suspended(now: datetime, reason: str | None) -> dict[str, Any]:
    return event(EventType.EXECUTION_SUSPENDED, now, Reason=reason)


def execution_resumed(now: datetime, reason: str | None) -> dict[str, Any]:
    return event(EventType.EXECUTION_RESUMED, now, Reason=reason)


def execution_completed(now: datetime, status: str, result: str | None, failure: str | None = None) -> dict[str, Any]:
    """DTFx appends this when an execution ends (``OrchestrationStatus`` is the .NET enum name)."""
    ended = status in TERMINAL_STATUSES or status == RuntimeStatus.CONTINUED_AS_NEW
    return event(
        EventType.EXECUTION_COMPLETED,
        now,
        OrchestrationStatus=ORDERED.index(status) if ended else 1,
        Result=result,
        FailureDetails=failure,
    )
