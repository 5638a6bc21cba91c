"""The app's own lifecycle API, as plain values: the orchestration input of a
run, the URLs handed to callers, and the live progress of a running batch.

Why the app answers with its own body instead of the SDK's
``create_check_status_response``: that payload's ``terminatePostUri``,
``purgeHistoryDeleteUri``, ``sendEventPostUri``... carry the task hub's
``durabletask_extension`` system key, which can terminate, purge and list
*every* instance of the hub. Whoever holds the ``start_batch`` function key
must not receive it. The URLs here point at the app's own routes and never
carry a key (``code=``): callers send their function key themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from imagebatch.messages import BatchInput
from imagebatch.results import Progress
from imagebatch.settings import AppSettings
from imagebatch.specs import BatchRequest

_FINISHED_KEYS = ("done", "skipped", "failed", "not_started")


def orchestration_input(
    request: BatchRequest, settings: AppSettings, run: str, *, hold_poll_ms: tuple[int, int] | None = None
) -> BatchInput:
    """What ImageProcessing_Orchestrator receives for one run of a batch
    (orchestrators may not read settings, so they arrive here)."""
    return BatchInput(
        request=request,
        run=run,
        retry=settings.retry_options(),
        shard_size=settings.shard_size,
        list_page_size=settings.list_page_size,
        hold_poll_ms=hold_poll_ms,
    )


def batches_root(request_url: str) -> str:
    """``https://host/api/batches`` from the URL of any batches route, without
    its query (so a ``?code=`` key never leaks into a URL the app returns)."""
    parts = urlsplit(request_url)
    path = parts.path
    index = path.lower().rfind("/batches")
    root = path[: index + len("/batches")] if index >= 0 else path.rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, root, "", ""))


def batch_links(root: str, instance_id: str) -> dict[str, str]:
    return {"statusQueryGetUri": f"{root}/{instance_id}", "cancelPostUri": f"{root}/{instance_id}/cancel"}


def accepted_body(root: str, instance_id: str, run: str) -> dict[str, Any]:
    """The ``202`` body of ``POST /api/batches``."""
    return {"id": instance_id, "run": run, **batch_links(root, instance_id)}


def live_progress(parent: Mapping[str, Any], running_shards: Iterable[Any]) -> dict[str, Any]:
    """The parent's counts (finished shards) plus each running shard's counts
    (its finished images), and the retries in progress across the lanes.

    Read the parent *before* listing the shards: a shard listed as running has
    then not been counted by the parent yet, so nothing is counted twice.
    Returns ``{"progress": {...}, "retrying": [...]}`` (latest retry first).
    """
    progress = Progress.from_dict(parent)
    retrying: list[Mapping[str, Any]] = []
    for custom in running_shards:
        if not isinstance(custom, Mapping):
            continue
        counts = custom.get("progress")
        if isinstance(counts, Mapping):
            progress.add({key: counts.get(key, 0) for key in _FINISHED_KEYS})
        retrying += [r for r in custom.get("retrying") or [] if isinstance(r, Mapping)]
    retrying.sort(key=lambda r: str(r.get("at", "")), reverse=True)
    return {"progress": {**progress.to_dict(), "retrying": len(retrying)}, "retrying": retrying}


_RUNNING_STAGES = {
    "cancelling": "Cancelling",
    "paused": "Paused",
    "deadline_exceeded": "Stopping",
    "awaiting_approval": "AwaitingApproval",
}


def batch_state(runtime_status: str, stage: str | None, summary: Mapping[str, Any] | None) -> str:
    """One word for where the batch is: Pending, Running, AwaitingApproval (its proof
    sheet waits for a decision), Paused, Cancelling, Stopping (its deadline passed, lanes
    finish their images), Succeeded, Cancelled, DeadlineExceeded, Rejected, Failed or
    Terminated (the Durable runtime status says Completed for a cancelled or rejected
    batch: the orchestration itself ended normally)."""
    if runtime_status == "Completed":
        status = str((summary or {}).get("status") or "succeeded")
        return "".join(part.capitalize() for part in status.split("_"))
    if runtime_status in ("Running", "ContinuedAsNew"):
        return _RUNNING_STAGES.get(stage or "", "Running")
    return runtime_status


def control_links(root: str, instance_id: str) -> dict[str, str]:
    """The live-control routes of a running batch (``PATCH`` the status URL for a new bound)."""
    return {
        "pausePostUri": f"{root}/{instance_id}/pause",
        "resumePostUri": f"{root}/{instance_id}/resume",
    }


def review_links(root: str, instance_id: str) -> dict[str, str]:
    """The decision routes of a run whose proof sheet awaits approval."""
    return {"approvePostUri": f"{root}/{instance_id}/approve", "rejectPostUri": f"{root}/{instance_id}/reject"}
