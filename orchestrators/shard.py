"""ImageProcessing_Shard: one shard of a batch, one image at a time.

A shard is a lane: it runs its images one after another (window of one), so
the parent can keep exactly ``max_concurrency`` lanes busy and replace a
finished lane at once -- nobody waits for a shard's slowest image. Its
history holds only its own images (about four events each), so replays stay
cheap however large the batch.

Deterministic like every orchestrator: inputs arrive in the orchestration
input (request, retry policy, blob names of its plan and results).
"""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df
from azure.durable_functions.models.Task import TaskState

from imagebatch.results import KIND_TRANSIENT_EXHAUSTED, Progress, failed_result
from imagebatch.specs import BatchRequest
from orchestrators.blueprint import bp
from orchestrators.bounded_fan_out import RetryPolicy, bounded_fan_out
from orchestrators.retry import retry_policy

SHARD_ORCHESTRATOR_NAME = "ImageProcessing_Shard"


def activity_error_text(error: BaseException) -> str:
    """The extension reports activity failures as "<Reason> \\n <Details>"; keep the
    reason without the "Activity function 'X' failed: " preamble."""
    reason = str(error).split(" \n ", 1)[0].strip()
    return reason.split("failed: ", 1)[-1]


def activity_error(task: Any) -> str:
    return activity_error_text(task.result)


def process_shard(context: df.DurableOrchestrationContext):
    payload: dict[str, Any] = context.get_input()
    sdk_retry = retry_policy(payload.get("retry"))
    plan = yield context.call_activity_with_retry(
        "LoadShard", sdk_retry, {"container": payload["container"], "blob": payload["plan_blob"]}
    )
    request = BatchRequest.from_dict(plan["request"])
    images: list[dict[str, Any]] = plan["images"]
    results: list[dict[str, Any] | None] = [None] * len(images)
    progress = Progress(total=len(images))

    def start(image: dict[str, Any]) -> Any:
        # Plain call_activity: bounded_fan_out retries it itself (see its docstring).
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
            message = f"gave up after {attempts} attempt(s): {activity_error(task)}"
            result = failed_result(images[index]["name"], KIND_TRANSIENT_EXHAUSTED, message)
        else:
            result = task.result
        results[index] = result
        progress.record(result)

    yield from bounded_fan_out(
        context,
        images,
        start,
        int(payload.get("window", 1)),
        done,
        retry=RetryPolicy.from_dict(payload.get("retry")),
    )
    try:
        yield context.call_activity_with_retry(
            "RecordShardResults",
            sdk_retry,
            {"container": request.output_container, "blob": payload["results_blob"], "results": results},
        )
    except Exception as error:
        # The images are done and their renditions written; losing their records would
        # make the manifest call them failed. Hand them to the parent instead (rare, so
        # the parent's history only grows when storage misbehaves).
        return {"shard": payload["shard"], "progress": progress.to_dict(), "results": results,
                "record_error": activity_error_text(error)}
    return {"shard": payload["shard"], "progress": progress.to_dict()}


@bp.orchestration_trigger(context_name="context")
def ImageProcessing_Shard(context: df.DurableOrchestrationContext):
    return (yield from process_shard(context))
