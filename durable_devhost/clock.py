"""Clocks for the engine: real time, or time that tests (or an idle host) can skip forward.

The skippable clock copies Temporal's time-skipping test server: when nothing can make
progress except a timer in the future, time jumps to that timer, so an orchestration that
sleeps for a day completes at once without changing the app.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """Wall-clock UTC time."""

    auto_skip = False

    def now(self) -> datetime:
        return datetime.now(UTC)


class SkippableClock:
    """Real time plus an offset that only grows (time never goes backwards for the host)."""

    def __init__(self, *, auto_skip: bool = False) -> None:
        self.auto_skip = auto_skip
        self._offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def advance(self, delta: timedelta) -> None:
        if delta < timedelta(0):
            raise ValueError("time can only move forward")
        self._offset += delta

    def skip_to(self, when: datetime) -> None:
        """Jump to ``when`` if it is in the future (used by auto-skip)."""
        gap = when - self.now()
        if gap > timedelta(0):
            self._offset += gap
