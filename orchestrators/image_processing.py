"""ImageProcessing_Orchestrator: list -> bounded fan-out of ProcessImage ->
NotifyCompletion.

Pure orchestration code: no I/O, no clock but ``current_utc_datetime``, no
environment reads (the retry policy arrives in the input, chosen by the HTTP
starter from app settings). Only names, counts and compact results pass
through Durable; image bytes never do.
"""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df
from azure.durable_functions.models.Task import TaskState

from imagebatch.results import (
    KIND_TRANSIENT_EXHAUSTED,
    Progress,
    batch_status,
    custom_status,
    failed_result,
    failure_percent,
)
from imagebatch.specs import BatchRequest
from orchestrators.bounded_fan_out import RetryPolicy, bounded_fan_out
from orchestrators.retry import retry_policy

ORCHESTRATOR_NAME = "ImageProcessing_Orchestrator"


class BatchFailedError(Exception):
    """Raised after the manifest is written when too many images failed, so the
    instance ends Failed (like Step Functions' ExceedToleratedFailureThreshold)."""


def _activity_error(task: Any) -> str:
    """The extension reports activity failures as "<Reason> \\n <Details>"; keep the
    reason without the "Activity function 'X' failed: " preamble."""
    reason = str(task.result).split(" \n ", 1)[0].strip()
    return reason.split("failed: ", 1)[-1]


def orchestrate(context: df.DurableOrchestrationContext):
    payload: dict[str, Any] = context.get_input()
    request = BatchRequest.from_dict(payload["request"])
    retry = retry_policy(payload.get("retry"))
    started = context.current_utc_datetime.isoformat()
    progress = Progress()
    context.set_custom_status(custom_status("listing", progress))

    listing_error: str | None = None
    if request.source_blobs is not None:
        images: list[dict[str, Any]] = [{"name": name} for name in request.source_blobs]
    else:
        same_container = request.source_container == request.output_container
        listing = yield context.call_activity_with_retry(
            "ListImages",
            retry,
            {
                "container": request.source_container,
                "prefix": request.source_prefix or "",
                "output_prefix": request.output_prefix,
                "exclude_own_outputs": same_container,
                "page_size": payload.get("list_page_size"),
            },
        )
        images = listing["images"]
        listing_error = listing.get("error")

    progress.total = len(images)
    results: list[dict[str, Any] | None] = [None] * len(images)

    def start(image: dict[str, Any]) -> Any:
        # Plain call_activity: the window retries it itself (see bounded_fan_out).
        return context.call_activity(
            "ProcessImage",
            {
                "source_container": request.source_container,
                "source": image,
                "output_container": request.output_container,
                "output_prefix": request.output_prefix,
                "spec": request.spec.to_dict(),
            },
        )

    def done(index: int, task: Any, attempts: int) -> None:
        if task.state is TaskState.FAILED:
            message = f"gave up after {attempts} attempt(s): {_activity_error(task)}"
            result = failed_result(images[index]["name"], KIND_TRANSIENT_EXHAUSTED, message)
        else:
            result = task.result
        results[index] = result
        progress.record(result)

    def publish(in_flight: int) -> None:
        progress.in_flight = in_flight
        context.set_custom_status(custom_status("processing", progress))

    yield from bounded_fan_out(
        context,
        images,
        start,
        request.max_concurrency,
        done,
        retry=RetryPolicy.from_dict(payload.get("retry")),
        on_progress=publish,
    )
    progress.in_flight = 0

    status = "failed" if listing_error else batch_status(progress, request.tolerated_failure_percent)
    context.set_custom_status(custom_status("notifying", progress))
    summary = yield context.call_activity_with_retry(
        "NotifyCompletion",
        retry,
        {
            "instance_id": context.instance_id,
            "request": request.to_dict(),
            "results": results,
            "progress": progress.to_dict(),
            "status": status,
            "started": started,
            "finished": context.current_utc_datetime.isoformat(),
            "listing_error": listing_error,
        },
    )
    context.set_custom_status(custom_status("done", progress, summary["manifest"]))
    if status == "failed":
        reason = listing_error or (
            f"{progress.failed} of {progress.total} images failed "
            f"({failure_percent(progress):.1f}% > {request.tolerated_failure_percent:g}% tolerated)"
        )
        raise BatchFailedError(f"Batch failed: {reason}. Manifest: {summary['manifest']}")
    return summary


bp = df.Blueprint()


@bp.orchestration_trigger(context_name="context")
def ImageProcessing_Orchestrator(context: df.DurableOrchestrationContext):
    return (yield from orchestrate(context))
