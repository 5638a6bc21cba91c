"""ImageProcessing_Shard: one shard of a batch, one image at a time.

A shard is a lane: it runs its images one after another (window of one), so
the parent can keep exactly ``max_concurrency`` lanes busy and replace a
finished lane at once -- nobody waits for a shard's slowest image.

Every image completion is an episode that replays the whole execution's
history, so a lane's cost per image grows with the images already in that
history. The lane therefore *continues as new* every
:data:`SEGMENT_SIZE` images, carrying its plan and the results so far in its
input: an execution's history never holds more than ``SEGMENT_SIZE`` images
(about four events each), whatever the shard size. DTFx keeps the parent link
across ContinueAsNew and tells the parent only when the last execution ends.

Deterministic like every orchestrator: inputs arrive in the orchestration
input (request, retry policy, blob names of its plan and results).
"""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df
from azure.durable_functions.models.Task import TaskState

from imagebatch.results import KIND_TRANSIENT_EXHAUSTED, Progress, failed_result, not_started_result, one_line
from imagebatch.specs import BatchRequest
from orchestrators.blueprint import bp
from orchestrators.bounded_fan_out import RetryPolicy, bounded_fan_out
from orchestrators.retry import retry_policy

SHARD_ORCHESTRATOR_NAME = "ImageProcessing_Shard"
# Images per execution before the lane continues as new. Measured with
# bench/replay.py: lane replay CPU per image is about linear in this number,
# while each new execution costs a couple of episodes more.
SEGMENT_SIZE = 10


def activity_error_text(error: BaseException) -> str:
    """The extension reports activity failures as "<Reason> \\n <Details>"; keep the
    reason without the "Activity function 'X' failed: " preamble."""
    reason = str(error).split(" \n ", 1)[0].strip()
    return reason.split("failed: ", 1)[-1]


def activity_error(task: Any) -> str:
    return activity_error_text(task.result)


def _progress(results: list[dict[str, Any]], total: int) -> Progress:
    progress = Progress(total=total)
    for result in results:
        progress.record(result)
    return progress


def process_shard(context: df.DurableOrchestrationContext):
    payload: dict[str, Any] = context.get_input()
    sdk_retry = retry_policy(payload.get("retry"))
    carried: dict[str, Any] | None = payload.get("carried")
    if carried is None:
        loaded = yield context.call_activity_with_retry(
            "LoadShard", sdk_retry, {"container": payload["container"], "blob": payload["plan_blob"]}
        )
        if "error" in loaded:
            # The plan can never be read (gone, access denied): retrying the shard cannot help.
            return {"shard": payload["shard"], "shard_error": loaded["error"]}
        carried = {"request": loaded["request"], "images": loaded["images"], "results": []}
    request = BatchRequest.from_dict(carried["request"])
    images: list[dict[str, Any]] = carried["images"]
    finished: list[dict[str, Any]] = carried["results"]
    segment = images[len(finished) : len(finished) + int(payload.get("segment_size") or SEGMENT_SIZE)]
    results: list[dict[str, Any]] = [{} for _ in segment]  # bounded_fan_out calls done() once per image
    spec = request.spec.to_dict()
    cancelled = False
    retrying: dict[int, dict[str, Any]] = {}

    def publish() -> None:
        # The shard's counts so far and its retries in progress, read by GET /api/batches/{id}
        # (custom status is written once per episode, whatever the number of calls).
        status: dict[str, Any] = {"progress": _progress(finished + [r for r in results if r], len(images)).to_dict()}
        if retrying:
            status["retrying"] = list(retrying.values())
        context.set_custom_status(status)

    def on_retry(index: int, task: Any, attempts: int) -> None:
        retrying[index] = {
            "image": segment[index]["name"],
            "attempts": attempts,
            "error": one_line(activity_error(task)),
            "at": context.current_utc_datetime.isoformat(),
        }
        publish()

    publish()

    def start(image: dict[str, Any]) -> Any:
        # Plain call_activity: bounded_fan_out retries it itself (see its docstring).
        return context.call_activity(
            "ProcessImage",
            {
                "source_container": request.source_container,
                "source": image,
                "output_container": request.output_container,
                "output_prefix": request.output_prefix,
                "spec": spec,
                **({"cancel_blob": payload["cancel_blob"]} if payload.get("cancel_blob") else {}),
            },
        )

    def done(index: int, task: Any, attempts: int) -> None:
        nonlocal cancelled
        retrying.pop(index, None)
        if task.state is TaskState.FAILED:
            message = f"gave up after {attempts} attempt(s): {activity_error(task)}"
            results[index] = failed_result(segment[index]["name"], KIND_TRANSIENT_EXHAUSTED, message)
        else:
            results[index] = task.result
            # ProcessImage found the run's cancel marker: this lane starts nothing more.
            cancelled = cancelled or task.result.get("status") == "not_started"
        publish()

    never_started = yield from bounded_fan_out(
        context,
        segment,
        start,
        int(payload.get("window", 1)),
        done,
        retry=RetryPolicy.from_dict(payload.get("retry")),
        should_stop=lambda: cancelled,
        on_retry=on_retry,
    )
    for index in never_started:
        results[index] = not_started_result(segment[index]["name"])
    finished = finished + results
    if cancelled:
        finished += [not_started_result(image["name"]) for image in images[len(finished) :]]
    if len(finished) < len(images):
        context.continue_as_new({**payload, "carried": {**carried, "results": finished}})
        return None

    progress = _progress(finished, len(images))
    context.set_custom_status({"progress": progress.to_dict()})
    try:
        recorded = yield context.call_activity_with_retry(
            "RecordShardResults",
            sdk_retry,
            {"container": request.output_container, "blob": payload["results_blob"], "results": finished},
        )
        record_error = recorded["error"]["message"] if "error" in recorded else None
    except Exception as error:
        record_error = activity_error_text(error)
    if record_error:
        # The images are done and their renditions written; losing their records would
        # make the manifest call them failed. Hand them to the parent instead (rare, so
        # the parent's history only grows when storage misbehaves).
        return {"shard": payload["shard"], "progress": progress.to_dict(), "results": finished,
                "record_error": record_error}
    return {"shard": payload["shard"], "progress": progress.to_dict()}


@bp.orchestration_trigger(context_name="context")
def ImageProcessing_Shard(context: df.DurableOrchestrationContext):
    return (yield from process_shard(context))
