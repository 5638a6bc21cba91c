"""The engine: DTFx's dispatchers in miniature, driving the SDK through :mod:`.replay`, behind one façade.

:class:`Engine` is what the server, the CLI and :mod:`.testing` use: lifecycle (``start``/``stop``,
resuming persisted work at-least-once), the management API (start, status, events, terminate,
suspend/resume, purge) and waits. The work is done by three dispatchers it is made of:

* :mod:`.orchestration_dispatch`: episodes, serially per instance, at most
  ``max_concurrent_orchestrations`` at once (host.json ``maxConcurrentOrchestratorFunctions``);
* :mod:`.activity_dispatch`: work items, at most ``max_concurrent_activities`` at once
  (``maxConcurrentActivityFunctions``), on threads, the event loop or worker processes;
* :mod:`.timer_dispatch`: durable timers in ``FireAt`` order, with optional time-skipping.

Statuses are :class:`~.runtime_status.RuntimeStatus`; status payloads are built by
:mod:`.status_json`; payload sizes are measured against Azure Storage's limits
by :mod:`.payload_sizes` (:meth:`Engine.payload_stats`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from . import history as h
from .activity_dispatch import ActivityDispatcher
from .clock import Clock, SkippableClock, SystemClock
from .errors import InstanceExistsError, InstanceGoneError, InstanceNotFoundError, UnknownFunctionError
from .functions import FunctionIndex
from .history import EventType
from .invoke import set_fast_replay
from .orchestration_dispatch import OrchestrationDispatcher
from .payload_sizes import PayloadSizes
from .replay import unknown_function_message
from .runtime_status import ACTIVE_STATUSES, TERMINAL_STATUSES, RuntimeStatus
from .status_json import status_json, summarised_history
from .store_records import InstanceRow, NewMessage, Store, TimerRow, WorkItem
from .timer_dispatch import TimerDispatcher, _wait_event

log = logging.getLogger("durable_devhost")


@dataclass
class EngineOptions:
    max_concurrent_activities: int = 10
    max_concurrent_orchestrations: int = 10
    worker_processes: int = 0  # 0: threads; N: a ProcessPoolExecutor of N workers
    hub_name: str = "TestHubName"
    long_timer_interval: str = "3.00:00:00"
    max_short_timer: str = "6.00:00:00"
    fast_replay: bool = False  # cache the SDK's timestamp parsing (not what the worker does)
    function_timeout: str | None = None  # host.json functionTimeout, enforced for activities


class Engine(OrchestrationDispatcher, ActivityDispatcher, TimerDispatcher):
    """The dev host's engine; see the module docstring."""

    # The extension's showHistory summary, kept reachable here for callers of the old static method.
    summarised_history = staticmethod(summarised_history)

    def __init__(
        self, index: FunctionIndex, store: Store, clock: Clock | None = None, options: EngineOptions | None = None
    ) -> None:
        self.index = index
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self.options = options or EngineOptions()
        self._started = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loops: list[asyncio.Task[Any]] = []
        self._active: set[str] = set()  # instances with a driver task
        self._again: set[str] = set()  # got messages while their episode ran
        self._running_activities = 0
        self._counted: set[int] = set()  # work item ids counted in _outstanding
        self._outstanding: dict[str, int] = {}  # activity work items per instance, not yet completed
        self._last_episode: dict[str, float] = {}  # seconds the instance's last episode took
        self._timer_heap: list[tuple[datetime, int, TimerRow]] = []
        self._changed = asyncio.Event()
        self._payload_sizes = PayloadSizes()

    # ---- payload size accounting (:mod:`.payload_sizes`) ----------------------------------------

    def _record_payload(self, kind: str, function: str, instance_id: str, text: str | None) -> None:
        self._payload_sizes.record(kind, function, instance_id, text)

    def payload_stats(self) -> dict[str, dict[str, Any]]:
        """The largest payload seen of each kind: see :meth:`.payload_sizes.PayloadSizes.stats`."""
        return self._payload_sizes.stats()

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Resume persisted work (at-least-once) and start the dispatch loops."""
        if self._started:
            return
        self._started = True
        self._loop = asyncio.get_running_loop()
        opts = self.options
        set_fast_replay(opts.fast_replay)
        self._orch_sem = asyncio.Semaphore(max(1, opts.max_concurrent_orchestrations))
        self._orch_pool = ThreadPoolExecutor(
            max(1, opts.max_concurrent_orchestrations), thread_name_prefix="devhost-orchestrator"
        )
        self._thread_pool = ThreadPoolExecutor(
            max(1, opts.max_concurrent_activities), thread_name_prefix="devhost-activity"
        )
        self._process_pool: Executor | None = None
        if opts.worker_processes > 0:
            if not self.index.app_path:
                raise ValueError("worker_processes needs an index loaded from a file (FunctionIndex.load)")
            self._process_pool = self._new_process_pool()
        for fn in self.index.functions.values():
            for b in fn.unsupported_bindings:
                log.warning(
                    "function %s: %s binding '%s' (%s) cannot be honoured by the dev host; invocations of %s will fail",
                    fn.name,
                    str(b.get("direction", "?")).lower(),
                    b.get("name"),
                    b.get("type"),
                    fn.name,
                )
        self._work_queue: asyncio.Queue[WorkItem] = asyncio.Queue()
        self._timer_wake = asyncio.Event()
        for item in self.store.pending_work():
            self._enqueue_work(item)
        for row in self.store.timers():
            self._arm(row)
        for _ in range(max(1, opts.max_concurrent_activities)):
            self._loops.append(asyncio.create_task(self._activity_worker()))
        self._loops.append(asyncio.create_task(self._timer_loop()))
        for instance_id in self.store.instances_with_inbox():
            self._mark_ready(instance_id)

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        pending = [*self._loops, *self._tasks]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self._loops.clear()
        self._tasks.clear()
        self._active.clear()
        self._again.clear()
        self._orch_pool.shutdown(wait=False, cancel_futures=True)
        self._thread_pool.shutdown(wait=False, cancel_futures=True)
        if self._process_pool is not None:
            pool = self._process_pool
            await asyncio.to_thread(pool.shutdown, True, cancel_futures=True)

    # ---- management API ------------------------------------------------------------------------

    async def start_orchestration(
        self, name: str, input_json: str | None = None, instance_id: str | None = None
    ) -> str:
        fn = self.index.orchestrator(name)
        if fn is None:
            raise UnknownFunctionError(unknown_function_message(name, "orchestrator", self.index.names("orchestrator")))
        instance_id = instance_id or uuid.uuid4().hex
        existing = self.store.get_instance(instance_id)
        if existing is not None and existing.status in ACTIVE_STATUSES:
            raise InstanceExistsError(f"An Orchestration instance with the ID '{instance_id}' already exists.")
        now = self.clock.now()
        row = InstanceRow(
            instance_id=instance_id,
            name=fn.name,
            execution_id=uuid.uuid4().hex,
            status=RuntimeStatus.PENDING,
            input=input_json,
            created=now,
            updated=now,
        )
        start = h.execution_started(
            now, name=fn.name, instance_id=instance_id, execution_id=row.execution_id, input_json=input_json
        )
        self.store.create_instance(row, start)
        self._record_payload("orchestration_input", fn.name, instance_id, input_json)
        self._mark_ready(instance_id)
        return instance_id

    async def get_status(
        self,
        instance_id: str,
        *,
        show_history: bool = False,
        show_history_output: bool = False,
        show_input: bool = True,
    ) -> dict[str, Any] | None:
        row = self.store.get_instance(instance_id)
        if row is None:
            return None
        status = self._status_json(row, show_input)
        if show_history and row.status != RuntimeStatus.PENDING:  # the extension reads no history while Pending
            status["historyEvents"] = summarised_history(
                self.store.history(instance_id), show_history_output, show_input
            )
        return status

    async def list_instances(
        self,
        *,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        runtime_status: list[str] | None = None,
        instance_id_prefix: str | None = None,
        show_input: bool = False,
    ) -> list[dict[str, Any]]:
        rows = self.store.list_instances(
            created_from=created_from,
            created_to=created_to,
            runtime_status=runtime_status,
            instance_id_prefix=instance_id_prefix,
        )
        return [self._status_json(r, show_input) for r in rows]

    def _require_live(self, instance_id: str) -> InstanceRow:
        row = self.store.get_instance(instance_id)
        if row is None:
            raise InstanceNotFoundError(f"No instance with ID '{instance_id}' found.")
        if row.completed:
            raise InstanceGoneError(f"Instance '{instance_id}' is gone (status {row.status}).")
        return row

    def _send(self, instance_id: str, event: dict[str, Any]) -> None:
        self.store.add_message(NewMessage(instance_id, None, event))
        self._mark_ready(instance_id)

    async def raise_event(self, instance_id: str, event_name: str, input_json: str | None) -> None:
        """EventRaised{Name, Input}: ``Input`` is the JSON text given, untouched (the extension stores the
        client's JSON as it arrives; the SDK's double encoding is described in docs/devhost.md)."""
        self._require_live(instance_id)
        self._send(instance_id, h.event_raised(self.clock.now(), event_name, input_json))

    async def terminate(self, instance_id: str, reason: str | None) -> None:
        self._require_live(instance_id)
        self._send(instance_id, h.execution_terminated(self.clock.now(), reason))

    async def suspend(self, instance_id: str, reason: str | None) -> None:
        self._require_live(instance_id)
        self._send(instance_id, h.execution_suspended(self.clock.now(), reason))

    async def resume(self, instance_id: str, reason: str | None) -> None:
        self._require_live(instance_id)
        self._send(instance_id, h.execution_resumed(self.clock.now(), reason))

    async def purge(self, instance_id: str) -> int:
        """Delete an instance and its history, whatever its status.

        As the Azure Storage provider does (durabletask src/DurableTask.AzureStorage/Tracking/
        AzureTableTrackingStore.cs ``PurgeInstanceHistoryAsync(string instanceId)`` ->
        ``DeleteAllDataForOrchestrationInstance``, no status check): a Running instance is deleted too,
        its pending messages, activities and timers are dropped.
        """
        if self.store.get_instance(instance_id) is None:
            return 0
        deleted = self.store.purge([instance_id])
        self._after_purge(deleted)
        return deleted

    async def purge_by(
        self,
        *,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        runtime_status: list[str] | None = None,
    ) -> int:
        """Azure Storage's ``PurgeInstanceHistoryAsync(from, to, statuses)``: the given statuses are reduced
        to Completed/Terminated/Canceled/Failed, and an empty (or absent) list means *no status filter*,
        so Running instances in the time range are deleted too (the OData condition has no status clause).
        ``created_to`` None: the HTTP API defaults it to now (``DateTime.UtcNow``), on the host clock."""
        statuses = [s for s in (runtime_status or []) if s in TERMINAL_STATUSES]
        rows = self.store.list_instances(
            created_from=created_from,
            created_to=created_to if created_to is not None else self.clock.now(),
            runtime_status=statuses or None,
        )
        deleted = self.store.purge(r.instance_id for r in rows)
        self._after_purge(deleted)
        return deleted

    def _after_purge(self, deleted: int) -> None:
        if deleted:
            compact = getattr(self.store, "compact_after_purge", None)
            if compact is not None:
                compact(deleted)
            self._notify()

    async def wait_for_completion(self, instance_id: str, timeout: float) -> dict[str, Any]:
        """Status once the instance is Completed/Failed/Terminated; ``TimeoutError`` otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            changed = self._changed
            row = self.store.get_instance(instance_id)
            if row is not None and row.completed:
                return self._status_json(row, True)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"instance {instance_id} did not finish within {timeout}s "
                    f"(status {row.status if row else None}; {self._stuck_report(instance_id)})"
                )
            await _wait_event(changed, min(remaining, 0.5))

    def _stuck_report(self, instance_id: str) -> str:
        """Where an unfinished instance stands, for the timeout message (a hang is then diagnosable
        from a CI log alone): its custom status, its last history events, what is queued for it."""
        row = self.store.get_instance(instance_id)
        tail = [e.get("EventType") for e in self.store.history(instance_id)[-6:]]
        names = [getattr(EventType(t), "name", t) if isinstance(t, int) else t for t in tail]
        timers = [t for t in self.store.timers() if t.instance_id == instance_id]
        armed = [r for _, _, r in self._timer_heap if r.instance_id == instance_id]
        return (
            f"custom status {row.custom_status if row else None}; last events {names}; "
            f"inbox {len(self.store.inbox(instance_id))}; activities outstanding "
            f"{self._outstanding.get(instance_id, 0)}; timers stored {[t.fire_at for t in timers]}, "
            f"armed {[r.fire_at for r in armed]}; clock {h.format_ts(self.clock.now())}; "
            f"episode running {instance_id in self._active}"
        )

    async def wait_idle(self, timeout: float = 5.0) -> None:
        """Return once no episode or activity is queued or running (timers may still be pending)."""
        deadline = time.monotonic() + timeout
        while not self._idle():
            if time.monotonic() > deadline:
                raise TimeoutError("engine did not become idle")
            await asyncio.sleep(0.005)

    def history(self, instance_id: str, *, all_executions: bool = False) -> list[dict[str, Any]]:
        return self.store.history(instance_id, all_executions=all_executions)

    async def advance_time(self, delta: timedelta) -> None:
        if not isinstance(self.clock, SkippableClock):
            raise TypeError("advance_time needs a SkippableClock")
        self.clock.advance(delta)
        self._kick()
        await asyncio.sleep(0)

    def _status_json(self, row: InstanceRow, show_input: bool) -> dict[str, Any]:
        return status_json(row, show_input)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()
        self._kick()

    def _idle(self) -> bool:
        return not self._active and self._work_queue.empty() and self._running_activities == 0
