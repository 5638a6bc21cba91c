"""A sliding window of Durable activities that stays a real window -- and
deterministic -- on the real Durable extension.

The obvious Python version (keep ``limit`` calls in flight with
``call_activity_with_retry``, ``yield context.task_any(in_flight)``, top up,
repeat) has two traps on the real extension, both from how its
out-of-process shim replays the actions the SDK returns: **the window
stalls** towards one task at a time, and **retries become
non-deterministic**. Both are explained once, with their sources and the
test that reproduces them, in docs/design.md §1 ("How the extension replays
a Python orchestrator").

What this module does instead:

* Every time new tasks start while older ones are still in flight, they are
  yielded once inside ``task_any(new_tasks + [zero-delay timer])``. The
  shim's WhenAny completes as soon as that timer fires, so it moves on to
  later actions; the SDK sees the same. Waiting for "any in-flight task" then
  emits no action. Cost: one timer (two history events) per refill. When
  nothing older is in flight (the first fill, a window of one), the new tasks
  are yielded as they are: Python and the shim wait for the same thing.
* Retries are decided here, as ordinary actions: a failed attempt holds its
  slot and waits on a backoff timer (``first_interval * backoff**n``, capped),
  then starts again, up to ``max_attempts``. Every sequence id comes from an
  action, in yield order, so replays match whatever the timing.

* Stopping early (cancel): ``stop_when`` is a task that never emits work,
  such as ``wait_for_external_event("cancel")``. It joins the wait set the way
  a new task does -- yielded once beside a zero-delay timer the shim can move
  past, then waited on with everything in flight -- so an event raised before the
  wait, during a backoff or together with a completion is seen in the same
  episode on the SDK and on the shim. Once it has completed (or
  ``should_stop()`` says so) no item starts any more, nor a retry; items in
  flight finish and are reported as usual; the generator returns the indices
  of the items that never started.

* Live controls (pause, resume, a new bound, a deadline): ``controls`` is an
  object (``FanOutControls``, e.g. ``orchestrators.controls.RunControls``)
  whose armed waits -- event waits, timers -- join the wait set exactly like
  ``stop_when``: every newly armed wait is yielded once inside
  ``task_any(new + [zero-delay timer])`` and afterwards waited on with the
  slots (no action). After every wait ``controls.observe()`` applies what
  arrived and re-arms; the loop then reads ``controls.limit(limit)``,
  ``controls.paused`` and ``controls.stopped``. While paused no item starts
  and a retry whose backoff ends is held until resume (it then goes first); a
  smaller bound starts nothing until fewer than the bound are in flight, a
  larger one starts items at once. ``stopped`` acts like ``stop_when``.

Everything is deterministic: no clock but ``current_utc_datetime``, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol, TypeVar

from azure.durable_functions.models.Task import TaskState

T = TypeVar("T")

_ACTIVITY, _BACKOFF = "activity", "backoff"


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff for failed attempts, bounded in count and delay."""

    first_interval_ms: int = 2000
    max_attempts: int = 4
    backoff: float = 2.0
    max_interval_ms: int = 30000

    def delay_after(self, attempts: int) -> timedelta | None:
        """The wait before the next attempt, or None when ``attempts`` is the last."""
        if attempts >= self.max_attempts:
            return None
        ms = min(self.first_interval_ms * self.backoff ** (attempts - 1), self.max_interval_ms)
        return timedelta(milliseconds=ms)


class FanOutControls(Protocol):
    """What ``bounded_fan_out`` asks of live controls (see the module docstring)."""

    @property
    def paused(self) -> bool: ...

    @property
    def stopped(self) -> bool: ...

    def limit(self, default: int) -> int: ...

    def take_new(self) -> list[Any]:
        """Waits armed since the last call: yielded once beside a zero-delay timer."""
        ...

    def pending(self) -> list[Any]:
        """Every armed wait not yet completed (waited on with the slots)."""
        ...

    def observe(self) -> None:
        """After each wait: apply the waits that completed, re-arm them."""
        ...


@dataclass(frozen=True)
class _Slot:
    index: int
    attempts: int
    kind: str
    failed: Any = None  # a backoff slot: the failed attempt it waits to retry


def bounded_fan_out(
    context: Any,
    items: Sequence[T],
    start_task: Callable[[T], Any],
    limit: int,
    on_done: Callable[[int, Any, int], None],
    *,
    retry: RetryPolicy | None = None,
    on_progress: Callable[[int], None] | None = None,
    stop_when: Any | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_retry: Callable[[int, Any, int], None] | None = None,
    controls: FanOutControls | None = None,
    requeue: Callable[[int, Any], bool] | None = None,
) -> Generator[Any, Any, list[int]]:
    """Run ``start_task(item)`` for every item, at most ``limit`` items at a time.

    An item holds its slot from its first attempt until its last, backoff
    waits included, so a struggling store gets less traffic, not more.
    ``on_done(index, task, attempts)`` is called once per item with its final
    task (inspect ``task.state`` / ``task.result``); ``on_progress(in_flight)``
    after each refill; ``on_retry(index, failed_task, attempts)`` when a failed
    attempt starts its backoff. ``stop_when`` / ``should_stop`` stop it early
    (see the module docstring); ``controls`` pause it, change its bound or stop it
    while it runs. ``requeue(index, task)``, asked for every successful completion,
    may hand an item back unfinished: it is started again (ahead of new items) when
    the bound allows. Use with ``yield from``; returns the indices of the items that
    never started (empty unless stopped).
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    policy = retry or RetryPolicy(max_attempts=1)
    next_index = 0
    slots: dict[Any, _Slot] = {}
    new_tasks: list[Any] = []
    # The stop task waits with the slots but holds none. It is yielded first beside a
    # zero-delay timer (one timer per fan-out): the shim moves on when the timer fires,
    # and a stop that arrived earlier (cancel during listing) starts nothing at all.
    stop: Any | None = stop_when
    first = [*([stop] if stop is not None else []), *(controls.take_new() if controls is not None else [])]
    if first:
        yield context.task_any([*first, context.create_timer(context.current_utc_datetime)])
        if stop is not None and stop.is_completed:
            stop = None
        if controls is not None:
            controls.observe()
    held: list[_Slot] = []  # retries whose backoff ended while paused: restarted first on resume

    def stopped() -> bool:
        return (
            (stop_when is not None and stop is None)
            or (should_stop is not None and should_stop())
            or (controls is not None and controls.stopped)
        )

    def paused() -> bool:
        return controls is not None and controls.paused

    def bound() -> int:
        return max(1, controls.limit(limit)) if controls is not None else limit

    while ((next_index < len(items) or held) and not stopped()) or slots:
        if stopped() and held:
            for slot in held:  # no new attempt once stopped: the last failure stands
                on_done(slot.index, slot.failed, slot.attempts)
            held = []
        while held and len(slots) < bound() and not paused() and not stopped():
            slot = held.pop(0)
            again = start_task(items[slot.index])
            slots[again] = _Slot(slot.index, slot.attempts + 1, _ACTIVITY)
            new_tasks.append(again)
        while next_index < len(items) and len(slots) < bound() and not paused() and not stopped():
            task = start_task(items[next_index])
            slots[task] = _Slot(next_index, 1, _ACTIVITY)
            new_tasks.append(task)
            next_index += 1
        if controls is not None:
            new_tasks += controls.take_new()
        watch = [*([stop] if stop is not None else []), *(controls.pending() if controls is not None else [])]
        waiting = [*slots, *[t for t in watch if t not in slots]]
        if new_tasks and len(new_tasks) == len(waiting):
            # Nothing older is in flight: this yield is exactly what the SDK waits
            # for, so the extension stays in step without a kick timer.
            yield context.task_any(new_tasks)
            new_tasks = []
        elif new_tasks:
            kick = context.create_timer(context.current_utc_datetime)
            yield context.task_any([*new_tasks, kick])
            new_tasks = []
        if on_progress is not None:
            on_progress(len(slots))
        if not slots and (stopped() or not paused() or not watch):
            break  # stopped with nothing in flight
        # Paused with nothing in flight: only the controls can move it on.
        yield context.task_any(waiting)
        if stop is not None and stop.is_completed:
            stop = None
        if controls is not None:
            controls.observe()
        for task in [t for t in slots if t.is_completed]:
            slot = slots.pop(task)
            if slot.kind == _BACKOFF:
                if stopped():
                    # No new attempt once stopped: the last failure is the item's outcome.
                    on_done(slot.index, slot.failed, slot.attempts)
                    continue
                if paused() or len(slots) >= bound():
                    held.append(slot)  # restarted when resumed / when a slot is free
                    continue
                again = start_task(items[slot.index])
                slots[again] = _Slot(slot.index, slot.attempts + 1, _ACTIVITY)
                new_tasks.append(again)
                continue
            delay = policy.delay_after(slot.attempts) if task.state is TaskState.FAILED else None
            if delay is not None and not stopped():
                timer = context.create_timer(context.current_utc_datetime + delay)
                slots[timer] = _Slot(slot.index, slot.attempts, _BACKOFF, failed=task)
                new_tasks.append(timer)
                if on_retry is not None:
                    on_retry(slot.index, task, slot.attempts)
                continue
            if requeue is not None and task.state is not TaskState.FAILED and requeue(slot.index, task):
                # Handed back unfinished (a lane parked by a smaller bound): it starts again,
                # before new items, when there is room; if stopped first, this task is its outcome.
                held.append(_Slot(slot.index, 0, _ACTIVITY, failed=task))
                continue
            on_done(slot.index, task, slot.attempts)
    for slot in held:  # stopped while a retry was held
        on_done(slot.index, slot.failed, slot.attempts)
    return list(range(next_index, len(items)))
