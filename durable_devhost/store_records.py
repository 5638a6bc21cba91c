"""The dev host's durable state as the engine sees it: instance rows, inbox messages, activity work
items, timers, what one episode commits, and the :class:`Store` protocol over them.

:mod:`.store` is the implementation (SQLite, one transaction per state change).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from .history import parse_ts
from .runtime_status import TERMINAL_STATUSES, RuntimeStatus


@dataclass
class InstanceRow:
    instance_id: str
    name: str
    execution_id: str
    status: RuntimeStatus
    input: str | None
    created: datetime
    updated: datetime
    output: str | None = None
    custom_status: str | None = None
    parent_instance_id: str | None = None
    parent_execution_id: str | None = None
    parent_task_id: int | None = None

    @property
    def completed(self) -> bool:
        return self.status in TERMINAL_STATUSES


@dataclass
class InboxMessage:
    id: int
    instance_id: str
    execution_id: str | None  # None: addressed to whatever execution is current
    event: dict[str, Any]


@dataclass
class WorkItem:
    id: int
    instance_id: str
    execution_id: str
    task_id: int
    name: str
    input: str | None


@dataclass
class TimerRow:
    id: int
    instance_id: str
    execution_id: str
    timer_id: int
    fire_at: str

    @property
    def fire_at_dt(self) -> datetime:
        return parse_ts(self.fire_at)


@dataclass
class NewMessage:
    instance_id: str
    execution_id: str | None
    event: dict[str, Any]


@dataclass
class NewWork:
    task_id: int
    name: str
    input: str | None


@dataclass
class NewTimer:
    timer_id: int
    fire_at: str


@dataclass
class EpisodeCommit:
    """Everything one episode changes, applied in a single transaction."""

    instance: InstanceRow
    append_history: list[dict[str, Any]] = field(default_factory=list)
    reset_history: bool = False  # continue-as-new / terminal cleanup
    archive_tail: list[dict[str, Any]] = field(default_factory=list)  # last events of the execution reset
    consumed_inbox: list[int] = field(default_factory=list)
    new_messages: list[NewMessage] = field(default_factory=list)
    new_instances: list[InstanceRow] = field(default_factory=list)
    new_work: list[NewWork] = field(default_factory=list)  # for instance.execution_id
    new_timers: list[NewTimer] = field(default_factory=list)
    cancel_timers: bool = False  # drop the instance's pending timers (terminated)


class Store(Protocol):
    def get_instance(self, instance_id: str) -> InstanceRow | None: ...
    def create_instance(self, row: InstanceRow, start_event: dict[str, Any]) -> None: ...
    def history(self, instance_id: str, *, all_executions: bool = False) -> list[dict[str, Any]]: ...
    def inbox(self, instance_id: str) -> list[InboxMessage]: ...
    def instances_with_inbox(self) -> list[str]: ...
    def add_message(self, message: NewMessage) -> int: ...
    def commit_episode(self, commit: EpisodeCommit) -> tuple[list[WorkItem], list[TimerRow]]: ...
    def pending_work(self) -> list[WorkItem]: ...
    def complete_work(self, work_id: int, message: NewMessage) -> bool: ...
    def discard_work(self, work_id: int) -> None: ...
    def drop_messages(self, ids: Iterable[int]) -> None: ...
    def timers(self) -> list[TimerRow]: ...
    def fire_timer(self, timer_row_id: int, message: NewMessage) -> bool: ...
    def list_instances(
        self,
        *,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        runtime_status: list[str] | None = None,
        instance_id_prefix: str | None = None,
    ) -> list[InstanceRow]: ...
    def purge(self, instance_ids: Iterable[str]) -> int: ...
    def close(self) -> None: ...
