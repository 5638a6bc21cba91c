"""Shared helpers for the engine tests (not a test module)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from durable_devhost import Engine, EngineOptions, FunctionIndex, SqliteStore
from durable_devhost.clock import Clock


@contextlib.asynccontextmanager
async def running(
    app_or_index: Any, *, clock: Clock | None = None, store: SqliteStore | None = None, **options: Any
) -> AsyncIterator[Engine]:
    index = app_or_index if isinstance(app_or_index, FunctionIndex) else FunctionIndex.from_app(app_or_index)
    engine = Engine(index, store or SqliteStore(":memory:"), clock, EngineOptions(**options))
    await engine.start()
    try:
        yield engine
    finally:
        await engine.stop()


def client_input(value: Any) -> str:
    """What the Python client's start_new puts in ExecutionStarted.Input (df_dumps, then JSON again)."""
    return json.dumps(json.dumps(value))


def event_types(history: list[dict[str, Any]]) -> list[int]:
    return [e["EventType"] for e in history]
