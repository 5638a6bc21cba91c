"""The friendly ``GET /api/batches/{id}`` body, built from a Durable status.

Kept apart from the HTTP function so the mapping is unit-testable with plain
values, and so the answer reads the same whatever backend produced it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from imagebatch.batch_api import batch_state
from imagebatch.results import one_line

# The extension's preamble on a failed orchestration's output (OutOfProcOrchestrationShim).
_FAILED_PREFIX = re.compile(r"^Orchestrator function '[^']*' failed: ")

ACTIVE_STATUSES = frozenset({"Running", "Pending", "ContinuedAsNew", "Suspended"})
MAX_RETRYING_SHOWN = 10
EMPTY_PROGRESS = {
    "total": 0,
    "done": 0,
    "skipped": 0,
    "failed": 0,
    "in_flight": 0,
    "not_started": 0,
    "retrying": 0,
    "completed": 0,
}


def friendly_status(
    *,
    instance_id: str,
    runtime_status: str,
    custom_status: Any,
    output: Any,
    created_time: str | None,
    last_updated_time: str | None,
    live: Mapping[str, Any] | None = None,
    links: Mapping[str, str] | None = None,
    earlier_runs: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """``live`` (``batch_api.live_progress``) replaces the parent's own counts while
    the batch runs and names the retries in progress; ``links`` are the app's own URLs;
    ``earlier_runs`` the batch's finished runs before this one."""
    custom = custom_status if isinstance(custom_status, Mapping) else {}
    progress = dict(EMPTY_PROGRESS)
    progress.update((live or {}).get("progress") or custom.get("progress") or {})
    summary = output if isinstance(output, Mapping) else None
    body: dict[str, Any] = {
        "id": instance_id,
        "run": (summary or {}).get("run") or custom.get("run"),
        "runtimeStatus": runtime_status,
        "batchStatus": batch_state(runtime_status, custom.get("stage"), summary),
        "stage": custom.get("stage"),
        "progress": progress,
        "createdTime": created_time,
        "lastUpdatedTime": last_updated_time,
        "manifest": (summary or {}).get("manifest") or custom.get("manifest"),
        "report": (summary or {}).get("report"),
        "summary": summary,
    }
    if isinstance(custom.get("controls"), Mapping) and is_active(runtime_status):
        # Live controls as the run applied them: version, paused, max_concurrency, deadline.
        body["controls"] = dict(custom["controls"])
    review = (summary or {}).get("review") or custom.get("review")
    if isinstance(review, Mapping):
        # Proof before the batch: the sample, the proof sheet, the deadline and the decision.
        body["review"] = dict(review)
    if links:
        body["statusQueryGetUri"] = links["statusQueryGetUri"]
        if is_active(runtime_status):
            body["cancelPostUri"] = links["cancelPostUri"]
        if is_active(runtime_status) and custom.get("stage") == "awaiting_approval":
            body.update({key: links[key] for key in ("approvePostUri", "rejectPostUri") if key in links})
    if earlier_runs is not None:
        body["runs"] = earlier_runs
    if live and live.get("retrying"):
        # Trouble is visible: which images are waiting to retry, after what error, since when.
        body["retrying"] = list(live["retrying"])[:MAX_RETRYING_SHOWN]
    if runtime_status in {"Failed", "Terminated"} and isinstance(output, str):
        # One line for people: never a traceback or a server path.
        body["error"] = one_line(_FAILED_PREFIX.sub("", output, count=1), limit=500)
    if summary and summary.get("manifest_error"):
        body["manifest_error"] = summary["manifest_error"]
    return body


def is_active(runtime_status: str | None) -> bool:
    return runtime_status in ACTIVE_STATUSES
