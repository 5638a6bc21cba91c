"""A per-process memory budget for decoding images (``IMAGE_MEMORY_BUDGET_MB``).

Why: one Functions worker process runs up to ``maxConcurrentActivityFunctions``
(host.json: 4) ``ProcessImage`` calls at once, in threads. Each decode is
bounded (``IMAGE_MAX_DECODE_MB``, :func:`imagebatch.imaging.render_image`), but
four bounded decodes at once can still be four times that. So an image is
*admitted* only when its estimated decode memory
(:func:`imagebatch.imaging.decode_estimate`, from the header alone) fits what
is left of the budget; otherwise its thread waits until earlier images finish.

* **Weighted, not counted:** a 12 MP JPEG is estimated at tens of MB, a 99 MP
  palette GIF at ~200 MB, so many small images run side by side while two
  large ones take turns.
* **First come, first served:** admission is in arrival order. A large image
  at the head of the queue is not overtaken by a stream of small ones (which
  would starve it); the small ones behind it wait for it instead.
* **Never stuck:** an image estimated above the whole budget is admitted alone
  (when nothing else is decoding) and takes the whole budget while it runs.

Sizing (docs/design.md §7): the budget is what the instance can give the
decodes of one worker process -- instance memory minus the Functions host,
the Python worker's own footprint and the source bytes in flight -- divided by
the number of worker processes (``FUNCTIONS_WORKER_PROCESS_COUNT``).
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["DEFAULT_BUDGET_MB", "MemoryBudget", "process_budget"]

# A 4 GB / 2 vCPU instance: ~0.5 GB for the host, ~0.3 GB for the worker with
# Pillow and libvips loaded, up to 4 source files in flight, ~1 GB headroom for
# the OS and page cache: 1 GiB leaves room for four decodes at the 256 MB
# per-image bound at once (host.json maxConcurrentActivityFunctions = 4).
DEFAULT_BUDGET_MB = 1024


class MemoryBudget:
    """A semaphore weighted by bytes, admitting in arrival order."""

    def __init__(self, capacity_bytes: int) -> None:
        if capacity_bytes <= 0:
            raise ValueError(f"a memory budget must be positive, got {capacity_bytes}")
        self.capacity = capacity_bytes
        self._used = 0
        self._running = 0
        self._queue: deque[int] = deque()
        self._tickets = itertools.count()
        self._changed = threading.Condition()

    @property
    def in_use(self) -> int:
        with self._changed:
            return self._used

    @property
    def waiting(self) -> int:
        with self._changed:
            return len(self._queue)

    @contextmanager
    def admit(self, cost: int) -> Iterator[int]:
        """Block until ``cost`` bytes fit (or, above the whole budget, until nothing
        else runs), hold them while the block runs, then give them back.
        Yields the bytes actually held."""
        held = min(max(0, int(cost)), self.capacity)
        with self._changed:
            ticket = next(self._tickets)
            self._queue.append(ticket)
            while self._queue[0] != ticket or (self._running and self._used + held > self.capacity):
                self._changed.wait()
            self._queue.popleft()
            self._used += held
            self._running += 1
            self._changed.notify_all()  # the next in line may fit too
        try:
            yield held
        finally:
            with self._changed:
                self._used -= held
                self._running -= 1
                self._changed.notify_all()


_lock = threading.Lock()
_budgets: dict[int, MemoryBudget] = {}


def process_budget(capacity_bytes: int) -> MemoryBudget:
    """The budget shared by every activity thread of this process (one per capacity,
    so a test or a settings change with another size gets its own)."""
    with _lock:
        budget = _budgets.get(capacity_bytes)
        if budget is None:
            budget = _budgets[capacity_bytes] = MemoryBudget(capacity_bytes)
        return budget
