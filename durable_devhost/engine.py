"""The engine: DTFx's dispatchers in miniature, driving the SDK through :mod:`replay`.

* Orchestrations run in *episodes*, serially per instance.  An episode takes every pending inbox
  message of the instance (the extension batches messages too), prepends ``OrchestratorStarted``
  (now), invokes the orchestrator once with the whole history (§2.2), replays its actions through
  the shim emulation and commits the result in one store transaction.
* At most ``max_concurrent_orchestrations`` episodes and ``max_concurrent_activities`` activities
  run at once (host.json ``maxConcurrent*Functions``).
* Timers fire in ``FireAt`` order; with a :class:`~.clock.SkippableClock` in auto-skip mode the
  clock jumps to the next timer as soon as nothing else can make progress.
* Sub-orchestration results are routed to the parent's inbox the way DTFx's
  ``TaskOrchestrationDispatcher`` does (Completed -> ``SubOrchestrationInstanceCompleted``,
  anything else -> ``SubOrchestrationInstanceFailed``).
"""

from __future__ import annotations

import asyncio
import heapq
import json
import logging
import multiprocessing
import os
import time
import uuid
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from . import history as h
from .clock import Clock, SkippableClock, SystemClock
from .errors import InstanceExistsError, InstanceGoneError, InstanceNotFoundError, UnknownFunctionError
from .functions import FunctionIndex
from .history import EventType
from .invoke import (
    ActivityResult,
    invoke_orchestrator,
    orchestrator_payload,
    run_activity_async,
    run_activity_sync,
    set_fast_replay,
    worker_init,
    worker_run_activity,
)
from .replay import ReplayResult, ShimReplayer, unknown_function_message
from .store import (
    TERMINAL_STATUSES,
    EpisodeCommit,
    InstanceRow,
    NewMessage,
    NewTimer,
    NewWork,
    Store,
    TimerRow,
    WorkItem,
)

log = logging.getLogger("durable_devhost")

_ACTIVE_STATUSES = ("Running", "Pending", "Suspended", "ContinuedAsNew")

# Azure Storage provider limits the dev host measures payloads against (it stores everything inline):
# durabletask src/DurableTask.AzureStorage/MessageManager.cs: MaxStorageQueuePayloadSizeInBytes = 45 * 1024,
#   compared with Encoding.UTF8.GetByteCount(message) -> larger messages are uploaded to a blob;
# durabletask src/DurableTask.AzureStorage/Tracking/AzureTableTrackingStore.cs: MaxTablePropertySizeInBytes =
#   60 * 1024, compared with Encoding.Unicode.GetByteCount(property) -> larger properties go to a blob;
# azure-functions-durable-extension .../DurableOrchestrationContext.cs SetCustomStatus: 16 KB UTF-16 (fails).
QUEUE_MESSAGE_LIMIT = 45 * 1024
TABLE_PROPERTY_LIMIT = 60 * 1024
CUSTOM_STATUS_LIMIT_KB = 16
# DTFx OrchestrationStatus, by value (durabletask src/DurableTask.Core/OrchestrationStatus.cs)
_ORCHESTRATION_STATUS = ("Running", "Completed", "ContinuedAsNew", "Failed", "Canceled", "Terminated", "Pending",
                         "Suspended")
PAYLOAD_KINDS = ("orchestration_input", "orchestration_output", "activity_input", "activity_output",
                 "custom_status")


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


@dataclass
class EngineOptions:
    max_concurrent_activities: int = 10
    max_concurrent_orchestrations: int = 10
    worker_processes: int = 0            # 0: threads; N: a ProcessPoolExecutor of N workers
    hub_name: str = "TestHubName"
    long_timer_interval: str = "3.00:00:00"
    max_short_timer: str = "6.00:00:00"
    fast_replay: bool = False            # cache the SDK's timestamp parsing (not what the worker does)
    function_timeout: str | None = None  # host.json functionTimeout, enforced for activities


class Engine:
    def __init__(self, index: FunctionIndex, store: Store, clock: Clock | None = None,
                 options: EngineOptions | None = None) -> None:
        self.index = index
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self.options = options or EngineOptions()
        self._started = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loops: list[asyncio.Task[Any]] = []
        self._active: set[str] = set()           # instances with a driver task
        self._again: set[str] = set()            # got messages while their episode ran
        self._running_activities = 0
        self._counted: set[int] = set()          # work item ids counted in _outstanding
        self._outstanding: dict[str, int] = {}   # activity work items per instance, not yet completed
        self._last_episode: dict[str, float] = {}  # seconds the instance's last episode took
        self._timer_heap: list[tuple[datetime, int, TimerRow]] = []
        self._changed = asyncio.Event()
        self._payloads: dict[str, dict[str, Any]] = {}   # largest payload of each kind
        self._payload_warned: set[tuple[str, str]] = set()

    # ---- payload size accounting ---------------------------------------------------------------

    def _record_payload(self, kind: str, function: str, instance_id: str, text: str | None) -> None:
        """Measure one payload the way Azure Storage would and warn the first time a kind crosses a limit."""
        if text is None:
            return
        utf8 = len(text.encode("utf-8", "surrogatepass"))
        utf16 = len(text.encode("utf-16-le", "surrogatepass"))
        exceeds = []
        if kind == "custom_status":
            if int(utf16 / 1024.0) > CUSTOM_STATUS_LIMIT_KB:
                exceeds.append("custom_status_16KB")
        else:
            if utf8 > QUEUE_MESSAGE_LIMIT:
                exceeds.append("queue_message_45KB")
            if utf16 > TABLE_PROPERTY_LIMIT:
                exceeds.append("table_property_60KB")
        best = self._payloads.get(kind)
        if best is None or utf16 > best["utf16_bytes"]:
            self._payloads[kind] = {"function": function, "instance_id": instance_id, "utf8_bytes": utf8,
                                    "utf16_bytes": utf16, "exceeds": exceeds}
        for limit in exceeds:
            if (kind, limit) in self._payload_warned:
                continue
            self._payload_warned.add((kind, limit))
            effect = {
                "queue_message_45KB": "over 45 KB (UTF-8): on Azure Storage this queue message is offloaded to a "
                                      "blob (compressed upload + download on every dequeue)",
                "table_property_60KB": "over 60 KB (UTF-16): on Azure Storage this table property is offloaded "
                                       "to a blob (an extra blob read on every history load / status query)",
                "custom_status_16KB": "over the 16 KB (UTF-16) custom status limit: the extension fails the "
                                      "orchestration",
            }[limit]
            log.warning("payload size: %s of '%s' (instance %s) is %d bytes UTF-8 / %d bytes UTF-16, %s",
                        kind, function, instance_id, utf8, utf16, effect)

    def payload_stats(self) -> dict[str, dict[str, Any]]:
        """The largest payload seen of each kind (``orchestration_input``, ``orchestration_output``,
        ``activity_input``, ``activity_output``, ``custom_status``): ``function``, ``instance_id``,
        ``utf8_bytes``, ``utf16_bytes`` and ``exceeds`` (which Azure Storage limits it crosses)."""
        return {k: dict(v, exceeds=list(v["exceeds"])) for k, v in self._payloads.items()}

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
        self._orch_pool = ThreadPoolExecutor(max(1, opts.max_concurrent_orchestrations),
                                             thread_name_prefix="devhost-orchestrator")
        self._thread_pool = ThreadPoolExecutor(max(1, opts.max_concurrent_activities),
                                               thread_name_prefix="devhost-activity")
        self._process_pool: Executor | None = None
        if opts.worker_processes > 0:
            if not self.index.app_path:
                raise ValueError("worker_processes needs an index loaded from a file (FunctionIndex.load)")
            self._process_pool = self._new_process_pool()
        for fn in self.index.functions.values():
            for b in fn.unsupported_bindings:
                log.warning("function %s: %s binding '%s' (%s) cannot be honoured by the dev host; invocations of "
                            "%s will fail", fn.name, str(b.get("direction", "?")).lower(), b.get("name"),
                            b.get("type"), fn.name)
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

    def _new_process_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.options.worker_processes, mp_context=multiprocessing.get_context("spawn"),
            initializer=worker_init, initargs=(self.index.app_path, os.getpid()))

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

    async def start_orchestration(self, name: str, input_json: str | None = None,
                                  instance_id: str | None = None) -> str:
        fn = self.index.orchestrator(name)
        if fn is None:
            raise UnknownFunctionError(unknown_function_message(name, "orchestrator",
                                                                self.index.names("orchestrator")))
        instance_id = instance_id or uuid.uuid4().hex
        existing = self.store.get_instance(instance_id)
        if existing is not None and existing.status in _ACTIVE_STATUSES:
            raise InstanceExistsError(f"An Orchestration instance with the ID '{instance_id}' already exists.")
        now = self.clock.now()
        row = InstanceRow(instance_id=instance_id, name=fn.name, execution_id=uuid.uuid4().hex,
                          status="Pending", input=input_json, created=now, updated=now)
        start = h.execution_started(now, name=fn.name, instance_id=instance_id,
                                    execution_id=row.execution_id, input_json=input_json)
        self.store.create_instance(row, start)
        self._record_payload("orchestration_input", fn.name, instance_id, input_json)
        self._mark_ready(instance_id)
        return instance_id

    async def get_status(self, instance_id: str, *, show_history: bool = False,
                         show_history_output: bool = False, show_input: bool = True) -> dict[str, Any] | None:
        row = self.store.get_instance(instance_id)
        if row is None:
            return None
        status = self._status_json(row, show_input)
        if show_history and row.status != "Pending":     # the extension reads no history while Pending
            status["historyEvents"] = self.summarised_history(self.store.history(instance_id), show_history_output,
                                                              show_input)
        return status

    async def list_instances(self, *, created_from: datetime | None = None, created_to: datetime | None = None,
                             runtime_status: list[str] | None = None, instance_id_prefix: str | None = None,
                             show_input: bool = False) -> list[dict[str, Any]]:
        rows = self.store.list_instances(created_from=created_from, created_to=created_to,
                                         runtime_status=runtime_status, instance_id_prefix=instance_id_prefix)
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
        """EventRaised{Name, Input}: ``Input`` is the JSON text given, untouched (§4.3)."""
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

    async def purge_by(self, *, created_from: datetime | None = None, created_to: datetime | None = None,
                       runtime_status: list[str] | None = None) -> int:
        """Azure Storage's ``PurgeInstanceHistoryAsync(from, to, statuses)``: the given statuses are reduced
        to Completed/Terminated/Canceled/Failed, and an empty (or absent) list means *no status filter*,
        so Running instances in the time range are deleted too (the OData condition has no status clause).
        ``created_to`` None: the HTTP API defaults it to now (``DateTime.UtcNow``), on the host clock."""
        statuses = [s for s in (runtime_status or []) if s in TERMINAL_STATUSES]
        rows = self.store.list_instances(created_from=created_from,
                                         created_to=created_to if created_to is not None else self.clock.now(),
                                         runtime_status=statuses or None)
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
                raise TimeoutError(f"instance {instance_id} did not finish within {timeout}s "
                                   f"(status {row.status if row else None}; {self._stuck_report(instance_id)})")
            await _wait_event(changed, min(remaining, 0.5))

    def _stuck_report(self, instance_id: str) -> str:
        """Where an unfinished instance stands, for the timeout message (a hang is then diagnosable
        from a CI log alone): its custom status, its last history events, what is queued for it."""
        row = self.store.get_instance(instance_id)
        tail = [e.get("EventType") for e in self.store.history(instance_id)[-6:]]
        names = [getattr(EventType(t), "name", t) if isinstance(t, int) else t for t in tail]
        timers = [t for t in self.store.timers() if t.instance_id == instance_id]
        armed = [r for _, _, r in self._timer_heap if r.instance_id == instance_id]
        return (f"custom status {row.custom_status if row else None}; last events {names}; "
                f"inbox {len(self.store.inbox(instance_id))}; activities outstanding "
                f"{self._outstanding.get(instance_id, 0)}; timers stored {[t.fire_at for t in timers]}, "
                f"armed {[r.fire_at for r in armed]}; clock {h.format_ts(self.clock.now())}; "
                f"episode running {instance_id in self._active}")

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

    # ---- status JSON -------------------------------------------------------------------------

    @staticmethod
    def _loads(text: str | None) -> Any:
        return json.loads(text) if text is not None else None

    def _status_json(self, row: InstanceRow, show_input: bool) -> dict[str, Any]:
        """The extension's ``StatusResponsePayload`` (§4.2)."""
        return {
            "name": row.name,
            "instanceId": row.instance_id,
            "runtimeStatus": row.status,
            "input": self._loads(row.input) if show_input else None,
            "customStatus": self._loads(row.custom_status),
            "output": self._loads(row.output),
            "createdTime": h.format_status_ts(row.created),
            "lastUpdatedTime": h.format_status_ts(row.updated),
        }

    @staticmethod
    def _scheduled_time(timestamp: str) -> str:
        """``historyItem["ScheduledTime"] = (DateTime)historyItem["Timestamp"]``, serialised again.

        The cast parses the (string) timestamp with ``Convert.ToDateTime``, which yields a *local* DateTime;
        Newtonsoft writes it with ``FFFFFFF`` (trailing zeros dropped) and the local offset, ``+00:00`` on
        Azure Functions (UTC)."""
        dt = h.parse_ts(timestamp)
        fraction = f"{dt.microsecond:06d}0".rstrip("0")
        return dt.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "+00:00"

    @classmethod
    def summarised_history(cls, events: list[dict[str, Any]], show_history_output: bool,
                           show_input: bool) -> list[dict[str, Any]]:
        """The ``historyEvents`` the extension returns for ``showHistory``.

        A copy of azure-functions-durable-extension src/WebJobs.Extensions.DurableTask/ContextImplementations/
        DurableClient.cs ``GetDurableOrchestrationStatusAsync``: ``EventType`` as its name; TaskScheduled /
        SubOrchestrationInstanceCreated rows are folded into their completion (``ScheduledTime``,
        ``FunctionName``, ``Input``) and removed, as are OrchestratorStarted/Completed; ``Result`` only with
        ``showHistoryOutput`` and then as JSON (``ParseToJToken``); ``EventId``/``IsPlayed`` dropped.
        """
        items = [dict(ev) for ev in events]
        mapper: dict[str, tuple[int, dict[str, Any]]] = {}
        drop: list[int] = []
        for i, item in enumerate(items):
            try:
                et = EventType(item["EventType"])
            except ValueError:
                continue
            name = et.name.title().replace("_", "")
            item["EventType"] = name
            if et in (EventType.TASK_SCHEDULED, EventType.SUB_ORCHESTRATION_INSTANCE_CREATED):
                mapper[f"{name}_{item.get('EventId')}"] = (i, item)
                item.pop("Version", None)
            elif et in (EventType.TASK_COMPLETED, EventType.TASK_FAILED, EventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED,
                        EventType.SUB_ORCHESTRATION_INSTANCE_FAILED):
                task = et in (EventType.TASK_COMPLETED, EventType.TASK_FAILED)
                prefix = "TaskScheduled" if task else "SubOrchestrationInstanceCreated"
                found = mapper.get(f"{prefix}_{item.get('TaskScheduledId')}")
                if found is not None:
                    index, scheduled = found
                    item["ScheduledTime"] = cls._scheduled_time(scheduled["Timestamp"])
                    item["FunctionName"] = scheduled.get("Name")
                    if show_input:
                        item["Input"] = scheduled.get("Input")
                    drop.append(index)
                item.pop("TaskScheduledId", None)
                completed = et in (EventType.TASK_COMPLETED, EventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED)
                if completed:
                    if show_history_output:
                        item["Result"] = cls._parse_token(item.get("Result"))
                    else:
                        item.pop("Result", None)
            elif et == EventType.EXECUTION_STARTED:
                function_name = item.pop("Name", None)
                item["FunctionName"] = function_name
                for key in ("OrchestrationInstance", "ParentInstance", "Version", "Tags"):
                    item.pop(key, None)
            elif et == EventType.EXECUTION_COMPLETED:
                status = item.get("OrchestrationStatus")
                if isinstance(status, int) and 0 <= status < len(_ORCHESTRATION_STATUS):
                    item["OrchestrationStatus"] = _ORCHESTRATION_STATUS[status]
                if show_history_output:
                    item["Result"] = cls._parse_token(item.get("Result"))
                else:
                    item.pop("Result", None)
            elif et == EventType.TIMER_FIRED:
                item.pop("TimerId", None)
            elif et in (EventType.ORCHESTRATOR_STARTED, EventType.ORCHESTRATOR_COMPLETED):
                drop.append(i)
            if not show_input:
                item.pop("Input", None)
            item.pop("EventId", None)
            item.pop("IsPlayed", None)
        dropped = set(drop)
        return [item for i, item in enumerate(items) if i not in dropped]

    @staticmethod
    def _parse_token(value: Any) -> Any:
        """``DurableClient.ParseToJToken``: JSON when it parses, the trimmed raw text otherwise."""
        if value is None:
            return None
        text = str(value).strip()
        if not text:
            return ""
        try:
            return json.loads(text)
        except ValueError:
            return text

    # ---- orchestration dispatch ------------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _mark_ready(self, instance_id: str) -> None:
        if not self._started:
            return
        if instance_id in self._active:
            self._again.add(instance_id)
            return
        self._active.add(instance_id)
        self._spawn(self._drive(instance_id))

    async def _drive(self, instance_id: str) -> None:
        """Run episodes for one instance until its inbox is drained (one at a time per instance)."""
        try:
            while True:
                await self._gather_batch(instance_id)
                self._again.discard(instance_id)
                async with self._orch_sem:
                    t0 = time.perf_counter()
                    await self._episode(instance_id)
                    self._last_episode[instance_id] = time.perf_counter() - t0
                if instance_id not in self._again:
                    break
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("episode for %s crashed", instance_id)
        finally:
            self._active.discard(instance_id)
            self._notify()

    async def _gather_batch(self, instance_id: str) -> None:
        """Let more activity results pile up before an expensive episode.

        Every episode re-runs the orchestrator over the whole history, so a big fan-out would
        spend its time replaying once per completion.  While the instance still has activities in
        flight we wait up to as long as its last episode took (capped at 100 ms), which keeps the
        replay overhead bounded; chains (nothing else in flight) are never delayed.  Batching is
        allowed: the extension also delivers several messages per episode (§2.2).
        """
        budget = min(self._last_episode.get(instance_id, 0.0), 0.1)
        deadline = time.perf_counter() + budget
        while self._outstanding.get(instance_id, 0) > 0 and time.perf_counter() < deadline:
            await asyncio.sleep(0.002)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()
        self._kick()

    async def _episode(self, instance_id: str) -> None:
        row = self.store.get_instance(instance_id)
        messages = self.store.inbox(instance_id)
        if not messages:
            return
        if row is None or row.completed:
            # DTFx drops messages addressed to finished (or unknown) instances.
            self.store.drop_messages(m.id for m in messages)
            return

        consumed: list[int] = []
        deliver: list[dict[str, Any]] = []
        start_event: dict[str, Any] | None = None
        terminate: dict[str, Any] | None = None
        suspended = row.status == "Suspended"
        held: list[Any] = []                  # queued while suspended; delivered after a resume
        for m in messages:
            et = m.event["EventType"]
            if m.execution_id is not None and m.execution_id != row.execution_id:
                consumed.append(m.id)          # stale: an older execution (continue-as-new)
                continue
            if et == EventType.EXECUTION_STARTED:
                start_event = m.event
            elif et == EventType.EXECUTION_TERMINATED:
                terminate = m.event
                consumed.append(m.id)
                break
            elif et == EventType.EXECUTION_SUSPENDED:
                if not suspended:
                    suspended = True
                    deliver.append(m.event)
            elif et == EventType.EXECUTION_RESUMED:
                if suspended:
                    # DTFx HandleExecutionResumedEvent replays the events buffered while suspended.
                    suspended = False
                    deliver.append(m.event)
                    deliver.extend(x.event for x in held)
                    consumed.extend(x.id for x in held)
                    held.clear()
            elif suspended:
                held.append(m)                 # stays queued until resumed
                continue
            else:
                deliver.append(m.event)
            consumed.append(m.id)

        if terminate is not None:
            self._terminate_now(row, terminate, consumed, messages)
            return
        old = self.store.history(instance_id)
        if start_event is None and not old:
            return                             # not started yet (should not happen)
        if start_event is None and not deliver:
            if consumed:
                self.store.drop_messages(consumed)
            return

        now = self.clock.now()
        new_events = [h.orchestrator_started(now)]
        if start_event is not None:
            new_events.append(start_event)
        new_events.extend(deliver)
        for ev in new_events:
            ev["IsPlayed"] = False
        full = old + new_events
        result, duration_ms = await self._run_orchestrator(row, full)
        commit = self._episode_commit(row, now, new_events, result, consumed, suspended)
        work, timers = self.store.commit_episode(commit)
        log.info("Executed 'Functions.%s' (%s, Id=%s, Duration=%dms)", row.name,
                 "Failed" if result.outcome == "failed" else "Succeeded", instance_id, duration_ms)
        log.debug("episode %s: %d new events, %d decisions, outcome=%s", instance_id, len(new_events),
                  len(result.decisions), result.outcome)
        self._after_commit(commit, work, timers)

    async def _run_orchestrator(self, row: InstanceRow, full: list[dict[str, Any]]) -> tuple[ReplayResult, int]:
        fn = self.index.orchestrator(row.name)
        started = next((e for e in full if e["EventType"] == EventType.EXECUTION_STARTED), {})
        t0 = time.perf_counter()
        if fn is None:
            message = unknown_function_message(row.name, "orchestrator", self.index.names("orchestrator"))
            return ReplayResult(outcome="failed", output=json.dumps(message), failure_details=message), 0
        payload = orchestrator_payload(
            history=full, input_json=started.get("Input"), instance_id=row.instance_id,
            parent_instance_id=row.parent_instance_id,
            long_timer_interval=self.options.long_timer_interval, max_short_timer=self.options.max_short_timer)
        replayer = ShimReplayer(
            orchestrator_name=fn.name, instance_id=row.instance_id, execution_id=row.execution_id,
            activity_exists=lambda n: self.index.activity(n) is not None,
            orchestrator_exists=lambda n: self.index.orchestrator(n) is not None,
            known_activities=lambda: self.index.names("activity"),
            known_orchestrators=lambda: self.index.names("orchestrator"),
            parent_instance_id=row.parent_instance_id)

        def run() -> ReplayResult:
            state = invoke_orchestrator(fn, payload)
            return replayer.replay(full, state)

        result = await self._loop.run_in_executor(self._orch_pool, run)
        return result, int((time.perf_counter() - t0) * 1000)

    def _episode_commit(self, row: InstanceRow, now: datetime, new_events: list[dict[str, Any]],
                        result: ReplayResult, consumed: list[int], suspended: bool) -> EpisodeCommit:
        inst = InstanceRow(**{**row.__dict__})
        inst.updated = now
        inst.custom_status = result.custom_status
        self._record_payload("custom_status", row.name, row.instance_id, result.custom_status)
        commit = EpisodeCommit(instance=inst, consumed_inbox=consumed)
        events = list(new_events)
        if result.outcome != "failed":
            for d in result.decisions:
                events.append(d.to_event(now))
                if d.kind == "task":
                    self._record_payload("activity_input", d.name or "", row.instance_id, d.input)
                    commit.new_work.append(NewWork(d.task_id, d.name or "", d.input))
                elif d.kind == "timer" and not d.cancelled:
                    assert d.fire_at is not None
                    commit.new_timers.append(NewTimer(d.task_id, h.format_ts(d.fire_at)))
                elif d.kind == "sub":
                    self._start_child(commit, inst, d.task_id, d.name or "", d.instance_id or "", d.input, now)
        events.append(h.orchestrator_completed(now))

        if result.outcome == "running":
            inst.status = "Suspended" if suspended else "Running"
        elif result.outcome == "continued_as_new":
            # A new execution: fresh history whose first episode starts from ExecutionStarted(input),
            # plus the EventRaised messages that arrived after ContinueAsNew (DTFx carry-over).
            inst.status = "Running"
            inst.execution_id = uuid.uuid4().hex
            inst.output = None
            inst.input = result.continue_input
            self._record_payload("orchestration_input", row.name, row.instance_id, result.continue_input)
            commit.reset_history = True
            commit.cancel_timers = True
            commit.new_work.clear()
            commit.new_timers.clear()
            # The ending execution's last episode is kept with its archived history (tests read it).
            commit.archive_tail = [{**ev, "IsPlayed": True} for ev in events]
            events = []
            commit.new_messages.append(NewMessage(inst.instance_id, inst.execution_id, h.execution_started(
                now, name=inst.name, instance_id=inst.instance_id, execution_id=inst.execution_id,
                input_json=result.continue_input, parent=self._parent_of(inst))))
            for ev in result.carryover_events:
                commit.new_messages.append(NewMessage(inst.instance_id, None, ev))
        else:
            status = "Completed" if result.outcome == "completed" else "Failed"
            inst.status = status
            inst.output = result.output
            if status == "Completed":
                self._record_payload("orchestration_output", row.name, row.instance_id, result.output)
            commit.cancel_timers = True
            # DTFx writes ExecutionCompleted with the episode's decisions, before OrchestratorCompleted.
            events.insert(len(events) - 1, h.execution_completed(now, status, result.output, result.failure_details))
            self._notify_parent(commit, inst, now, result.failure_details)

        for ev in events:
            ev["IsPlayed"] = True     # DTFx persists IsPlayed=true once processed
        commit.append_history = events
        return commit

    @staticmethod
    def _parent_of(inst: InstanceRow) -> dict[str, Any] | None:
        if inst.parent_instance_id is None:
            return None
        return h.parent_instance(name="", instance_id=inst.parent_instance_id,
                                 execution_id=inst.parent_execution_id or "",
                                 task_schedule_id=inst.parent_task_id or 0)

    def _start_child(self, commit: EpisodeCommit, parent: InstanceRow, task_id: int, name: str,
                     child_id: str, action_input: str | None, now: datetime) -> None:
        fn = self.index.orchestrator(name)
        child_name = fn.name if fn is not None else name
        # The shim passes the action's input (a JSON string) as an object; DTFx serialises it again.
        input_json = json.dumps(action_input)
        self._record_payload("orchestration_input", child_name, child_id, input_json)
        child = InstanceRow(instance_id=child_id, name=child_name, execution_id=uuid.uuid4().hex,
                            status="Pending", input=input_json, created=now, updated=now,
                            parent_instance_id=parent.instance_id, parent_execution_id=parent.execution_id,
                            parent_task_id=task_id)
        commit.new_instances.append(child)
        commit.new_messages.append(NewMessage(child_id, child.execution_id, h.execution_started(
            now, name=child_name, instance_id=child_id, execution_id=child.execution_id, input_json=input_json,
            parent=h.parent_instance(name=parent.name, instance_id=parent.instance_id,
                                     execution_id=parent.execution_id, task_schedule_id=task_id))))

    def _notify_parent(self, commit: EpisodeCommit, inst: InstanceRow, now: datetime,
                       details: str | None) -> None:
        """``TaskOrchestrationDispatcher``: Completed -> SubOrchestrationInstanceCompleted, else Failed."""
        if inst.parent_instance_id is None or inst.parent_task_id is None:
            return
        if inst.status == "Completed":
            ev = h.sub_orchestration_completed(now, inst.parent_task_id, inst.output)
        else:
            reason = self._loads(inst.output)
            ev = h.sub_orchestration_failed(now, inst.parent_task_id, str(reason), details)
        commit.new_messages.append(NewMessage(inst.parent_instance_id, inst.parent_execution_id, ev))

    def _terminate_now(self, row: InstanceRow, terminate: dict[str, Any], consumed: list[int],
                       messages: list[Any]) -> None:
        now = self.clock.now()
        inst = InstanceRow(**{**row.__dict__})
        inst.status, inst.updated = "Terminated", now
        reason = terminate.get("Input")
        inst.output = json.dumps(reason)
        # Everything else queued for this instance is dropped with it.
        commit = EpisodeCommit(instance=inst, consumed_inbox=[m.id for m in messages], cancel_timers=True)
        events = [h.orchestrator_started(now), terminate, h.execution_completed(now, "Terminated", inst.output),
                  h.orchestrator_completed(now)]
        for ev in events:
            ev["IsPlayed"] = True
        commit.append_history = events
        self._notify_parent(commit, inst, now, None)
        work, timers = self.store.commit_episode(commit)
        log.info("Terminated instance %s (reason=%r)", row.instance_id, reason)
        self._after_commit(commit, work, timers)

    def _after_commit(self, commit: EpisodeCommit, work: list[WorkItem], timers: list[TimerRow]) -> None:
        for item in work:
            self._enqueue_work(item)
        for t in timers:
            self._arm(t)
        for m in commit.new_messages:
            self._mark_ready(m.instance_id)
        self._notify()

    # ---- activities ------------------------------------------------------------------------------

    def _enqueue_work(self, item: WorkItem) -> None:
        self._counted.add(item.id)
        self._outstanding[item.instance_id] = self._outstanding.get(item.instance_id, 0) + 1
        self._work_queue.put_nowait(item)

    def _work_done(self, item: WorkItem) -> None:
        """Idempotent: the worker's ``finally`` calls it again."""
        if item.id not in self._counted:
            return
        self._counted.discard(item.id)
        left = self._outstanding.get(item.instance_id, 0) - 1
        if left > 0:
            self._outstanding[item.instance_id] = left
        else:
            self._outstanding.pop(item.instance_id, None)

    async def _activity_worker(self) -> None:
        while True:
            item = await self._work_queue.get()
            self._running_activities += 1
            retry = False
            try:
                await self._run_work(item)
            except asyncio.CancelledError:
                raise
            except BrokenProcessPool:
                # A worker process died (os._exit, segfault, OOM): like the host restarting the
                # language worker, start new workers and run the work item again (at-least-once).
                log.warning("worker process died running %s; restarting workers and retrying", item.name)
                self._replace_broken_pool()
                await asyncio.sleep(0.2)
                retry = True
            except Exception:
                log.exception("activity work item %s crashed", item.id)
            finally:
                self._running_activities -= 1
                self._work_done(item)
                self._kick()
            if retry:
                self._enqueue_work(item)

    def _timeout_seconds(self) -> float | None:
        from .settings import parse_timespan

        return parse_timespan(self.options.function_timeout)

    async def _invoke_activity(self, fn: Any, item: WorkItem, invocation_id: str) -> ActivityResult:
        if fn.is_async:
            return await run_activity_async(fn, item.input, invocation_id, self.index.app_path)
        if self._process_pool is not None:
            return await self._loop.run_in_executor(self._process_pool, worker_run_activity, fn.name, item.input,
                                                    invocation_id)
        return await self._loop.run_in_executor(self._thread_pool, run_activity_sync, fn, item.input, invocation_id,
                                                self.index.app_path)

    async def _run_with_timeout(self, fn: Any, item: WorkItem, invocation_id: str) -> ActivityResult:
        """host.json ``functionTimeout``: the WebJobs ``FunctionExecutor`` (azure-webjobs-sdk
        src/Microsoft.Azure.WebJobs.Host/Executors/FunctionExecutor.cs) logs "Timeout value of {t} exceeded by
        function 'Functions.X' (Id: '...'). Initiating cancellation." and fails the invocation with
        ``FunctionTimeoutException("Timeout value of {t} was exceeded by function: Functions.X")``; the host
        then restarts the language worker. The dev host fails the invocation with the same text but cannot
        stop a sync activity's thread (or process): it runs on in the background, its result discarded."""
        timeout = self._timeout_seconds()
        task = asyncio.ensure_future(self._invoke_activity(fn, item, invocation_id))
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if task in done:
            return task.result()
        task.cancel()
        text = self.options.function_timeout
        log.error("Timeout value of %s exceeded by function 'Functions.%s' (Id: '%s'). Initiating cancellation.",
                  text, fn.name, invocation_id)
        message = f"Timeout value of {text} was exceeded by function: Functions.{fn.name}"
        return ActivityResult(ok=False, reason=f"Activity function '{fn.name}' failed: {message}",
                              details=f"Microsoft.Azure.WebJobs.Host.FunctionTimeoutException: {message}")

    def _replace_broken_pool(self) -> None:
        pool = self._process_pool
        if pool is not None and getattr(pool, "_broken", False):
            pool.shutdown(wait=False, cancel_futures=True)
            self._process_pool = self._new_process_pool()

    async def _run_work(self, item: WorkItem) -> None:
        row = self.store.get_instance(item.instance_id)
        if row is None or row.completed or row.execution_id != item.execution_id:
            self.store.discard_work(item.id)
            return
        fn = self.index.activity(item.name)
        invocation_id = str(uuid.uuid4())
        t0 = time.perf_counter()
        result: ActivityResult
        try:
            if fn is None:
                result = ActivityResult(ok=False, reason=unknown_function_message(
                    item.name, "activity", self.index.names("activity")))
            elif fn.unsupported_bindings:
                names = ", ".join(f"'{b.get('name')}' ({b.get('type')}, {str(b.get('direction', '?')).lower()})"
                                  for b in fn.unsupported_bindings)
                message = (f"Activity function '{fn.name}' failed: the local dev host cannot honour its binding(s) "
                           f"{names}; only the activityTrigger is supplied. On Azure the Functions host would "
                           f"provide them.")
                result = ActivityResult(ok=False, reason=message, details=message)
            elif self._timeout_seconds() is not None:
                result = await self._run_with_timeout(fn, item, invocation_id)
            elif fn.is_async:
                # Like the Python worker: ``async def`` functions run on the event loop, not in a
                # thread or a worker process, so I/O-bound activities never queue behind CPU work.
                result = await run_activity_async(fn, item.input, invocation_id, self.index.app_path)
            elif self._process_pool is not None:
                result = await self._loop.run_in_executor(self._process_pool, worker_run_activity, fn.name,
                                                          item.input, invocation_id)
            else:
                result = await self._loop.run_in_executor(self._thread_pool, run_activity_sync, fn, item.input,
                                                          invocation_id, self.index.app_path)
        except (asyncio.CancelledError, BrokenProcessPool):
            raise
        except Exception as exc:  # the worker could not even run it: fail the task, never hang the instance
            log.exception("activity %s could not be run", item.name)
            result = ActivityResult(ok=False, reason=f"Activity function '{item.name}' failed: {exc}",
                                    details=f"{type(exc).__name__}: {exc}")
        duration_ms = int((time.perf_counter() - t0) * 1000)
        now = self.clock.now()
        if result.ok:
            self._record_payload("activity_output", item.name, item.instance_id, result.result)
            event = h.task_completed(now, item.task_id, result.result)
        else:
            event = h.task_failed(now, item.task_id, result.reason or "", result.details)
        log.info("Executed 'Functions.%s' (%s, Id=%s, Duration=%dms)", item.name,
                 "Succeeded" if result.ok else "Failed", item.instance_id, duration_ms)
        if self.store.complete_work(item.id, NewMessage(item.instance_id, item.execution_id, event)):
            self._work_done(item)     # before waking the instance, so it does not wait for itself
            self._mark_ready(item.instance_id)

    # ---- timers ----------------------------------------------------------------------------------

    def _arm(self, row: TimerRow) -> None:
        heapq.heappush(self._timer_heap, (row.fire_at_dt, row.id, row))
        self._kick()

    def _kick(self) -> None:
        wake = getattr(self, "_timer_wake", None)
        if wake is not None:
            wake.set()

    def _idle(self) -> bool:
        return not self._active and self._work_queue.empty() and self._running_activities == 0

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
