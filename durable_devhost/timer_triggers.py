"""Timer-triggered functions, scheduled the way the Functions host schedules them.

The host reads the binding's ``schedule`` (an NCRONTAB expression, six fields
``{second} {minute} {hour} {day} {month} {day-of-week}`` or the five-field
form without seconds; ``%Name%`` is replaced by the app setting ``Name``), and
invokes the function at each occurrence with a ``func.TimerRequest``
(``past_due`` when the host was late) and any Durable client binding. This
module does the same on the host's clock, so time skipping moves timer
functions too, plus ``runOnStartup``.

Semantics copied from NCrontab (the library the host uses): names for months
and days (``Jan``, ``Mon``), ``*``, ``a-b``, ``a,b``, ``*/n``, ``a-b/n``;
day-of-week 0-6 with Sunday 0 (7 accepted as Sunday); a day must match *both*
the day-of-month and the day-of-week field. The TimeSpan form (``00:05:00``)
only exists on App Service plans and is refused here with a warning, as it is
on Consumption and Flex Consumption.

Not emulated: the singleton lock and the schedule monitor's persisted
``ScheduleStatus`` (``useMonitor``): a restarted host does not run missed
occurrences.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import os
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from azure.functions.timer import TimerRequest

from .functions import FunctionIndex, IndexedFunction

log = logging.getLogger(__name__)

_MONTHS = {
    m: i
    for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1)
}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
_SETTING = re.compile(r"%([^%]+)%")


class ScheduleError(ValueError):
    """A schedule the Functions host would refuse at start-up."""


def _field(text: str, low: int, high: int, names: dict[str, int] | None = None) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) < 1:
                raise ScheduleError(f"bad step in {text!r}")
            step = int(step_text)

        def number(token: str) -> int:
            token = token.strip().lower()
            if names and token in names:
                return names[token]
            if not token.isdigit():
                raise ScheduleError(f"bad value {token!r} in {text!r}")
            return int(token)

        if part == "*":
            start, stop = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            start, stop = number(a), number(b)
        else:
            start = number(part)
            stop = high if "/" in text else start
        if not (low <= start <= high and low <= stop <= high) or start > stop:
            raise ScheduleError(f"{text!r} is outside {low}-{high}")
        values.update(range(start, stop + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class CronSchedule:
    """A parsed NCRONTAB expression; :meth:`next_after` gives the next occurrence."""

    expression: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]

    @classmethod
    def parse(cls, expression: str) -> CronSchedule:
        fields = expression.split()
        if len(fields) == 5:
            fields = ["0", *fields]
        if len(fields) != 6:
            if re.fullmatch(r"\d+(\.\d+)?:\d{2}:\d{2}", expression.strip()):
                raise ScheduleError(
                    f"{expression!r} is a TimeSpan schedule, which only App Service plans support; "
                    "use an NCRONTAB expression (six fields)"
                )
            raise ScheduleError(f"{expression!r} is not an NCRONTAB expression (five or six fields)")
        weekdays = _field(fields[5], 0, 7, _DAYS)
        return cls(
            expression=expression,
            seconds=_field(fields[0], 0, 59),
            minutes=_field(fields[1], 0, 59),
            hours=_field(fields[2], 0, 23),
            days=_field(fields[3], 1, 31),
            months=_field(fields[4], 1, 12, _MONTHS),
            weekdays=frozenset(0 if d == 7 else d for d in weekdays),
        )

    def _day_matches(self, day: datetime) -> bool:
        weekday = (day.weekday() + 1) % 7  # Python: Monday 0; cron: Sunday 0
        return day.month in self.months and day.day in self.days and weekday in self.weekdays

    def next_after(self, after: datetime) -> datetime:
        """The first occurrence strictly after ``after`` (same time zone as ``after``)."""
        start = after.replace(microsecond=0) + timedelta(seconds=1)
        day = start.replace(hour=0, minute=0, second=0)
        for _ in range(366 * 5):
            if self._day_matches(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        for second in sorted(self.seconds):
                            when = day.replace(hour=hour, minute=minute, second=second)
                            if when >= start:
                                return when
            day += timedelta(days=1)
        raise ScheduleError(f"{self.expression!r} never occurs")


def resolve_settings(text: str, env: dict[str, str] | None = None) -> str:
    """Replace ``%Name%`` by the app setting, as the host does for binding expressions."""
    env = dict(os.environ) if env is None else env

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise ScheduleError(f"'%{name}%' does not resolve to a value (no app setting {name})")
        return env[name]

    return _SETTING.sub(value, text)


@dataclass
class TimerFunction:
    function: IndexedFunction
    schedule: CronSchedule
    run_on_startup: bool

    @property
    def name(self) -> str:
        return self.function.name


def timer_functions(index: FunctionIndex) -> list[TimerFunction]:
    """Every timer-triggered function with a schedule the host accepts; the
    others are logged (the real host refuses to start them)."""
    found = []
    for f in index.functions.values():
        trigger = next((b for b in f.bindings if b.get("type") == "timerTrigger"), None)
        if trigger is None:
            continue
        try:
            schedule = CronSchedule.parse(resolve_settings(str(trigger.get("schedule", ""))))
        except ScheduleError as error:
            log.error("function %s: invalid timer schedule: %s (the Functions host would not start it)", f.name, error)
            continue
        found.append(TimerFunction(f, schedule, bool(trigger.get("runOnStartup"))))
    return found


async def invoke_timer_function(
    timer: TimerFunction, client_binding: Callable[[dict], str], *, past_due: bool = False
) -> None:
    """Call the user function the way the worker does for a timer trigger."""
    kwargs: dict[str, Any] = {}
    for b in timer.function.bindings:
        name, btype = str(b.get("name")), b.get("type")  # every binding the worker indexes has a name
        if name == "$return":
            continue
        if btype == "timerTrigger":
            kwargs[name] = TimerRequest(past_due=past_due)
        elif btype == "durableClient":
            kwargs[name] = client_binding(b)
        else:
            kwargs[name] = None
    fn = timer.function.user_function
    if timer.function.is_async or inspect.iscoroutinefunction(fn):
        await fn(**kwargs)
        return
    loop = asyncio.get_running_loop()
    ctx = contextvars.copy_context()
    result = await loop.run_in_executor(None, functools.partial(ctx.run, fn, **kwargs))
    if inspect.isawaitable(result):
        await result


class TimerScheduler:
    """Runs the app's timer functions on ``now()`` (the engine's clock)."""

    def __init__(
        self,
        timers: list[TimerFunction],
        now: Callable[[], datetime],
        client_binding: Callable[[dict], str],
        *,
        poll_seconds: float = 0.5,
    ) -> None:
        self.timers = {t.name.lower(): t for t in timers}
        self._now = now
        self._client_binding = client_binding
        self._poll = poll_seconds
        self._task: asyncio.Task[None] | None = None
        self.invocations: dict[str, int] = {t.name: 0 for t in timers}

    def start(self) -> None:
        if self._task is None and self.timers:
            self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def run_now(self, name: str, *, past_due: bool = False) -> None:
        """Invoke one timer function now (the admin API's manual run, and tests)."""
        timer = self.timers.get(name.lower())
        if timer is None:
            raise KeyError(name)
        await self._invoke(timer, past_due=past_due)

    async def _invoke(self, timer: TimerFunction, *, past_due: bool) -> None:
        invocation = str(uuid.uuid4())
        started = time.perf_counter()
        self.invocations[timer.name] += 1
        try:
            await invoke_timer_function(timer, self._client_binding, past_due=past_due)
        except Exception:
            ms = int((time.perf_counter() - started) * 1000)
            log.exception("Executed 'Functions.%s' (Failed, Id=%s, Duration=%dms)", timer.name, invocation, ms)
            return
        ms = int((time.perf_counter() - started) * 1000)
        log.info("Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%dms)", timer.name, invocation, ms)

    async def _loop(self) -> None:
        due: dict[str, datetime] = {}
        now = self._now()
        for key, timer in self.timers.items():
            due[key] = timer.schedule.next_after(now)
            if timer.run_on_startup:
                await self._invoke(timer, past_due=False)
        while True:
            await asyncio.sleep(self._poll)
            now = self._now()
            for key, timer in self.timers.items():
                if now >= due[key]:
                    # Late by more than a poll (a skipped clock, a busy host): past due, as the host says.
                    late = now - due[key] > timedelta(seconds=max(1.0, 2 * self._poll))
                    due[key] = timer.schedule.next_after(now)
                    await self._invoke(timer, past_due=late)
