"""The friendly ``GET /api/batches/{id}`` body, built from a Durable status.

Kept apart from the HTTP function so the mapping is unit-testable with plain
values, and so the answer reads the same whatever backend produced it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ACTIVE_STATUSES = frozenset({"Running", "Pending", "ContinuedAsNew", "Suspended"})
EMPTY_PROGRESS = {"total": 0, "done": 0, "skipped": 0, "failed": 0, "in_flight": 0, "completed": 0}


def friendly_status(
    *,
    instance_id: str,
    runtime_status: str,
    custom_status: Any,
    output: Any,
    created_time: str | None,
    last_updated_time: str | None,
) -> dict[str, Any]:
    custom = custom_status if isinstance(custom_status, Mapping) else {}
    progress = dict(EMPTY_PROGRESS)
    progress.update(custom.get("progress") or {})
    summary = output if isinstance(output, Mapping) else None
    body: dict[str, Any] = {
        "id": instance_id,
        "runtimeStatus": runtime_status,
        "stage": custom.get("stage"),
        "progress": progress,
        "createdTime": created_time,
        "lastUpdatedTime": last_updated_time,
        "manifest": (summary or {}).get("manifest") or custom.get("manifest"),
        "summary": summary,
    }
    if runtime_status in {"Failed", "Terminated"} and isinstance(output, str):
        body["error"] = output
    return body


def is_active(runtime_status: str | None) -> bool:
    return runtime_status in ACTIVE_STATUSES
