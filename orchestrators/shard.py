"""ImageProcessing_Shard: one shard of a batch, one image at a time.

A shard is a lane: it runs its images one after another (window of one), so
the parent can keep exactly ``max_concurrency`` lanes busy and replace a
finished lane at once -- nobody waits for a shard's slowest image.

Every image completion is an episode that replays the whole execution's
history, so a lane's cost per image grows with the images already in that
history. The lane therefore works in *segments* of :data:`SEGMENT_SIZE`
images and continues as new after each: an execution loads only its
segment's images (``LoadShard`` with a start and a count), writes the
segment's results to their own blob (``RecordShardResults``) and carries
only counts into the next execution. No message of a shard grows with the
shard: on the Azure Storage provider, messages over 45 KB and table
properties over 60 KB are moved to blobs at extra cost per episode. DTFx
keeps the parent link across ContinueAsNew and tells the parent only when the
last execution ends.

**A smaller bound.** ``LoadShard`` also reads the run's current ``max_concurrency``
(``controls.json``); a lane whose ``slot`` (given by the parent) is at or above it parks
at its next segment boundary: it returns its state (next image, segment, counts) with
the rest marked "not started from", and the parent starts it again from there when the
bound has room (``bounded_fan_out``'s ``requeue``). Only continuations park: a lane the
parent (re)started always does one segment first.

**Pause, cancel, deadline.** Before each image the lane checks the run's
deadline (``current_utc_datetime``, deterministic); ``ProcessImage`` checks
the run's hold marker and answers ``not_started`` without work. The lane then
asks ``ReadRunHold`` why: cancelled -> it starts nothing more; paused -> it
waits on a durable timer (``hold_poll_ms``: 5 s doubling to 60 s) or the
``resume`` event that ``POST .../resume`` raises to held lanes, whichever comes
first, and continues as new carrying the segment's finished results, so a paused
lane's history never grows (each look is one small execution: ``ReadRunHold`` +
one wait, no ``ProcessImage``); resumed -> it goes on with the image it did not start.

Deterministic like every orchestrator: inputs arrive in the orchestration
input (``imagebatch.messages.ShardInput``: retry policy, blob names of its plan and
of its results' folder; the state of earlier executions).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
from azure.durable_functions.models.Task import TaskState

from imagebatch.function_names import (
    LOAD_SHARD,
    PROCESS_IMAGE,
    READ_RUN_HOLD,
    RECORD_SHARD_RESULTS,
    SHARD_ORCHESTRATOR,
)
from imagebatch.messages import (
    ImageResult,
    LoadShardInput,
    ProcessImageInput,
    RecordResultsInput,
    RecordResultsResult,
    RunHold,
    RunHoldInput,
    ShardInput,
    ShardOutcome,
    ShardSegment,
    ShardState,
)
from imagebatch.naming import segment_part_blob
from imagebatch.results import KIND_TRANSIENT_EXHAUSTED, Progress, failed_result, not_started_result, one_line
from imagebatch.specs import SourceBlob
from orchestrators.blueprint import bp
from orchestrators.bounded_fan_out import bounded_fan_out
from orchestrators.retry import fan_out_retry, retry_policy

# Images per execution before the lane continues as new. Measured with
# bench/replay.py: lane replay CPU per image is about linear in this number,
# while each new execution costs a couple of episodes more (5 / 10 / 20 compared in
# docs/benchmarks.md, "With Azure's replay cost").
SEGMENT_SIZE = 10
# A lane held by a pause looks again after this long, doubling up to the cap (ms).
HOLD_POLL_MS = (5000, 60000)
# Raised to held lanes by POST .../resume, so they look again at once instead of at their next poll.
RESUME_EVENT = "resume"
DEADLINE_MESSAGE = "the run's deadline passed before this image started"


def hold_delay(polls: int, setting: Sequence[int] | None = None) -> timedelta:
    first, cap = (int(v) for v in (setting or HOLD_POLL_MS))
    return timedelta(milliseconds=min(cap, first * 2 ** min(polls, 20)))


def wait_held(context: Any, delay: timedelta) -> Generator[Any, Any, None]:
    """A held lane waits for its next look: the backoff timer, or ``resume`` raised by
    ``POST .../resume`` to the lanes whose status says paused, whichever comes first.

    Safe on the shim: nothing else is pending here (the lane's window has drained and
    ``ReadRunHold`` completed), so the SDK and the shim wait for the same WhenAny, and
    the lane continues as new right after. An event that finds the lane busy stays
    unconsumed; at worst it ends a later hold's wait early (one extra look)."""
    timer = context.create_timer(context.current_utc_datetime + delay)
    resumed = context.wait_for_external_event(RESUME_EVENT)
    yield context.task_any([timer, resumed])
    if not timer.is_completed:
        timer.cancel()


def activity_error_text(error: BaseException) -> str:
    """The extension reports activity failures as "<Reason> \\n <Details>"; keep the
    reason without the "Activity function 'X' failed: " preamble."""
    reason = str(error).split(" \n ", 1)[0].strip()
    return reason.split("failed: ", 1)[-1]


def activity_error(task: Any) -> str:
    return activity_error_text(task.result)


def process_shard(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any] | None]:
    lane = ShardInput.from_dict(context.get_input())
    sdk_retry = retry_policy(lane.retry)
    segment_size = lane.segment_size or SEGMENT_SIZE
    # What earlier executions of this lane did: counts and blob names only.
    state = lane.state or ShardState(next=0, segment=0)
    deadline = lane.deadline
    # Only a lane whose images check a hold marker is ever held (ProcessImage answers not_started).
    hold_marker = RunHoldInput(lane.container, lane.cancel_blob or "")

    def expired() -> bool:
        return deadline is not None and context.current_utc_datetime >= deadline

    def continue_held(polls: int | None, carried: Sequence[ImageResult | None]) -> None:
        """Continue as new at the same segment, its finished results carried; ``polls``
        set: still held by a pause (the next execution looks before it loads anything)."""
        held = replace(state, carried=tuple(carried), held_polls=polls)
        context.continue_as_new(replace(lane, state=held).to_dict())

    hold = None
    if state.held_polls is not None and not expired():
        # Held by a pause: look again before loading or starting anything.
        looked = yield context.call_activity_with_retry(READ_RUN_HOLD, sdk_retry, hold_marker.to_dict())
        hold = RunHold.from_dict(looked).hold
        if hold == "paused":
            polls = state.held_polls
            context.set_custom_status({"progress": dict(state.held_progress or {}), "paused": True})
            yield from wait_held(context, hold_delay(polls, lane.hold_poll_ms))
            continue_held(polls + 1, state.carried or ())
            return None
    wanted = LoadShardInput(lane.container, lane.plan_blob, state.next, segment_size, lane.controls_blob)
    loaded = ShardSegment.from_dict((yield context.call_activity_with_retry(LOAD_SHARD, sdk_retry, wanted.to_dict())))
    if loaded.error is not None:
        # The plan can never be read (gone, access denied): retrying the shard cannot help.
        return ShardOutcome(lane.shard, shard_error=loaded.error).to_dict()
    request = loaded.request
    assert request is not None, "ShardSegment.from_dict requires the request unless there is an error"
    segment: tuple[SourceBlob, ...] = loaded.images
    total = loaded.total
    done_before = Progress.from_dict({**state.counts, "total": total})
    bound = loaded.max_concurrency
    continuing = lane.state is not None and not state.fresh and not state.carried
    if continuing and bound is not None and lane.slot >= bound and not expired():
        # The run's bound was lowered below this lane's slot: park at this segment boundary
        # (nothing of the segment started). The parent starts the shard again from here
        # when there is room; a lane always finishes one segment per start, so a bound the
        # parent has not applied yet cannot make it park forever.
        progress = Progress.from_dict(done_before.to_dict())
        progress.not_started += total - state.next  # counted only if it is never restarted
        context.set_custom_status({"progress": done_before.to_dict(), "parked": True})
        parked = ShardOutcome(
            lane.shard,
            parked=state.parked(),
            progress=progress.to_dict(),
            parts=state.segment,
            segment_size=segment_size,
            inline=state.inline,
            not_started_from=state.next,
        )
        return parked.to_dict()
    # bounded_fan_out calls done() once per image; a pause carries finished ones across executions.
    carried = state.carried or ()
    results: list[ImageResult | None] = [carried[i] if i < len(carried) else None for i in range(len(segment))]
    todo = [i for i, result in enumerate(results) if result is None]
    cancelled = hold == "cancelled"  # seen by the look above
    hit_marker: int | None = None  # the image ProcessImage did not start (the hold marker)
    reason = "cancelled"
    retrying: dict[int, dict[str, Any]] = {}

    def counts_so_far() -> Progress:
        progress = Progress.from_dict(done_before.to_dict())
        for result in results:
            if result is not None:
                progress.record({"status": result.status})
        return progress

    def publish() -> None:
        # The shard's counts so far and its retries in progress, read by GET /api/batches/{id}
        # (custom status is written once per episode, whatever the number of calls).
        status: dict[str, Any] = {"progress": counts_so_far().to_dict()}
        if retrying:
            status["retrying"] = list(retrying.values())
        context.set_custom_status(status)

    def on_retry(index: int, task: Any, attempts: int) -> None:
        retrying[index] = {
            "image": segment[index].name,
            "attempts": attempts,
            "error": one_line(activity_error(task)),
            "at": context.current_utc_datetime.isoformat(),
        }
        publish()

    publish()

    def start(image: SourceBlob) -> Any:
        # Plain call_activity: bounded_fan_out retries it itself (see its docstring).
        work = ProcessImageInput(
            source_container=request.source_container,
            source=image,
            output_container=request.output_container,
            output_prefix=request.output_prefix,
            spec=request.spec,
            cancel_blob=lane.cancel_blob,
        )
        return context.call_activity(PROCESS_IMAGE, work.to_dict())

    def done(position: int, task: Any, attempts: int) -> None:
        nonlocal hit_marker
        index = todo[position]
        retrying.pop(index, None)
        if task.state is TaskState.FAILED:
            message = f"gave up after {attempts} attempt(s): {activity_error(task)}"
            result = ImageResult.from_dict(failed_result(segment[index].name, KIND_TRANSIENT_EXHAUSTED, message))
        else:
            result = ImageResult.from_dict(task.result)
            if result.status == "not_started":
                # ProcessImage found the run's hold marker: this lane starts nothing more for
                # now; ReadRunHold says below whether that is a pause or a cancel.
                hit_marker = index
                return
        results[index] = result
        publish()

    def retried(position: int, task: Any, attempts: int) -> None:
        on_retry(todo[position], task, attempts)

    never_started = yield from bounded_fan_out(
        context,
        [segment[i] for i in todo],
        start,
        1,  # a lane: one image at a time (the parent bounds the lanes)
        done,
        retry=fan_out_retry(lane.retry),
        should_stop=lambda: cancelled or hit_marker is not None or expired(),
        on_retry=retried,
    )
    if hit_marker is not None and not cancelled:
        looked = yield context.call_activity_with_retry(READ_RUN_HOLD, sdk_retry, hold_marker.to_dict())
        hold = RunHold.from_dict(looked).hold
        if hold != "cancelled" and not expired():
            # Paused (or resumed already): nothing of this segment is recorded yet; the
            # next execution starts again at the first image without a result.
            if hold == "paused":
                state = replace(state, held_progress=counts_so_far().to_dict())
                context.set_custom_status({"progress": dict(state.held_progress or {}), "paused": True})
                yield from wait_held(context, hold_delay(0, lane.hold_poll_ms))
            continue_held(1 if hold == "paused" else None, results)
            return None
        cancelled = hold == "cancelled"
    if not cancelled and expired():
        reason = "deadline"
    stopped = cancelled or reason == "deadline"
    message = DEADLINE_MESSAGE if reason == "deadline" else None
    for index in [*([hit_marker] if hit_marker is not None else []), *(todo[p] for p in never_started)]:
        name = segment[index].name
        unstarted = not_started_result(name, message) if message else not_started_result(name)
        results[index] = ImageResult.from_dict(unstarted)
    cancelled = stopped

    finished = tuple(result for result in results if result is not None)
    inline = dict(state.inline)
    record = RecordResultsInput(request.output_container, segment_part_blob(lane.parts_prefix, state.segment), finished)
    record_error: str | None
    try:
        written = yield context.call_activity_with_retry(RECORD_SHARD_RESULTS, sdk_retry, record.to_dict())
    except Exception as error:
        record_error = activity_error_text(error)
    else:
        refusal = RecordResultsResult.from_dict(written).error
        record_error = refusal.message if refusal is not None else None
    if record_error:
        # The images are done and their renditions written; losing their records would
        # make the manifest call them failed. Carry them instead (rare, so the messages
        # only grow when storage misbehaves).
        inline[str(state.segment)] = finished

    progress = counts_so_far()
    after = state.next + len(segment)
    if cancelled and after < total:
        progress.not_started += total - after  # NotifyCompletion names them from the plan
    if not cancelled and after < total:
        counts = {k: getattr(progress, k) for k in ("done", "skipped", "failed", "not_started")}
        following = ShardState(next=after, segment=state.segment + 1, counts=counts, inline=inline)
        context.continue_as_new(replace(lane, state=following).to_dict())
        return None
    context.set_custom_status({"progress": progress.to_dict()})
    outcome = ShardOutcome(
        lane.shard,
        progress=progress.to_dict(),
        parts=state.segment + 1,
        segment_size=segment_size,
        inline=inline,
        not_started_from=after if cancelled and after < total else None,
    )
    return outcome.to_dict()


@bp.function_name(SHARD_ORCHESTRATOR)
@bp.orchestration_trigger(context_name="context")
def ImageProcessing_Shard(context: df.DurableOrchestrationContext) -> Generator[Any, Any, dict[str, Any] | None]:
    return (yield from process_shard(context))
