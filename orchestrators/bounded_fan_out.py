"""A sliding window of Durable tasks that stays a real window on the real
Durable extension.

The obvious Python version -- keep ``limit`` tasks in flight, ``yield
context.task_any(in_flight)``, top up, repeat -- does *not* behave as a
window on Azure. The SDK leaves already-scheduled tasks out of a compound
action, so each later ``task_any`` reaches the extension as a WhenAny of only
the *new* tasks; the extension's out-of-process shim
(``OutOfProcOrchestrationShim.ProcessAsyncActionsV2``) awaits every top-level
action before it even looks at the next. It therefore stalls on the newest
task and schedules nothing else until that task finishes: the window drains
and throughput collapses towards one-at-a-time.

The fix used here: every time new tasks are started, yield them once inside
``task_any(new_tasks + [zero-delay timer])``. The extension sees a WhenAny
that completes as soon as the timer fires (immediately), so it moves on to
later actions, and the SDK sees the same thing. Waiting for "any in-flight
task" then emits no action at all. The cost is one extra timer (two history
events) per refill, which is far cheaper than a stalled window.

Everything here is deterministic: no clock but ``current_utc_datetime``, no
I/O, so replays produce identical actions.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def bounded_fan_out(
    context: Any,
    items: Sequence[T],
    start_task: Callable[[T], Any],
    limit: int,
    on_done: Callable[[int, Any], None],
    on_progress: Callable[[int], None] | None = None,
) -> Generator[Any, Any, None]:
    """Run ``start_task(item)`` for every item with at most ``limit`` in flight.

    ``on_done(index, task)`` is called once per finished task (succeeded or
    failed: inspect ``task.state`` and ``task.result``); ``on_progress(in_flight)``
    after each round so callers can publish progress. Use with ``yield from``.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    next_index = 0
    in_flight: dict[Any, int] = {}
    while next_index < len(items) or in_flight:
        new_tasks = []
        while next_index < len(items) and len(in_flight) < limit:
            task = start_task(items[next_index])
            in_flight[task] = next_index
            new_tasks.append(task)
            next_index += 1
        if new_tasks:
            kick = context.create_timer(context.current_utc_datetime)
            yield context.task_any([*new_tasks, kick])
        if on_progress is not None:
            on_progress(len(in_flight))
        yield context.task_any(list(in_flight))
        for task in [t for t in in_flight if t.is_completed]:
            on_done(in_flight.pop(task), task)
