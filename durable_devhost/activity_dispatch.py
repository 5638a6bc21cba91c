"""Activity dispatch: a queue of work items, run by ``max_concurrent_activities`` workers.

``async def`` activities run on the event loop (as the Python worker runs them), sync ones on a
thread pool or, with ``worker_processes``, a spawn-started process pool that is replaced when a
worker dies (the host restarting the language worker; the item runs again, at-least-once). A result
replaces its work item and wakes the instance in one store transaction. host.json
``functionTimeout`` is enforced with the Functions host's own messages.

A mixin of :class:`~.engine.Engine`, like :mod:`.orchestration_dispatch`.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import time
import uuid
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

from . import history as h
from .functions import FunctionIndex
from .invoke import ActivityResult, run_activity_async, run_activity_sync, worker_init, worker_run_activity
from .replay import unknown_function_message
from .store_records import NewMessage, Store, WorkItem

if TYPE_CHECKING:
    from .clock import Clock
    from .engine import EngineOptions

log = logging.getLogger("durable_devhost")


class ActivityDispatcher:
    """Runs activity work items; see the module docstring."""

    index: FunctionIndex
    store: Store
    clock: Clock
    options: EngineOptions
    _loop: asyncio.AbstractEventLoop
    _work_queue: asyncio.Queue[WorkItem]
    _running_activities: int
    _counted: set[int]
    _outstanding: dict[str, int]
    _thread_pool: ThreadPoolExecutor
    _process_pool: Executor | None

    if TYPE_CHECKING:  # provided by the engine and its other dispatchers

        def _mark_ready(self, instance_id: str) -> None: ...
        def _kick(self) -> None: ...
        def _record_payload(self, kind: str, function: str, instance_id: str, text: str | None) -> None: ...

    def _new_process_pool(self) -> ProcessPoolExecutor:
        app_path = self.index.app_path
        if not app_path:  # the engine checks this before it builds the first pool
            raise ValueError("worker_processes needs an index loaded from a file (FunctionIndex.load)")
        return ProcessPoolExecutor(
            self.options.worker_processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=worker_init,
            initargs=(app_path, os.getpid()),
        )

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
            return await self._loop.run_in_executor(
                self._process_pool, worker_run_activity, fn.name, item.input, invocation_id
            )
        return await self._loop.run_in_executor(
            self._thread_pool, run_activity_sync, fn, item.input, invocation_id, self.index.app_path
        )

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
        log.error(
            "Timeout value of %s exceeded by function 'Functions.%s' (Id: '%s'). Initiating cancellation.",
            text,
            fn.name,
            invocation_id,
        )
        message = f"Timeout value of {text} was exceeded by function: Functions.{fn.name}"
        return ActivityResult(
            ok=False,
            reason=f"Activity function '{fn.name}' failed: {message}",
            details=f"Microsoft.Azure.WebJobs.Host.FunctionTimeoutException: {message}",
        )

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
                result = ActivityResult(
                    ok=False, reason=unknown_function_message(item.name, "activity", self.index.names("activity"))
                )
            elif fn.unsupported_bindings:
                names = ", ".join(
                    f"'{b.get('name')}' ({b.get('type')}, {str(b.get('direction', '?')).lower()})"
                    for b in fn.unsupported_bindings
                )
                message = (
                    f"Activity function '{fn.name}' failed: the local dev host cannot honour its binding(s) "
                    f"{names}; only the activityTrigger is supplied. On Azure the Functions host would "
                    f"provide them."
                )
                result = ActivityResult(ok=False, reason=message, details=message)
            elif self._timeout_seconds() is not None:
                result = await self._run_with_timeout(fn, item, invocation_id)
            elif fn.is_async:
                # Like the Python worker: ``async def`` functions run on the event loop, not in a
                # thread or a worker process, so I/O-bound activities never queue behind CPU work.
                result = await run_activity_async(fn, item.input, invocation_id, self.index.app_path)
            elif self._process_pool is not None:
                result = await self._loop.run_in_executor(
                    self._process_pool, worker_run_activity, fn.name, item.input, invocation_id
                )
            else:
                result = await self._loop.run_in_executor(
                    self._thread_pool, run_activity_sync, fn, item.input, invocation_id, self.index.app_path
                )
        except (asyncio.CancelledError, BrokenProcessPool):
            raise
        except Exception as exc:  # the worker could not even run it: fail the task, never hang the instance
            log.exception("activity %s could not be run", item.name)
            result = ActivityResult(
                ok=False,
                reason=f"Activity function '{item.name}' failed: {exc}",
                details=f"{type(exc).__name__}: {exc}",
            )
        duration_ms = int((time.perf_counter() - t0) * 1000)
        now = self.clock.now()
        if result.ok:
            self._record_payload("activity_output", item.name, item.instance_id, result.result)
            event = h.task_completed(now, item.task_id, result.result)
        else:
            event = h.task_failed(now, item.task_id, result.reason or "", result.details)
        log.info(
            "Executed 'Functions.%s' (%s, Id=%s, Duration=%dms)",
            item.name,
            "Succeeded" if result.ok else "Failed",
            item.instance_id,
            duration_ms,
        )
        if self.store.complete_work(item.id, NewMessage(item.instance_id, item.execution_id, event)):
            self._work_done(item)  # before waking the instance, so it does not wait for itself
            self._mark_ready(item.instance_id)
