"""Timer dispatch: durable timers fire in ``FireAt`` order from an in-memory heap of stored timers.

Firing a timer stores its ``TimerFired`` message and removes the timer in one transaction, so a
restart re-arms exactly the timers not yet fired. With a :class:`~.clock.SkippableClock` in
auto-skip mode the clock jumps to the next timer as soon as nothing else can make progress.

A mixin of :class:`~.engine.Engine`, like :mod:`.orchestration_dispatch`.
"""

from __future__ import annotations

import asyncio
import heapq
from datetime import datetime
from typing import TYPE_CHECKING

from . import history as h
from .clock import Clock, SkippableClock
from .store_records import NewMessage, Store, TimerRow


async def _wait_event(event: asyncio.Event, timeout: float | None) -> None:
    """Wait for ``event`` at most ``timeout`` seconds.

    Not ``asyncio.wait_for``: on Python 3.11 it can swallow a cancellation that races with the
    event being set, which would make :meth:`Engine.stop` hang.
    """
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({waiter}, timeout=timeout)
    finally:
        waiter.cancel()


class TimerDispatcher:
    """Fires durable timers; see the module docstring."""

    store: Store
    clock: Clock
    _timer_heap: list[tuple[datetime, int, TimerRow]]
    _timer_wake: asyncio.Event

    if TYPE_CHECKING:  # provided by the engine and its other dispatchers

        def _mark_ready(self, instance_id: str) -> None: ...
        def _idle(self) -> bool: ...

    def _arm(self, row: TimerRow) -> None:
        heapq.heappush(self._timer_heap, (row.fire_at_dt, row.id, row))
        self._kick()

    def _kick(self) -> None:
        wake = getattr(self, "_timer_wake", None)
        if wake is not None:
            wake.set()

    async def _timer_loop(self) -> None:
        while True:
            self._timer_wake.clear()
            now = self.clock.now()
            while self._timer_heap and self._timer_heap[0][0] <= now:
                _, _, row = heapq.heappop(self._timer_heap)
                ev = h.timer_fired(now, row.timer_id, row.fire_at)
                if self.store.fire_timer(row.id, NewMessage(row.instance_id, row.execution_id, ev)):
                    self._mark_ready(row.instance_id)
            if self._timer_heap and getattr(self.clock, "auto_skip", False) and self._idle():
                # Time-skipping: nothing can progress except a future timer, so jump to it.
                assert isinstance(self.clock, SkippableClock)
                self.clock.skip_to(self._timer_heap[0][0])
                continue
            timeout = None
            if self._timer_heap:
                timeout = max(0.0, (self._timer_heap[0][0] - now).total_seconds())
            await _wait_event(self._timer_wake, timeout)
