"""Live controls of a running batch: pause / resume, a new concurrency bound,
a deadline -- as waits that ``bounded_fan_out`` handles with its lanes.

**Events carry the whole state, named by version.** ``POST .../pause``,
``.../resume`` and ``PATCH .../{id}`` update the run's control document
(``controls.json``, written with an ETag condition, so concurrent requests
get consecutive versions) and raise ``control-{version}`` on the parent with
the *whole* new state ``{"version", "paused", "max_concurrency"}``. The parent
waits for ``control-{applied + 1}`` only. Why not one ``control`` event name:

* The Python SDK (1.7.0) keeps one deferred completion per event name for an
  event that arrives with no open wait of its name; a later one of the same name
  replaces it (``TaskOrchestrationExecutor.set_task_value``) and the entry is not
  removed when a wait consumes it (``DurableOrchestrationContext._add_to_open_tasks``).
  Measured on the dev host: two ``go`` events raised before two
  ``wait_for_external_event("go")`` give ``[{"n": 2}, {"n": 2}]`` -- the first
  event is lost and the second delivered twice (the extension buffers both, in
  order). Pause-then-resume during listing would resume twice.
* Names that are never waited twice make that harmless, and events arriving
  out of order or before the wait are simply picked up when their version is
  next (deferred or buffered by the extension).

A lost raise (the endpoint's raise failed after the write) is repaired by the
next request, which also raises ``control-{applied + 1}`` with the newest state
(``applied`` is published in the custom status).

**Deadline.** A chain of plain timers of at most :data:`MAX_TIMER_CHUNK`, each
armed like a new wait (beside a zero-delay timer), instead of the SDK's
``LongTimerTask``: that one appends its next sub-timer as a *top-level* action
when the previous one fires, and the extension's shim awaits top-level actions
one by one, so every action yielded after it (new lanes) would wait for the
sub-timer -- days. Chunks of 3 days stay under every provider's short-timer
limit (Azure Storage: 6 days), so ``create_timer`` never makes a long timer here.

Deterministic: no clock but ``current_utc_datetime``, no I/O.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import Any

from imagebatch.jsonvalue import json_object

CONTROL_EVENT_PREFIX = "control-"
MAX_TIMER_CHUNK = timedelta(days=3)


def control_event_name(version: int) -> str:
    return f"{CONTROL_EVENT_PREFIX}{version}"


class RunControls:
    """The parent's live controls (``bounded_fan_out``'s ``FanOutControls``)."""

    def __init__(self, context: Any, max_concurrency: int, deadline: datetime | None = None) -> None:
        self._context = context
        self.version = 0
        self._paused = False
        self.max_concurrency = max_concurrency
        self.deadline = deadline
        self.deadline_passed = False
        self.changes: list[dict[str, Any]] = []  # applied states, in order (tests and status)
        self._new: list[Any] = []
        self._event: Any | None = None
        self._timer: Any | None = None
        self._arm_event()
        self._arm_deadline()

    # -- what bounded_fan_out reads ------------------------------------------------------

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def stopped(self) -> bool:
        return self.deadline_passed

    def limit(self, default: int) -> int:
        return self.max_concurrency

    def take_new(self) -> list[Any]:
        new, self._new = self._new, []
        return new

    def pending(self) -> list[Any]:
        return [t for t in (self._event, self._timer) if t is not None and not t.is_completed]

    def observe(self) -> None:
        event = self._event
        if event is not None and event.is_completed:
            self._apply(json_object(event.result))
            self._arm_event()
        timer = self._timer
        if timer is not None and timer.is_completed:
            self._timer = None
            self._arm_deadline()

    # -- state ---------------------------------------------------------------------------

    def to_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "version": self.version,
            "paused": self._paused,
            "max_concurrency": self.max_concurrency,
        }
        if self.deadline is not None:
            status["deadline"] = self.deadline.isoformat()
        return status

    def _apply(self, state: dict[str, Any]) -> None:
        expected = self.version + 1
        try:
            version = int(state.get("version", expected))
        except (TypeError, ValueError):
            version = expected
        # The event named control-{expected} always carries a version >= expected; a newer
        # one (a repaired lost raise) skips the versions in between.
        self.version = max(expected, version)
        if "paused" in state:
            self._paused = bool(state["paused"])
        if "max_concurrency" in state:
            with contextlib.suppress(TypeError, ValueError):
                self.max_concurrency = min(1000, max(1, int(state["max_concurrency"])))
        self.changes.append(self.to_status())

    def _arm_event(self) -> None:
        if self.deadline_passed:
            self._event = None
            return
        self._event = self._context.wait_for_external_event(control_event_name(self.version + 1))
        self._new.append(self._event)

    def _arm_deadline(self) -> None:
        if self.deadline is None or self.deadline_passed:
            return
        now = self._context.current_utc_datetime
        if now >= self.deadline:
            self.deadline_passed = True
            self._event = None  # nothing to wait for any more
            return
        self._timer = self._context.create_timer(min(self.deadline, now + MAX_TIMER_CHUNK))
        self._new.append(self._timer)
