"""Proof before the batch: wait for a person's decision, racing a durable timeout.

The parent renders the sample's shards, writes the proof sheet, then calls
:func:`await_decision`. Its waits follow the rules of ``bounded_fan_out`` (see its
module docstring and docs/design.md, section 6c), because the extension's shim
awaits each top-level action before it looks at the next:

* **Every new wait is yielded once beside a zero-delay timer.** The decision wait
  and each timeout link are *new* tasks while older ones are pending (the cancel
  wait, the live controls' event wait and deadline timer). Yielded alone, the shim
  would block on them -- until the timeout, days -- while the SDK moved on after a
  cancel. ``task_any(new + [kick])`` lets the shim move past at once, as the SDK
  does; afterwards the wait over everything pending emits no action.
* **No ``*_with_retry`` inside such a wait.** The timeout's ``RecordReviewDecision``
  is yielded on its own after the wait, where the SDK and the shim wait for the same
  single task, so its retry timers' ids agree on replay.
* **A chain of plain timers, not the SDK's ``LongTimerTask``.** Links of at most
  ``MAX_TIMER_CHUNK`` (3 days), each armed like a new wait. The SDK's long timer adds
  its next sub-timer as a top-level action when one fires; the shim would then await
  that sub-timer (days) before starting the lanes an approval asks for, and cancelling
  a ``LongTimerTask`` does not cancel its pending sub-timer.
* **One event name, waited once, one decision.** ``review-decision`` carries the
  decision recorded first in the run's ``review.json`` (``storage/review.py``), so a
  repeated raise carries the same value: the SDK's deferred-event quirk (a later
  raise of a name replaces an earlier one that found no wait) cannot change the
  outcome, and an event raised before this wait exists is picked up when it does.
* **Orders are defined.** After each wait: a cancel wins, then a decision that has
  arrived, then the live controls' deadline, then the timeout -- so a decision and the
  timeout in the same episode give the decision (it was recorded first). The timeout
  records its own decision through ``RecordReviewDecision``, which returns a person's
  decision instead when one was recorded first; the run applies what it returns.
* The timeout link still pending is cancelled (``TimerTask.cancel``) once decided.

Deterministic: no clock but ``current_utc_datetime``, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from imagebatch.jsonvalue import json_object
from imagebatch.messages import ReviewDecision
from orchestrators.controls import MAX_TIMER_CHUNK

REVIEW_EVENT = "review-decision"
APPROVED, REJECTED = "approved", "rejected"
BY_REVIEWER, BY_TIMEOUT = "reviewer", "timeout"


@dataclass(frozen=True)
class ReviewOutcome:
    """How the wait ended: ``decided`` (see ``decision``), ``cancelled``, ``stopped``
    (the run's deadline passed) or ``timed_out`` (record the timeout's decision next)."""

    kind: str
    decision: ReviewDecision | None = None


def decision_record(decision: str, by: str, at: datetime, reason: str | None = None) -> ReviewDecision:
    """The one shape a decision has, in ``review.json``, the event and the manifest."""
    return ReviewDecision(decision=decision, by=by, at=at.isoformat(), reason=reason)


def normalise_decision(value: Any, at: datetime) -> ReviewDecision:
    """A decision from an event or the store, read leniently on purpose (a person's
    request or a stored blob, not a message this code wrote): anything that is not an
    approval rejects (an unreadable decision must not start 50,000 renditions)."""
    data = json_object(value)
    decision = APPROVED if data.get("decision") in (APPROVED, "approve") else REJECTED
    reason = data.get("reason")
    return ReviewDecision(
        decision=decision,
        by=str(data.get("by") or BY_REVIEWER),
        at=str(data.get("at") or at.isoformat()),
        reason=reason if isinstance(reason, str) else None,
    )


def _link(context: Any, timeout_at: datetime) -> Any:
    return context.create_timer(min(timeout_at, context.current_utc_datetime + MAX_TIMER_CHUNK))


def await_decision(
    context: Any, timeout_at: datetime, cancel: Any, controls: Any, on_observe: Callable[[], None] | None = None
) -> Generator[Any, Any, ReviewOutcome]:
    """Wait for ``review-decision``, the cancel event, the controls' deadline or
    ``timeout_at``, whichever comes first (see the module docstring for the order).
    ``controls`` is the run's ``RunControls``: its waits stay armed and are observed
    (a pause or a new bound during the review applies to the lanes that follow);
    ``on_observe`` is called after each wait (the parent republishes its status)."""
    decision = context.wait_for_external_event(REVIEW_EVENT)
    link = _link(context, timeout_at)
    # cancel was yielded before (by the sample's fan-out); a scheduled task adds no action.
    new: list[Any] = [decision, link, cancel]
    while True:
        # The controls' newly armed waits are taken only here, right before they are
        # yielded: on return they stay with the controls for the next fan-out to yield.
        fresh = [*new, *controls.take_new()]
        new = []
        if fresh:
            yield context.task_any([*fresh, context.create_timer(context.current_utc_datetime)])
        else:
            waiting = [t for t in (decision, link, cancel, *controls.pending()) if not t.is_completed]
            yield context.task_any(waiting)  # every one scheduled before: no action
        controls.observe()
        if on_observe is not None:
            on_observe()
        if cancel.is_completed:
            _cancel(link)
            return ReviewOutcome("cancelled")
        if decision.is_completed:
            _cancel(link)
            return ReviewOutcome("decided", normalise_decision(decision.result, context.current_utc_datetime))
        if controls.stopped:
            _cancel(link)
            return ReviewOutcome("stopped")
        if link.is_completed:
            if context.current_utc_datetime >= timeout_at:
                return ReviewOutcome("timed_out")
            link = _link(context, timeout_at)
            new.append(link)


def _cancel(timer: Any) -> None:
    if not timer.is_completed:
        timer.cancel()


def timeout_at_from(now: datetime, minutes: int) -> datetime:
    return now + timedelta(minutes=minutes)
