"""Durable state of the dev host in SQLite (a file, or ``:memory:``).

Like DTFx's backends, every state change is one transaction: an episode's new history events,
the work items / timers / messages it produces, the consumed inbox messages and the instance
status are committed together, and an activity result replaces its work item atomically.
So a ``kill -9`` at any moment loses nothing: on restart every pending inbox message gets an
episode, every unfinished work item is run again (at-least-once, as in Azure) and every timer
is re-armed.  WAL mode keeps readers (status queries) off the writer's back.

The schema and every transaction live together here, so what commits atomically with what can be
checked in one read; the rows and messages it stores are in :mod:`.store_records`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from .history import format_ts, parse_ts
from .runtime_status import TERMINAL_STATUSES, RuntimeStatus
from .store_records import (
    EpisodeCommit,
    InboxMessage,
    InstanceRow,
    NewMessage,
    NewTimer,
    NewWork,
    Store,
    TimerRow,
    WorkItem,
)

# Re-exported: callers imported these from here before runtime_status / store_records existed.
__all__ = [
    "TERMINAL_STATUSES",
    "EpisodeCommit",
    "InboxMessage",
    "InstanceRow",
    "NewMessage",
    "NewTimer",
    "NewWork",
    "SqliteStore",
    "Store",
    "TimerRow",
    "WorkItem",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
    instance_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    status TEXT NOT NULL,
    input TEXT,
    output TEXT,
    custom_status TEXT,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    parent_instance_id TEXT,
    parent_execution_id TEXT,
    parent_task_id INTEGER,
    completed INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS history (
    instance_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event TEXT NOT NULL,
    PRIMARY KEY (instance_id, seq)
);
CREATE TABLE IF NOT EXISTS past_history (
    instance_id TEXT NOT NULL,
    generation INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    event TEXT NOT NULL,
    PRIMARY KEY (instance_id, generation, seq)
);
CREATE TABLE IF NOT EXISTS inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT NOT NULL,
    execution_id TEXT,
    event TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS inbox_instance ON inbox (instance_id, id);
CREATE TABLE IF NOT EXISTS work_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    task_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    input TEXT
);
CREATE TABLE IF NOT EXISTS timers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    timer_id INTEGER NOT NULL,
    fire_at TEXT NOT NULL
);
"""


class SqliteStore:
    """SQLite implementation of :class:`Store` (thread-safe through one lock; WAL, synchronous=NORMAL)."""

    def __init__(self, path: str = ":memory:") -> None:
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        if path != ":memory:":
            # Space is given back after purges (compact_after_purge): auto_vacuum only takes effect on a new
            # database file, before its first table; the WAL is checkpointed every 1000 pages (SQLite's
            # default, set explicitly) and truncated to at most 16 MiB after each checkpoint.
            self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA wal_autocheckpoint=1000")
            self._db.execute(f"PRAGMA journal_size_limit={16 * 1024 * 1024}")
        self._db.executescript(_SCHEMA)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, tuple(args)).fetchall()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ---- instances -----------------------------------------------------------------------

    _COLS = (
        "instance_id, name, execution_id, status, input, output, custom_status, created, updated, "
        "parent_instance_id, parent_execution_id, parent_task_id, completed"
    )

    @staticmethod
    def _row(r: tuple[Any, ...]) -> InstanceRow:
        return InstanceRow(
            instance_id=r[0],
            name=r[1],
            execution_id=r[2],
            status=RuntimeStatus(r[3]),
            input=r[4],
            output=r[5],
            custom_status=r[6],
            created=parse_ts(r[7]),
            updated=parse_ts(r[8]),
            parent_instance_id=r[9],
            parent_execution_id=r[10],
            parent_task_id=r[11],
        )

    @staticmethod
    def _upsert(db: sqlite3.Connection, row: InstanceRow) -> None:
        db.execute(
            f"INSERT OR REPLACE INTO instances ({SqliteStore._COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                row.instance_id,
                row.name,
                row.execution_id,
                row.status,
                row.input,
                row.output,
                row.custom_status,
                format_ts(row.created),
                format_ts(row.updated),
                row.parent_instance_id,
                row.parent_execution_id,
                row.parent_task_id,
                int(row.completed),
            ),
        )

    @staticmethod
    def _append(db: sqlite3.Connection, instance_id: str, events: list[dict[str, Any]]) -> None:
        if not events:
            return
        start = db.execute(
            "SELECT COALESCE(MAX(seq), -1) + 1 FROM history WHERE instance_id = ?", (instance_id,)
        ).fetchone()[0]
        db.executemany(
            "INSERT INTO history (instance_id, seq, event) VALUES (?,?,?)",
            [(instance_id, start + i, json.dumps(ev)) for i, ev in enumerate(events)],
        )

    @staticmethod
    def _wipe(db: sqlite3.Connection, instance_id: str) -> None:
        for table in ("history", "past_history", "inbox", "work_items", "timers"):
            db.execute(f"DELETE FROM {table} WHERE instance_id = ?", (instance_id,))

    def get_instance(self, instance_id: str) -> InstanceRow | None:
        rows = self._query(f"SELECT {self._COLS} FROM instances WHERE instance_id = ?", (instance_id,))
        return self._row(rows[0]) if rows else None

    def create_instance(self, row: InstanceRow, start_event: dict[str, Any]) -> None:
        """Create (or replace a finished) instance and queue its ExecutionStarted message."""
        with self._tx() as db:
            self._wipe(db, row.instance_id)
            self._upsert(db, row)
            db.execute(
                "INSERT INTO inbox (instance_id, execution_id, event) VALUES (?,?,?)",
                (row.instance_id, row.execution_id, json.dumps(start_event)),
            )

    def list_instances(
        self,
        *,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        runtime_status: list[str] | None = None,
        instance_id_prefix: str | None = None,
    ) -> list[InstanceRow]:
        sql = f"SELECT {self._COLS} FROM instances WHERE 1=1"
        args: list[str | int] = []
        if created_from is not None:
            sql += " AND created >= ?"
            args.append(format_ts(created_from))
        if created_to is not None:
            sql += " AND created <= ?"
            args.append(format_ts(created_to))
        if runtime_status:
            sql += f" AND status IN ({','.join('?' * len(runtime_status))})"
            args.extend(runtime_status)
        if instance_id_prefix:
            sql += " AND substr(instance_id, 1, ?) = ?"
            args.extend([len(instance_id_prefix), instance_id_prefix])
        return [self._row(r) for r in self._query(sql + " ORDER BY created, instance_id", args)]

    def purge(self, instance_ids: Iterable[str]) -> int:
        count = 0
        with self._tx() as db:
            for instance_id in instance_ids:
                count += db.execute("DELETE FROM instances WHERE instance_id = ?", (instance_id,)).rowcount
                self._wipe(db, instance_id)
        return count

    def compact_after_purge(self, deleted: int) -> None:
        """Give the space of purged instances back: checkpoint and truncate the WAL, then free the
        database's empty pages (``incremental_vacuum``; a file created before auto_vacuum was set falls
        back to a full ``VACUUM`` once many instances were purged)."""
        if self.path == ":memory:" or deleted <= 0:
            return
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            mode = self._db.execute("PRAGMA auto_vacuum").fetchone()[0]
            if mode == 2:
                # executescript steps the pragma to the end (one execute() step frees a single page)
                self._db.executescript("PRAGMA incremental_vacuum;")
            elif deleted >= 100:
                self._db.execute("VACUUM")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def file_sizes(self) -> dict[str, int]:
        """Bytes on disk of the database file and its WAL (0 when absent or in memory)."""
        if self.path == ":memory:":
            return {"db": 0, "wal": 0}
        sizes = {}
        for key, name in (("db", self.path), ("wal", self.path + "-wal")):
            try:
                sizes[key] = os.path.getsize(name)
            except OSError:
                sizes[key] = 0
        return sizes

    # ---- history & inbox -----------------------------------------------------------------

    def history(self, instance_id: str, *, all_executions: bool = False) -> list[dict[str, Any]]:
        """The current execution's events; with ``all_executions``, those of every
        execution that ended in continue-as-new first (kept for tests and
        benchmarks only: the orchestrator never sees them, as on Azure)."""
        rows = self._query("SELECT event FROM history WHERE instance_id = ? ORDER BY seq", (instance_id,))
        if all_executions:
            past = self._query(
                "SELECT event FROM past_history WHERE instance_id = ? ORDER BY generation, seq", (instance_id,)
            )
            rows = past + rows
        return [json.loads(r[0]) for r in rows]

    def inbox(self, instance_id: str) -> list[InboxMessage]:
        rows = self._query(
            "SELECT id, instance_id, execution_id, event FROM inbox WHERE instance_id = ? ORDER BY id", (instance_id,)
        )
        return [InboxMessage(r[0], r[1], r[2], json.loads(r[3])) for r in rows]

    def instances_with_inbox(self) -> list[str]:
        return [r[0] for r in self._query("SELECT instance_id FROM inbox GROUP BY instance_id ORDER BY MIN(id)")]

    def add_message(self, message: NewMessage) -> int:
        with self._tx() as db:
            return self._insert_message(db, message)

    @staticmethod
    def _insert_message(db: sqlite3.Connection, m: NewMessage) -> int:
        cur = db.execute(
            "INSERT INTO inbox (instance_id, execution_id, event) VALUES (?,?,?)",
            (m.instance_id, m.execution_id, json.dumps(m.event)),
        )
        return int(cur.lastrowid or 0)

    def commit_episode(self, commit: EpisodeCommit) -> tuple[list[WorkItem], list[TimerRow]]:
        inst = commit.instance
        work: list[WorkItem] = []
        timers: list[TimerRow] = []
        with self._tx() as db:
            if db.execute("SELECT 1 FROM instances WHERE instance_id = ?", (inst.instance_id,)).fetchone() is None:
                return work, timers  # purged while its episode ran: nothing to write back
            if commit.consumed_inbox:
                db.executemany("DELETE FROM inbox WHERE id = ?", [(i,) for i in commit.consumed_inbox])
            if commit.reset_history:
                self._append(db, inst.instance_id, commit.archive_tail)
                db.execute(
                    "INSERT INTO past_history (instance_id, generation, seq, event) "
                    "SELECT instance_id, (SELECT COALESCE(MAX(generation), -1) + 1 FROM past_history "
                    "WHERE instance_id = ?), seq, event FROM history WHERE instance_id = ?",
                    (inst.instance_id, inst.instance_id),
                )
                db.execute("DELETE FROM history WHERE instance_id = ?", (inst.instance_id,))
            if commit.cancel_timers:
                db.execute("DELETE FROM timers WHERE instance_id = ?", (inst.instance_id,))
            self._append(db, inst.instance_id, commit.append_history)
            self._upsert(db, inst)
            for child in commit.new_instances:
                self._wipe(db, child.instance_id)
                self._upsert(db, child)
            for m in commit.new_messages:
                self._insert_message(db, m)
            for w in commit.new_work:
                cur = db.execute(
                    "INSERT INTO work_items (instance_id, execution_id, task_id, name, input) VALUES (?,?,?,?,?)",
                    (inst.instance_id, inst.execution_id, w.task_id, w.name, w.input),
                )
                work.append(
                    WorkItem(int(cur.lastrowid or 0), inst.instance_id, inst.execution_id, w.task_id, w.name, w.input)
                )
            for t in commit.new_timers:
                cur = db.execute(
                    "INSERT INTO timers (instance_id, execution_id, timer_id, fire_at) VALUES (?,?,?,?)",
                    (inst.instance_id, inst.execution_id, t.timer_id, t.fire_at),
                )
                timers.append(
                    TimerRow(int(cur.lastrowid or 0), inst.instance_id, inst.execution_id, t.timer_id, t.fire_at)
                )
        return work, timers

    # ---- activity work items & timers -----------------------------------------------------

    def pending_work(self) -> list[WorkItem]:
        rows = self._query("SELECT id, instance_id, execution_id, task_id, name, input FROM work_items ORDER BY id")
        return [WorkItem(*r) for r in rows]

    def complete_work(self, work_id: int, message: NewMessage) -> bool:
        """Replace a work item by its result message; False if the item was purged meanwhile."""
        with self._tx() as db:
            if db.execute("DELETE FROM work_items WHERE id = ?", (work_id,)).rowcount == 0:
                return False
            self._insert_message(db, message)
            return True

    def discard_work(self, work_id: int) -> None:
        """Drop a work item whose instance is gone, finished or on another execution."""
        with self._tx() as db:
            db.execute("DELETE FROM work_items WHERE id = ?", (work_id,))

    def drop_messages(self, ids: Iterable[int]) -> None:
        with self._tx() as db:
            db.executemany("DELETE FROM inbox WHERE id = ?", [(i,) for i in ids])

    def timers(self) -> list[TimerRow]:
        rows = self._query("SELECT id, instance_id, execution_id, timer_id, fire_at FROM timers ORDER BY fire_at, id")
        return [TimerRow(*r) for r in rows]

    def fire_timer(self, timer_row_id: int, message: NewMessage) -> bool:
        with self._tx() as db:
            if db.execute("DELETE FROM timers WHERE id = ?", (timer_row_id,)).rowcount == 0:
                return False
            self._insert_message(db, message)
            return True
