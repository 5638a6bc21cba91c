"""ImageProcessing_Orchestrator: plan shards -> (under review: the sample's
shards, the proof sheet, a decision) -> keep ``max_concurrency`` shard lanes
running -> NotifyCompletion.

Pure orchestration code: no I/O, no clock but ``current_utc_datetime``, no
environment reads (the retry policy and shard size arrive in the input,
chosen by the HTTP starter from app settings). Only counts, shard sizes and
blob names pass through this history: the listing and the per-image results
live in blobs (see ``activities/list_images.py`` and ``orchestrators/shard.py``),
so the parent stays small and cheap to replay for 10,000 images or more.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import azure.durable_functions as df
from azure.durable_functions.models.Task import TaskState

from imagebatch.naming import (
    cancel_blob_name,
    controls_blob_name,
    manifest_blob_name,
    review_blob_name,
    shard_instance_id,
    shard_parts_prefix,
    shard_plan_blob,
)
from imagebatch.results import Progress, batch_status, custom_status, failure_percent, manifest_not_written
from imagebatch.specs import BatchRequest
from orchestrators.blueprint import bp
from orchestrators.bounded_fan_out import RetryPolicy, bounded_fan_out
from orchestrators.controls import RunControls
from orchestrators.retry import retry_policy
from orchestrators.review import (
    APPROVED,
    BY_TIMEOUT,
    REJECTED,
    await_decision,
    decision_record,
    normalise_decision,
)
from orchestrators.shard import SHARD_ORCHESTRATOR_NAME, activity_error, activity_error_text

ORCHESTRATOR_NAME = "ImageProcessing_Orchestrator"
KIND_SHARD_FAILED = "shard_failed"
# Raised by POST /api/batches/{id}/cancel after it wrote the run's cancel marker.
CANCEL_EVENT = "cancel"


class BatchFailedError(Exception):
    """Raised after the manifest is written when too many images failed, so the
    instance ends Failed (like Step Functions' ExceedToleratedFailureThreshold)."""


def orchestrate(context: df.DurableOrchestrationContext):
    payload: dict[str, Any] = context.get_input()
    request = BatchRequest.from_dict(payload["request"])
    run: str = payload["run"]
    sdk_retry = retry_policy(payload.get("retry"))
    started_at: datetime = context.current_utc_datetime
    started = started_at.isoformat()
    # The deadline counts from the run's start (its first episode), listing included.
    deadline = started_at + timedelta(minutes=request.deadline_minutes) if request.deadline_minutes else None
    progress = Progress()
    context.set_custom_status(custom_status("listing", progress, run=run))

    plan = yield context.call_activity_with_retry(
        "ListImages",
        sdk_retry,
        {
            "instance_id": context.instance_id,
            "run": run,
            "request": payload["request"],
            "container": request.source_container,
            "prefix": request.source_prefix or "",
            "source_list_blob": request.source_list_blob,  # an explicit list, stored once by the starter
            "output_container": request.output_container,
            "output_prefix": request.output_prefix,
            "exclude_own_outputs": request.source_container == request.output_container,
            "page_size": payload.get("list_page_size"),
            "max_concurrency": request.max_concurrency,
            "review_sample": request.review.sample if request.review else 0,  # the sample's shards come first
            "shard_size": payload.get("shard_size"),  # None: ListImages sizes shards for the batch
        },
    )
    sizes: list[int] = plan["shards"]
    progress.total = plan["total"]
    progress.failed = plan.get("rejected", 0)  # images whose outputs could not be named
    outcomes: list[dict[str, Any]] = [{} for _ in sizes]

    # Each running lane holds the lowest free slot number; when the bound is lowered, lanes
    # whose slot is at or above it park at their next segment (orchestrators/shard.py) and
    # start again from there (a new instance id per restart) when there is room.
    slots: dict[int, int] = {}
    parked: dict[int, dict[str, Any]] = {}  # handed back, waiting for room
    resumed: dict[int, dict[str, Any]] = {}  # the state a restarted shard began from (kept for its retries)
    restarts: dict[int, int] = {}

    def start(shard: int) -> Any:
        if shard not in slots:
            slots[shard] = min(set(range(len(slots) + 1)) - set(slots.values()))
        if shard in parked:
            resumed[shard] = parked.pop(shard)
            restarts[shard] = restarts.get(shard, 0) + 1
        resume = resumed.get(shard)
        instance = shard_instance_id(context.instance_id, run, shard)
        if restarts.get(shard):
            instance = f"{instance}-{restarts[shard]}"
        # A few names only: the shard reads its images and the request from its plan blob.
        return context.call_sub_orchestrator(
            SHARD_ORCHESTRATOR_NAME,
            {
                "shard": shard,
                "slot": slots[shard],
                "controls_blob": controls_blob_name(request.output_prefix, context.instance_id, run),
                **({"state": {**resume, "fresh": True}} if resume is not None else {}),
                "container": request.output_container,
                "plan_blob": shard_plan_blob(plan["plan"], shard),
                "parts_prefix": shard_parts_prefix(request.output_prefix, context.instance_id, run, shard),
                "cancel_blob": cancel_blob_name(request.output_prefix, context.instance_id, run),
                "retry": payload.get("retry"),
                # Lanes stop starting images once it has passed (checked before each image).
                **({"deadline": deadline.isoformat()} if deadline else {}),
                # How often a lane held by a pause looks again (tests shrink it).
                **({"hold_poll_ms": payload["hold_poll_ms"]} if payload.get("hold_poll_ms") else {}),
                # Images per shard execution (tests shrink it; the shard's default otherwise).
                **({"segment_size": payload["segment_size"]} if payload.get("segment_size") else {}),
            },
            instance,
        )

    def requeue(shard: int, task: Any) -> bool:
        """A lane that parked (a smaller bound) is handed back, to start again from its state."""
        result = task.result
        if isinstance(result, dict) and result.get("parked"):
            parked[shard] = result["parked"]
            slots.pop(shard, None)
            return True
        return False

    def shard_failed(shard: int, kind: str, message: str) -> None:
        progress.failed += sizes[shard]
        outcomes[shard] = {
            "failed": {
                "plan_blob": shard_plan_blob(plan["plan"], shard),
                "size": sizes[shard],
                "kind": kind,
                "message": message,
            }
        }

    def done(shard: int, task: Any, attempts: int) -> None:
        slots.pop(shard, None)
        parked.pop(shard, None)  # parked, then stopped before it restarted: its partial outcome stands
        if task.state is TaskState.FAILED:
            message = f"not processed: its shard failed after {attempts} attempt(s): {activity_error(task)}"
            shard_failed(shard, KIND_SHARD_FAILED, message)
            return
        outcome = task.result
        if "shard_error" in outcome:  # a permanent problem, reported at once (no retries)
            error = outcome["shard_error"]
            shard_failed(shard, error["kind"], f"not processed: its shard plan cannot be read: {error['message']}")
            return
        # Where NotifyCompletion finds the shard's results: counts and names, never the results.
        outcomes[shard] = {
            key: outcome[key] for key in ("parts", "segment_size", "inline", "not_started_from") if key in outcome
        }
        progress.add(outcome["progress"])

    # Cancel (POST /api/batches/{id}/cancel) writes the run's cancel marker, which stops
    # every lane after the image in hand, then raises this event, which stops new lanes.
    cancel = context.wait_for_external_event(CANCEL_EVENT)
    # Pause / resume / a new bound (control-{version} events) and the deadline timer.
    controls = RunControls(context, request.max_concurrency, deadline)
    phase = {"stage": "processing"}  # "proofing" / "awaiting_approval" while under review
    review: dict[str, Any] | None = None  # the run's review, as status and manifest show it

    def publish(lanes_running: int) -> None:
        progress.in_flight = lanes_running
        if cancel.is_completed:
            stage = "cancelling"
        elif controls.deadline_passed:
            stage = "deadline_exceeded"
        elif phase["stage"] == "awaiting_approval":
            stage = phase["stage"]  # a pause during the review shows in controls; a decision still applies
        elif controls.paused:
            stage = "paused"
        else:
            stage = phase["stage"]
        shown = progress
        if parked:  # parked lanes' finished images still count while they wait to start again
            shown = Progress.from_dict(progress.to_dict())
            for state in parked.values():
                shown.add(state.get("counts") or {})
        status = {**custom_status(stage, shown, run=run), "controls": controls.to_status()}
        if review is not None:
            status["review"] = review
        context.set_custom_status(status)

    def fan_out(first: int, last: int):
        """Shards ``first..last-1`` as lanes; returns the shards that never started."""
        never = yield from bounded_fan_out(
            context,
            list(range(first, last)),
            start,
            request.max_concurrency,
            lambda position, task, attempts: done(first + position, task, attempts),
            retry=RetryPolicy.from_dict(payload.get("retry")),
            requeue=lambda position, task: requeue(first + position, task),
            on_progress=publish,
            stop_when=cancel,
            controls=controls,
        )
        return [first + position for position in never]

    never_started: list[int] = []
    rest_from = 0
    rejected: dict[str, Any] | None = None
    sample_shards = min(int(plan.get("sample_shards") or 0), len(sizes)) if request.review else 0
    if sample_shards and request.review is not None and not plan.get("error"):
        # Proof before the batch: the sample's shards first, then the proof sheet, then
        # a person's decision (orchestrators/review.py). Approved: the other shards run
        # and the sample's results count as they are (it is not rendered again).
        phase["stage"] = "proofing"
        review = {
            "sample": int(plan.get("sample") or 0),
            "sample_shards": sample_shards,
            "timeout_minutes": request.review.timeout_minutes,
            "on_timeout": request.review.on_timeout,
        }
        never_started += yield from fan_out(0, sample_shards)
        rest_from = sample_shards
        if not (cancel.is_completed or controls.stopped or never_started):
            # The time to decide counts from the moment the sample is done (the proof shows it).
            timeout_at = context.current_utc_datetime + timedelta(minutes=request.review.timeout_minutes)
            try:
                proof = yield context.call_activity_with_retry(
                    "WriteProofSheet",
                    sdk_retry,
                    {
                        "instance_id": context.instance_id,
                        "run": run,
                        "request": request.to_dict(),
                        "plan_folder": plan["plan"],
                        "shard_outcomes": outcomes[:sample_shards],
                        "total": progress.total,
                        "timeout_at": timeout_at.isoformat(),
                        "on_timeout": request.review.on_timeout,
                    },
                )
            except Exception as error:
                proof = {"proof": None, "error": f"the proof sheet could not be written: {activity_error_text(error)}"}
            review.update({"proof": proof.get("proof"), "timeout_at": timeout_at.isoformat()})
            if proof.get("error"):
                review["proof_error"] = proof["error"]
            phase["stage"] = "awaiting_approval"
            publish(0)
            outcome = yield from await_decision(context, timeout_at, cancel, controls, on_observe=lambda: publish(0))
            decision = outcome.decision
            if outcome.kind == "timed_out":
                decision = decision_record(
                    APPROVED if request.review.on_timeout == "approve" else REJECTED,
                    BY_TIMEOUT,
                    context.current_utc_datetime,
                    f"nobody decided within {request.review.timeout_minutes} minutes",
                )
                try:
                    # First wins: a person who decided just before the timeout keeps the decision.
                    recorded = yield context.call_activity_with_retry(
                        "RecordReviewDecision",
                        sdk_retry,
                        {
                            "container": request.output_container,
                            "blob": review_blob_name(request.output_prefix, context.instance_id, run),
                            "decision": decision,
                        },
                    )
                    decision = normalise_decision(recorded, context.current_utc_datetime)
                except Exception:
                    pass  # storage stayed down: the timeout's own decision applies
            if decision is not None:
                review.update(decision)
                if decision["decision"] == REJECTED:
                    rejected = decision
        phase["stage"] = "processing"
    if rest_from < len(sizes):
        if rejected is None and not cancel.is_completed and not controls.stopped:
            never_started += yield from fan_out(rest_from, len(sizes))
        else:
            never_started += list(range(rest_from, len(sizes)))
    for shard in never_started:
        progress.not_started += sizes[shard]
        outcomes[shard] = {"not_started": {"plan_blob": shard_plan_blob(plan["plan"], shard), "size": sizes[shard]}}
        if rejected is not None and not cancel.is_completed:
            why = f"the run's proof was rejected ({rejected['by']})" + (
                f": {rejected['reason']}" if rejected.get("reason") else ""
            )
            outcomes[shard]["not_started"]["message"] = why
    progress.in_flight = 0

    listing_error = plan.get("error")
    if listing_error:
        status = "failed"
    elif cancel.is_completed:
        status = "cancelled"
    elif rejected is not None:
        status = "rejected"
    elif progress.not_started and controls.deadline_passed:
        status = "deadline_exceeded"
    elif progress.not_started:
        # Lanes also stop on the cancel marker alone (the event raise failed after it was written).
        status = "cancelled"
    else:
        status = batch_status(progress, request.tolerated_failure_percent)
    context.set_custom_status(custom_status("notifying", progress, run=run))
    finished = context.current_utc_datetime.isoformat()
    try:
        summary = yield context.call_activity_with_retry(
            "NotifyCompletion",
            sdk_retry,
            {
                "instance_id": context.instance_id,
                "run": run,
                "request": request.to_dict(),
                "plan_folder": plan["plan"],
                "extra_blob": plan.get("extra"),
                "shard_outcomes": outcomes,
                "progress": progress.to_dict(),
                "status": status,
                "started": started,
                "finished": finished,
                "listing_error": listing_error,
                **({"review": review} if review is not None else {}),
            },
        )
    except Exception as error:
        # Storage stayed down through every retry: the images are done, so the run still
        # ends with its counts; the output says why there is no manifest (re-submitting the
        # batch writes it, skipping every image that is already done).
        location = f"{request.output_container}/{manifest_blob_name(request.output_prefix, context.instance_id, run)}"
        summary = {
            "batch_id": context.instance_id,
            "run": run,
            "status": status,
            "counts": progress.to_dict(),
            "failure_percent": round(failure_percent(progress), 3),
            "started": started,
            "finished": finished,
            **manifest_not_written(location, activity_error_text(error)),
        }
    context.set_custom_status(custom_status("done", progress, summary["manifest"], run=run))
    if status == "failed":
        reason = listing_error or (
            f"{progress.failed} of {progress.total} images failed "
            f"({failure_percent(progress):.1f}% > {request.tolerated_failure_percent:g}% tolerated)"
        )
        where = f"Manifest: {summary['manifest']}" if summary["manifest"] else summary["manifest_error"]
        raise BatchFailedError(f"Batch failed: {reason}. {where}")
    return summary


@bp.orchestration_trigger(context_name="context")
def ImageProcessing_Orchestrator(context: df.DurableOrchestrationContext):
    return (yield from orchestrate(context))
