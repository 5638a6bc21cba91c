"""Reading orchestration histories in tests: windows, promptness, timers."""

from __future__ import annotations

from typing import Any

from durable_devhost.history import parse_ts

EXECUTION_STARTED, TASK_SCHEDULED, TASK_COMPLETED, TASK_FAILED = 0, 4, 5, 6
SUB_CREATED, SUB_COMPLETED, SUB_FAILED = 7, 8, 9
TIMER_CREATED, TIMER_FIRED, ORCHESTRATOR_STARTED, ORCHESTRATOR_COMPLETED = 10, 11, 12, 13

ACTIVITY = (TASK_SCHEDULED, (TASK_COMPLETED, TASK_FAILED))
SUB_ORCHESTRATION = (SUB_CREATED, (SUB_COMPLETED, SUB_FAILED))


def executions(history: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Split a history spanning continue-as-new (``DevHost.history(..., all_executions=True)``)
    into one history per execution; task ids restart at 0 in each."""
    runs: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    for event in history:
        if event["EventType"] == EXECUTION_STARTED and current:
            head = [current.pop()] if current[-1]["EventType"] == ORCHESTRATOR_STARTED else []
            if current:
                runs.append(current)
            current = head
        current.append(event)
    if current:
        runs.append(current)
    return runs


def _starts_and_ends(history: list[dict[str, Any]], name: str, kind=ACTIVITY) -> tuple[list[int], list[int]]:
    """Positions (in ``history``) where ``name`` tasks were scheduled and finished."""
    scheduled_type, finished_types = kind
    starts: list[int] = []
    ends: list[int] = []
    offset = 0
    for run in executions(history):
        ids = {e["EventId"] for e in run if e["EventType"] == scheduled_type and e["Name"] == name}
        starts += [offset + i for i, e in enumerate(run) if e["EventType"] == scheduled_type and e["EventId"] in ids]
        ends += [
            offset + i for i, e in enumerate(run) if e["EventType"] in finished_types and e["TaskScheduledId"] in ids
        ]
        offset += len(run)
    return starts, ends


def peak_in_flight(history: list[dict[str, Any]], name: str, kind=ACTIVITY) -> int:
    """Peak number of ``name`` tasks scheduled and not yet finished in one history."""
    starts, ends = _starts_and_ends(history, name, kind)
    marks = sorted([(i, 1) for i in starts] + [(i, -1) for i in ends])
    level = peak = 0
    for _, step in marks:
        level += step
        peak = max(peak, level)
    return peak


def peak_in_flight_across(histories: list[list[dict[str, Any]]], name: str) -> int:
    """Peak number of ``name`` activities in flight across several instances,
    from the event timestamps (a finish and a start at the same instant do not overlap)."""
    marks = []
    for history in histories:
        starts, ends = _starts_and_ends(history, name)
        marks += [(parse_ts(history[i]["Timestamp"]), 1) for i in starts]
        marks += [(parse_ts(history[i]["Timestamp"]), -1) for i in ends]
    level = peak = 0
    for _, step in sorted(marks):
        level += step
        peak = max(peak, level)
    return peak


def assert_replacements_start_promptly(history: list[dict[str, Any]], limit: int, name: str, kind=ACTIVITY) -> None:
    """A sliding window, not batches: the task that replaces the i-th finished
    one is scheduled in the same episode, or at the latest in the episode where
    the pending zero-delay "kick" timer fires (the extension cannot see new
    work before that; see orchestrators/bounded_fan_out.py). It never waits
    for the other in-flight tasks to finish."""
    starts, ends = _starts_and_ends(history, name, kind)
    for nth, done_at in enumerate(sorted(ends)):
        if limit + nth >= len(starts):
            break
        replacement_at = starts[limit + nth]
        fired = (i for i in range(done_at, len(history)) if history[i]["EventType"] == TIMER_FIRED)
        fired_at = next(fired, done_at)
        episode_ends = (i for i in range(fired_at, len(history)) if history[i]["EventType"] == ORCHESTRATOR_COMPLETED)
        deadline = next(episode_ends, len(history))
        assert done_at < replacement_at < deadline, (
            f"completion #{nth} (event {done_at}) was replaced at event {replacement_at}, after {deadline}"
        )


def timer_delays_ms(history: list[dict[str, Any]]) -> list[int]:
    """FireAt minus the orchestration time (the episode's OrchestratorStarted) of each timer."""
    delays, now = [], None
    for event in history:
        if event["EventType"] == ORCHESTRATOR_STARTED:
            now = parse_ts(event["Timestamp"])
        elif event["EventType"] == TIMER_CREATED:
            delays.append(round((parse_ts(event["FireAt"]) - now).total_seconds() * 1000))
    return delays


def scheduled_count(history: list[dict[str, Any]], name: str) -> int:
    return sum(1 for e in history if e["EventType"] == TASK_SCHEDULED and e["Name"] == name)
