"""Orchestration dispatch: episodes, serially per instance, each committed in one store transaction.

An episode takes every pending inbox message of the instance (the extension batches messages
too), prepends ``OrchestratorStarted`` (now), invokes the orchestrator once with the whole history,
replays its actions through the shim emulation (:mod:`.replay`) and commits the result (built by
:mod:`.episode_commit`). This is
DTFx's ``TaskOrchestrationDispatcher`` in miniature (durabletask
src/DurableTask.Core/TaskOrchestrationDispatcher.cs), including how sub-orchestration results are
routed to the parent (Completed -> ``SubOrchestrationInstanceCompleted``, anything else ->
``SubOrchestrationInstanceFailed``) and how a continue-as-new carries events over.

A mixin of :class:`~.engine.Engine`: the state it reads (store, index, clock, the episode and
work-item bookkeeping) is the engine's, declared below for the type checker.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from . import history as h
from .episode_commit import EpisodeCommits
from .functions import FunctionIndex
from .history import EventType
from .invoke import invoke_orchestrator, orchestrator_payload
from .replay import ReplayResult, ShimReplayer, unknown_function_message
from .runtime_status import RuntimeStatus
from .store_records import EpisodeCommit, InstanceRow, Store, TimerRow, WorkItem

if TYPE_CHECKING:
    from .clock import Clock
    from .engine import EngineOptions

log = logging.getLogger("durable_devhost")


class OrchestrationDispatcher(EpisodeCommits):
    """Runs orchestration episodes; see the module docstring."""

    index: FunctionIndex
    store: Store
    clock: Clock
    options: EngineOptions
    _started: bool
    _loop: asyncio.AbstractEventLoop
    _tasks: set[asyncio.Task[Any]]
    _active: set[str]
    _again: set[str]
    _outstanding: dict[str, int]
    _last_episode: dict[str, float]
    _orch_sem: asyncio.Semaphore
    _orch_pool: ThreadPoolExecutor

    if TYPE_CHECKING:  # provided by the engine and its other dispatchers

        def _notify(self) -> None: ...
        def _record_payload(self, kind: str, function: str, instance_id: str, text: str | None) -> None: ...
        def _enqueue_work(self, item: WorkItem) -> None: ...
        def _arm(self, row: TimerRow) -> None: ...

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
        allowed: the Azure Storage provider also hands an episode every message pending for the
        instance (durabletask src/DurableTask.AzureStorage/OrchestrationSessionManager.cs).
        """
        budget = min(self._last_episode.get(instance_id, 0.0), 0.1)
        deadline = time.perf_counter() + budget
        while self._outstanding.get(instance_id, 0) > 0 and time.perf_counter() < deadline:
            await asyncio.sleep(0.002)

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
        suspended = row.status == RuntimeStatus.SUSPENDED
        held: list[Any] = []  # queued while suspended; delivered after a resume
        for m in messages:
            et = m.event["EventType"]
            if m.execution_id is not None and m.execution_id != row.execution_id:
                consumed.append(m.id)  # stale: an older execution (continue-as-new)
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
                held.append(m)  # stays queued until resumed
                continue
            else:
                deliver.append(m.event)
            consumed.append(m.id)

        if terminate is not None:
            self._terminate_now(row, terminate, consumed, messages)
            return
        old = self.store.history(instance_id)
        if start_event is None and not old:
            return  # not started yet (should not happen)
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
        log.info(
            "Executed 'Functions.%s' (%s, Id=%s, Duration=%dms)",
            row.name,
            "Failed" if result.outcome == "failed" else "Succeeded",
            instance_id,
            duration_ms,
        )
        log.debug(
            "episode %s: %d new events, %d decisions, outcome=%s",
            instance_id,
            len(new_events),
            len(result.decisions),
            result.outcome,
        )
        self._after_commit(commit, work, timers)

    async def _run_orchestrator(self, row: InstanceRow, full: list[dict[str, Any]]) -> tuple[ReplayResult, int]:
        fn = self.index.orchestrator(row.name)
        started = next((e for e in full if e["EventType"] == EventType.EXECUTION_STARTED), {})
        t0 = time.perf_counter()
        if fn is None:
            message = unknown_function_message(row.name, "orchestrator", self.index.names("orchestrator"))
            return ReplayResult(outcome="failed", output=json.dumps(message), failure_details=message), 0
        payload = orchestrator_payload(
            history=full,
            input_json=started.get("Input"),
            instance_id=row.instance_id,
            parent_instance_id=row.parent_instance_id,
            long_timer_interval=self.options.long_timer_interval,
            max_short_timer=self.options.max_short_timer,
        )
        replayer = ShimReplayer(
            orchestrator_name=fn.name,
            instance_id=row.instance_id,
            execution_id=row.execution_id,
            activity_exists=lambda n: self.index.activity(n) is not None,
            orchestrator_exists=lambda n: self.index.orchestrator(n) is not None,
            known_activities=lambda: self.index.names("activity"),
            known_orchestrators=lambda: self.index.names("orchestrator"),
            parent_instance_id=row.parent_instance_id,
        )

        def run() -> ReplayResult:
            state = invoke_orchestrator(fn, payload)
            return replayer.replay(full, state)

        result = await self._loop.run_in_executor(self._orch_pool, run)
        return result, int((time.perf_counter() - t0) * 1000)

    def _terminate_now(
        self, row: InstanceRow, terminate: dict[str, Any], consumed: list[int], messages: list[Any]
    ) -> None:
        now = self.clock.now()
        inst = InstanceRow(**{**row.__dict__})
        inst.status, inst.updated = RuntimeStatus.TERMINATED, now
        reason = terminate.get("Input")
        inst.output = json.dumps(reason)
        # Everything else queued for this instance is dropped with it.
        commit = EpisodeCommit(instance=inst, consumed_inbox=[m.id for m in messages], cancel_timers=True)
        events = [
            h.orchestrator_started(now),
            terminate,
            h.execution_completed(now, RuntimeStatus.TERMINATED, inst.output),
            h.orchestrator_completed(now),
        ]
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
