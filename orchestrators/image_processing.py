"""ImageProcessing_Orchestrator: plan shards -> (under review: the sample's
shards, the proof sheet, a decision) -> keep ``max_concurrency`` shard lanes
running -> NotifyCompletion.

Pure orchestration code: no I/O, no clock but ``current_utc_datetime``, no
environment reads (the retry policy and shard size arrive in the input, a
``BatchInput`` chosen by the HTTP starter from app settings). Every message it
sends or receives is a type of ``imagebatch.messages`` (docs/design.md, section 5a). Only counts, shard sizes and
blob names pass through this history: the listing and the per-image results
live in blobs (see ``activities/list_images.py`` and ``orchestrators/shard.py``),
so the parent stays small and cheap to replay for 10,000 images or more.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import azure.durable_functions as df
from azure.durable_functions.models.Task import TaskState

from imagebatch.function_names import (
    IMAGE_PROCESSING_ORCHESTRATOR,
    LIST_IMAGES,
    NOTIFY_COMPLETION,
    RECORD_REVIEW_DECISION,
    SHARD_ORCHESTRATOR,
    WRITE_PROOF_SHEET,
)
from imagebatch.messages import (
    BatchInput,
    BatchStatus,
    BatchSummary,
    ListImagesInput,
    NotifyInput,
    ProofSheetInput,
    ProofSheetResult,
    RecordDecisionInput,
    ReviewDecision,
    ShardInput,
    ShardOutcome,
    ShardPlan,
    ShardRecord,
    ShardState,
    UnprocessedShard,
)
from imagebatch.naming import (
    cancel_blob_name,
    controls_blob_name,
    manifest_blob_name,
    review_blob_name,
    shard_instance_id,
    shard_parts_prefix,
    shard_plan_blob,
)
from imagebatch.results import Progress, batch_status, custom_status, failure_percent, manifest_error_text
from orchestrators.blueprint import bp
from orchestrators.bounded_fan_out import bounded_fan_out
from orchestrators.controls import RunControls
from orchestrators.retry import fan_out_retry, retry_policy
from orchestrators.review import (
    APPROVED,
    BY_TIMEOUT,
    REJECTED,
    await_decision,
    decision_record,
    normalise_decision,
)
from orchestrators.shard import activity_error, activity_error_text

KIND_SHARD_FAILED = "shard_failed"
# Raised by POST /api/batches/{id}/cancel after it wrote the run's cancel marker.
CANCEL_EVENT = "cancel"


class BatchFailedError(Exception):
    """Raised after the manifest is written when too many images failed, so the
    instance ends Failed (like Step Functions' ExceedToleratedFailureThreshold)."""


def orchestrate(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    batch = BatchInput.from_dict(context.get_input())
    request, run = batch.request, batch.run
    sdk_retry = retry_policy(batch.retry)
    started_at: datetime = context.current_utc_datetime
    started = started_at.isoformat()
    # The deadline counts from the run's start (its first episode), listing included.
    deadline = started_at + timedelta(minutes=request.deadline_minutes) if request.deadline_minutes else None
    progress = Progress()
    context.set_custom_status(custom_status("listing", progress, run=run))

    # Everything ListImages needs is in the request (an explicit list is stored once by the
    # starter; the proof's sample shards come first); shard_size None: sized for the batch.
    listing = ListImagesInput(
        context.instance_id, run, request, page_size=batch.list_page_size, shard_size=batch.shard_size
    )
    plan = ShardPlan.from_dict((yield context.call_activity_with_retry(LIST_IMAGES, sdk_retry, listing.to_dict())))
    sizes = list(plan.shards)
    progress.total = plan.total
    progress.failed = plan.rejected  # images whose outputs could not be named
    outcomes: list[ShardRecord] = [ShardRecord() for _ in sizes]

    # Each running lane holds the lowest free slot number; when the bound is lowered, lanes
    # whose slot is at or above it park at their next segment (orchestrators/shard.py) and
    # start again from there (a new instance id per restart) when there is room.
    slots: dict[int, int] = {}
    parked: dict[int, ShardState] = {}  # handed back, waiting for room
    resumed: dict[int, ShardState] = {}  # the state a restarted shard began from (kept for its retries)
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
        lane = ShardInput(
            shard=shard,
            slot=slots[shard],
            controls_blob=controls_blob_name(request.output_prefix, context.instance_id, run),
            state=replace(resume, fresh=True) if resume is not None else None,
            container=request.output_container,
            plan_blob=shard_plan_blob(plan.plan, shard),
            parts_prefix=shard_parts_prefix(request.output_prefix, context.instance_id, run, shard),
            cancel_blob=cancel_blob_name(request.output_prefix, context.instance_id, run),
            retry=batch.retry,
            deadline=deadline,  # lanes stop starting images once it has passed (checked before each image)
            hold_poll_ms=batch.hold_poll_ms,  # how often a lane held by a pause looks again (tests shrink it)
            segment_size=batch.segment_size,  # images per shard execution (tests shrink it)
        )
        return context.call_sub_orchestrator(SHARD_ORCHESTRATOR, lane.to_dict(), instance)

    def requeue(shard: int, task: Any) -> bool:
        """A lane that parked (a smaller bound) is handed back, to start again from its state."""
        outcome = ShardOutcome.from_dict(task.result)
        if outcome.parked is not None:
            parked[shard] = outcome.parked
            slots.pop(shard, None)
            return True
        return False

    def shard_failed(shard: int, kind: str, message: str) -> None:
        progress.failed += sizes[shard]
        failed = UnprocessedShard(shard_plan_blob(plan.plan, shard), sizes[shard], kind, message)
        outcomes[shard] = ShardRecord(failed=failed)

    def done(shard: int, task: Any, attempts: int) -> None:
        slots.pop(shard, None)
        parked.pop(shard, None)  # parked, then stopped before it restarted: its partial outcome stands
        if task.state is TaskState.FAILED:
            message = f"not processed: its shard failed after {attempts} attempt(s): {activity_error(task)}"
            shard_failed(shard, KIND_SHARD_FAILED, message)
            return
        outcome = ShardOutcome.from_dict(task.result)
        error = outcome.shard_error
        if error is not None:  # a permanent problem, reported at once (no retries)
            shard_failed(shard, error.kind, f"not processed: its shard plan cannot be read: {error.message}")
            return
        # Where NotifyCompletion finds the shard's results: counts and names, never the results.
        outcomes[shard] = ShardRecord.of(outcome)
        progress.add(outcome.progress or {})

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
                shown.add(state.counts)
        status = {**custom_status(stage, shown, run=run), "controls": controls.to_status()}
        if review is not None:
            status["review"] = review
        context.set_custom_status(status)

    def fan_out(first: int, last: int) -> Generator[Any, Any, list[int]]:
        """Shards ``first..last-1`` as lanes; returns the shards that never started."""
        never = yield from bounded_fan_out(
            context,
            list(range(first, last)),
            start,
            request.max_concurrency,
            lambda position, task, attempts: done(first + position, task, attempts),
            retry=fan_out_retry(batch.retry),
            requeue=lambda position, task: requeue(first + position, task),
            on_progress=publish,
            stop_when=cancel,
            controls=controls,
        )
        return [first + position for position in never]

    never_started: list[int] = []
    rest_from = 0
    rejected: ReviewDecision | None = None
    sample_shards = min(plan.sample_shards, len(sizes)) if request.review else 0
    if sample_shards and request.review is not None and not plan.error:
        # Proof before the batch: the sample's shards first, then the proof sheet, then
        # a person's decision (orchestrators/review.py). Approved: the other shards run
        # and the sample's results count as they are (it is not rendered again).
        phase["stage"] = "proofing"
        review = {
            "sample": plan.sample,
            "sample_shards": sample_shards,
            "timeout_minutes": request.review.timeout_minutes,
            "on_timeout": request.review.on_timeout,
        }
        never_started += yield from fan_out(0, sample_shards)
        rest_from = sample_shards
        if not (cancel.is_completed or controls.stopped or never_started):
            # The time to decide counts from the moment the sample is done (the proof shows it).
            timeout_at = context.current_utc_datetime + timedelta(minutes=request.review.timeout_minutes)
            sheet = ProofSheetInput(
                instance_id=context.instance_id,
                run=run,
                request=request,
                plan_folder=plan.plan,
                shard_outcomes=tuple(outcomes[:sample_shards]),
                total=progress.total,
                timeout_at=timeout_at.isoformat(),
                on_timeout=request.review.on_timeout,
            )
            try:
                written = yield context.call_activity_with_retry(WRITE_PROOF_SHEET, sdk_retry, sheet.to_dict())
            except Exception as error:
                why_not = f"the proof sheet could not be written: {activity_error_text(error)}"
                proof = ProofSheetResult(None, error=why_not)
            else:
                proof = ProofSheetResult.from_dict(written)
            review.update({"proof": proof.proof, "timeout_at": timeout_at.isoformat()})
            if proof.error:
                review["proof_error"] = proof.error
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
                record = RecordDecisionInput(
                    container=request.output_container,
                    blob=review_blob_name(request.output_prefix, context.instance_id, run),
                    decision=decision,
                )
                try:
                    # First wins: a person who decided just before the timeout keeps the decision.
                    recorded = yield context.call_activity_with_retry(
                        RECORD_REVIEW_DECISION, sdk_retry, record.to_dict()
                    )
                    decision = normalise_decision(recorded, context.current_utc_datetime)
                except Exception:
                    pass  # storage stayed down: the timeout's own decision applies
            if decision is not None:
                review.update(decision.to_dict())
                if decision.decision == REJECTED:
                    rejected = decision
        phase["stage"] = "processing"
    if rest_from < len(sizes):
        if rejected is None and not cancel.is_completed and not controls.stopped:
            never_started += yield from fan_out(rest_from, len(sizes))
        else:
            never_started += list(range(rest_from, len(sizes)))
    why = None  # a cancel, unless the run's proof was rejected
    if rejected is not None and not cancel.is_completed:
        why = f"the run's proof was rejected ({rejected.by})" + (f": {rejected.reason}" if rejected.reason else "")
    for shard in never_started:
        progress.not_started += sizes[shard]
        unstarted = UnprocessedShard(shard_plan_blob(plan.plan, shard), sizes[shard], message=why)
        outcomes[shard] = ShardRecord(not_started=unstarted)
    progress.in_flight = 0

    listing_error = plan.error
    status: BatchStatus
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
    notify = NotifyInput(
        instance_id=context.instance_id,
        run=run,
        request=request,
        plan_folder=plan.plan,
        extra_blob=plan.extra,
        shard_outcomes=tuple(outcomes),
        progress=progress.to_dict(),
        status=status,
        started=started,
        finished=finished,
        listing_error=listing_error,
        review=review,
    )
    try:
        notified = yield context.call_activity_with_retry(NOTIFY_COMPLETION, sdk_retry, notify.to_dict())
    except Exception as error:
        # Storage stayed down through every retry: the images are done, so the run still
        # ends with its counts; the output says why there is no manifest (re-submitting the
        # batch writes it, skipping every image that is already done).
        location = f"{request.output_container}/{manifest_blob_name(request.output_prefix, context.instance_id, run)}"
        summary = BatchSummary(
            batch_id=context.instance_id,
            run=run,
            status=status,
            counts=progress.to_dict(),
            failure_percent=round(failure_percent(progress), 3),
            started=started,
            finished=finished,
            manifest=None,
            report=None,
            manifest_error=manifest_error_text(location, activity_error_text(error)),
        )
    else:
        summary = BatchSummary.from_dict(notified)
    context.set_custom_status(custom_status("done", progress, summary.manifest, run=run))
    if status == "failed":
        reason = listing_error or (
            f"{progress.failed} of {progress.total} images failed "
            f"({failure_percent(progress):.1f}% > {request.tolerated_failure_percent:g}% tolerated)"
        )
        where = f"Manifest: {summary.manifest}" if summary.manifest else summary.manifest_error
        raise BatchFailedError(f"Batch failed: {reason}. {where}")
    return summary.to_dict()


@bp.function_name(IMAGE_PROCESSING_ORCHESTRATOR)
@bp.orchestration_trigger(context_name="context")
def ImageProcessing_Orchestrator(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any]]:
    return (yield from orchestrate(context))
