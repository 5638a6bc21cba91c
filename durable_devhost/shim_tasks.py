"""The .NET tasks the extension's shim awaits, as tiny synchronous futures.

:class:`ShimTask` stands in for a ``Task``; :func:`when_all` and :func:`when_any` are
``Task.WhenAll`` (waits for every child, even after a failure) and ``Task.WhenAny`` (the first
child to finish, success, failure or cancellation); :func:`with_retry` is DTFx's
``RetryInterceptor.Invoke`` as a callback chain. :mod:`.replay` builds on them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from .state_checks import MAX_RETRY_INTERVAL_MS


class ShimTask:
    """A tiny synchronous stand-in for a .NET Task."""

    __slots__ = ("_callbacks", "done", "ok", "value")

    def __init__(self) -> None:
        self.done = False
        self.ok = True
        self.value: Any = None
        self._callbacks: list[Callable[[ShimTask], None]] = []

    def settle(self, ok: bool, value: Any = None) -> None:
        if self.done:
            return
        self.done, self.ok, self.value = True, ok, value
        callbacks, self._callbacks = self._callbacks, []
        for cb in callbacks:
            cb(self)

    def then(self, cb: Callable[[ShimTask], None]) -> None:
        if self.done:
            cb(self)
        else:
            self._callbacks.append(cb)


def completed() -> ShimTask:
    f = ShimTask()
    f.settle(True)
    return f


def when_all(children: list[ShimTask]) -> ShimTask:
    result = ShimTask()
    remaining = [len(children)]
    if not children:
        result.settle(True, [])
        return result

    def one_done(_f: ShimTask) -> None:
        remaining[0] -= 1
        if remaining[0] == 0:
            result.settle(all(c.ok for c in children), None)

    for child in children:
        child.then(one_done)
    return result


def when_any(children: list[ShimTask]) -> ShimTask:
    result = ShimTask()
    if not children:  # Task.WhenAny([]) throws: a faulted task, swallowed by the shim
        result.settle(False, "empty WhenAny")
    for child in children:
        child.then(lambda f: result.settle(True, f))
    return result


def with_retry(
    options: dict[str, Any],
    attempt_call: Callable[[], ShimTask],
    now: Callable[[], datetime],
    create_timer: Callable[[datetime], ShimTask],
) -> ShimTask:
    """DTFx ``RetryInterceptor.Invoke`` as a callback chain: a timer at ``now + first*backoff^n``
    after each failure and an immediate "Dummy timer for back-compat" after the last attempt."""
    result = ShimTask()
    max_attempts = int(options.get("maxNumberOfAttempts", 1))
    first_ms = float(options["firstRetryIntervalInMilliseconds"])
    backoff = float(options.get("backoffCoefficient", 1.0))
    max_interval_ms = float(options.get("maxRetryIntervalInMilliseconds", MAX_RETRY_INTERVAL_MS))
    timeout_ms = options.get("retryTimeoutInMilliseconds")
    first_attempt = now()
    if max_attempts <= 0:
        result.settle(True, None)
        return result

    def start(retry_count: int) -> None:
        attempt_call().then(lambda f: finished(f, retry_count))

    def finished(f: ShimTask, retry_count: int) -> None:
        if f.ok:
            result.settle(True, f.value)
            return
        error = f.value
        if retry_count + 1 == max_attempts:
            dummy = create_timer(now())  # "Dummy timer for back-compat"
            dummy.then(lambda _t: result.settle(False, error))
            return
        delay_ms = 0.0
        expired = timeout_ms is not None and now() >= first_attempt + timedelta(milliseconds=float(timeout_ms))
        if not expired:
            delay_ms = min(first_ms * backoff**retry_count, max_interval_ms)
        if delay_ms <= 0:
            result.settle(False, error)
            return
        timer = create_timer(now() + timedelta(milliseconds=delay_ms))
        timer.then(lambda _t: start(retry_count + 1))

    start(0)
    return result
