"""How one orchestration episode becomes one store commit (DTFx ``TaskOrchestrationDispatcher``).

The replay's decisions become history events, activity work items, timers and new child
instances (with their ``ExecutionStarted``); the outcome sets the instance status; a finished
sub-orchestration sends its parent ``SubOrchestrationInstanceCompleted`` (Completed) or
``...Failed`` (anything else); a continue-as-new starts a new execution and carries over the
events raised after it. :mod:`.orchestration_dispatch` runs the episode and applies the commit.

A mixin of :class:`~.engine.Engine` (through :class:`~.orchestration_dispatch.OrchestrationDispatcher`):
the state it reads is the engine's, declared below for the type checker.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import history as h
from .functions import FunctionIndex
from .replay import ReplayResult
from .runtime_status import RuntimeStatus
from .status_json import loads
from .store_records import EpisodeCommit, InstanceRow, NewMessage, NewTimer, NewWork


class EpisodeCommits:
    """Builds an episode's :class:`~.store_records.EpisodeCommit`; see the module docstring."""

    index: FunctionIndex

    if TYPE_CHECKING:  # provided by the engine

        def _record_payload(self, kind: str, function: str, instance_id: str, text: str | None) -> None: ...

    def _episode_commit(
        self,
        row: InstanceRow,
        now: datetime,
        new_events: list[dict[str, Any]],
        result: ReplayResult,
        consumed: list[int],
        suspended: bool,
    ) -> EpisodeCommit:
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
            inst.status = RuntimeStatus.SUSPENDED if suspended else RuntimeStatus.RUNNING
        elif result.outcome == "continued_as_new":
            # A new execution: fresh history whose first episode starts from ExecutionStarted(input),
            # plus the EventRaised messages that arrived after ContinueAsNew (DTFx carry-over).
            inst.status = RuntimeStatus.RUNNING
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
            commit.new_messages.append(
                NewMessage(
                    inst.instance_id,
                    inst.execution_id,
                    h.execution_started(
                        now,
                        name=inst.name,
                        instance_id=inst.instance_id,
                        execution_id=inst.execution_id,
                        input_json=result.continue_input,
                        parent=self._parent_of(inst),
                    ),
                )
            )
            for ev in result.carryover_events:
                commit.new_messages.append(NewMessage(inst.instance_id, None, ev))
        else:
            status = RuntimeStatus.COMPLETED if result.outcome == "completed" else RuntimeStatus.FAILED
            inst.status = status
            inst.output = result.output
            if status == RuntimeStatus.COMPLETED:
                self._record_payload("orchestration_output", row.name, row.instance_id, result.output)
            commit.cancel_timers = True
            # DTFx writes ExecutionCompleted with the episode's decisions, before OrchestratorCompleted.
            events.insert(len(events) - 1, h.execution_completed(now, status, result.output, result.failure_details))
            self._notify_parent(commit, inst, now, result.failure_details)

        for ev in events:
            ev["IsPlayed"] = True  # DTFx persists IsPlayed=true once processed
        commit.append_history = events
        return commit

    @staticmethod
    def _parent_of(inst: InstanceRow) -> dict[str, Any] | None:
        if inst.parent_instance_id is None:
            return None
        return h.parent_instance(
            name="",
            instance_id=inst.parent_instance_id,
            execution_id=inst.parent_execution_id or "",
            task_schedule_id=inst.parent_task_id or 0,
        )

    def _start_child(
        self,
        commit: EpisodeCommit,
        parent: InstanceRow,
        task_id: int,
        name: str,
        child_id: str,
        action_input: str | None,
        now: datetime,
    ) -> None:
        fn = self.index.orchestrator(name)
        child_name = fn.name if fn is not None else name
        # The shim passes the action's input (a JSON string) as an object; DTFx serialises it again.
        input_json = json.dumps(action_input)
        self._record_payload("orchestration_input", child_name, child_id, input_json)
        child = InstanceRow(
            instance_id=child_id,
            name=child_name,
            execution_id=uuid.uuid4().hex,
            status=RuntimeStatus.PENDING,
            input=input_json,
            created=now,
            updated=now,
            parent_instance_id=parent.instance_id,
            parent_execution_id=parent.execution_id,
            parent_task_id=task_id,
        )
        commit.new_instances.append(child)
        commit.new_messages.append(
            NewMessage(
                child_id,
                child.execution_id,
                h.execution_started(
                    now,
                    name=child_name,
                    instance_id=child_id,
                    execution_id=child.execution_id,
                    input_json=input_json,
                    parent=h.parent_instance(
                        name=parent.name,
                        instance_id=parent.instance_id,
                        execution_id=parent.execution_id,
                        task_schedule_id=task_id,
                    ),
                ),
            )
        )

    def _notify_parent(self, commit: EpisodeCommit, inst: InstanceRow, now: datetime, details: str | None) -> None:
        """``TaskOrchestrationDispatcher``: Completed -> SubOrchestrationInstanceCompleted, else Failed."""
        if inst.parent_instance_id is None or inst.parent_task_id is None:
            return
        if inst.status == RuntimeStatus.COMPLETED:
            ev = h.sub_orchestration_completed(now, inst.parent_task_id, inst.output)
        else:
            reason = loads(inst.output)
            ev = h.sub_orchestration_failed(now, inst.parent_task_id, str(reason), details)
        commit.new_messages.append(NewMessage(inst.parent_instance_id, inst.parent_execution_id, ev))
