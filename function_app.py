"""Composition root of the function app: one ``df.DFApp``, the orchestrator
and activity blueprints, and the HTTP API.

HTTP functions stay thin: validation, status mapping and naming live in the
Azure-free ``imagebatch`` package; the orchestration input is a
``imagebatch.messages.BatchInput`` (sent as its ``to_dict()``, read back with
``from_dict``), and the orchestrator is named by ``imagebatch.function_names``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import uuid
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from activities import bp as activities_bp
from imagebatch.batch_api import (
    accepted_body,
    batch_links,
    batches_root,
    control_links,
    live_progress,
    orchestration_input,
    review_links,
)
from imagebatch.batch_request import (
    RequestValidationError,
    parse_batch_request,
    parse_control_update,
    parse_review_decision,
)
from imagebatch.batch_status import friendly_status, is_active
from imagebatch.function_names import IMAGE_PROCESSING_ORCHESTRATOR
from imagebatch.jsonvalue import json_object
from imagebatch.messages import BatchInput, MessageError
from imagebatch.naming import (
    batch_folder,
    cancel_blob_name,
    instance_id_error,
    manifest_blob_name,
    new_run_id,
    review_blob_name,
    shard_instance_prefix,
    source_list_blob,
)
from imagebatch.report import report_blob_name
from imagebatch.retention import HistoryRetention
from imagebatch.settings import AppSettings
from imagebatch.specs import BatchRequest
from orchestrators import bp as orchestrators_bp
from orchestrators.controls import control_event_name
from orchestrators.image_processing import CANCEL_EVENT
from orchestrators.review import APPROVED, BY_REVIEWER, REJECTED, REVIEW_EVENT, decision_record
from orchestrators.shard import RESUME_EVENT
from storage import plans, reports, runs
from storage.clients import BlobService, interactive_client
from storage.controls import ControlConflict, controls_blob_name, update_controls
from storage.errors import describe
from storage.review import record_decision

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(orchestrators_bp)
app.register_functions(activities_bp)

log = logging.getLogger(__name__)


def _json(status: int, body: dict) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")


def _runtime_status(status: df.DurableOrchestrationStatus) -> str | None:
    value = status.runtime_status
    return None if value is None else getattr(value, "value", str(value))


ACTIVE_SHARD_STATUSES = [
    df.OrchestrationRuntimeStatus.Running,
    df.OrchestrationRuntimeStatus.Pending,
    df.OrchestrationRuntimeStatus.ContinuedAsNew,
]


def _error(status: int, error: str, field: str, message: str) -> func.HttpResponse:
    return _json(status, {"error": error, "message": message, "errors": [{"field": field, "message": message}]})


def _not_found(instance_id: str) -> func.HttpResponse:
    return _error(404, "not_found", "id", f"no batch with id '{instance_id}'")


def _storage_unavailable(field: str, message: str) -> func.HttpResponse:
    """A request refused because storage did not answer; nothing was done, try again."""
    response = _error(503, "storage_unavailable", field, message)
    response.headers["Retry-After"] = "10"
    return response


def _batch_input(status: df.DurableOrchestrationStatus) -> BatchInput | None:
    """The run's orchestration input, or None when it cannot be read as one (the routes
    then treat the run as one they cannot act on)."""
    try:
        return BatchInput.from_dict(json_object(status.input_))
    except MessageError as error:
        log.warning("Batch %s: its orchestration input is not a BatchInput: %s", status.instance_id, error)
        return None


async def _active_run(
    client: df.DurableOrchestrationClient, instance_id: str
) -> tuple[df.DurableOrchestrationStatus | None, str | None, BatchRequest | None, str | None]:
    """``(status, runtime status, request, run id)`` of a batch's latest run (status
    None when there is no such batch), for the routes that act on a running run."""
    status = await _status(client, instance_id)
    if not status:
        return None, None, None, None
    batch = _batch_input(status)
    return status, _runtime_status(status), batch.request if batch else None, batch.run if batch else None


async def _status(client: df.DurableOrchestrationClient, instance_id: str) -> df.DurableOrchestrationStatus | None:
    # An id that could never name a batch (e.g. with '#' or '?') is unknown, and must not
    # reach the SDK, which pastes it unescaped into the management URL.
    if instance_id_error(instance_id):
        return None
    status = await client.get_status(instance_id, show_input=True)
    return status if status and _runtime_status(status) else None


@app.route(route="batches", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@app.durable_client_input(client_name="client")
async def start_batch(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Validate the request, then start a new run of ImageProcessing_Orchestrator.

    A client-chosen ``batch_id`` becomes the instance id; starting it while a run
    is still active answers 409, also when two starts race (the extension refuses
    the second ``start_new``; that refusal is answered as the conflict it is).
    """
    try:
        request = parse_batch_request(req.get_body(), req.headers.get("content-type"))
    except RequestValidationError as error:
        return _json(error.status, error.to_json())

    if request.batch_id:
        existing = await client.get_status(request.batch_id)
        if existing and is_active(_runtime_status(existing)):
            conflict = RequestValidationError.conflict(request.batch_id)
            return _json(conflict.status, conflict.to_json())

    run = new_run_id(datetime.now(UTC), uuid.uuid4().hex)
    instance_id = request.batch_id or uuid.uuid4().hex
    if request.source_blobs is not None:
        # Stored once: up to 10,000 names must not travel through every Durable message.
        listed = source_list_blob(request.output_prefix, instance_id, run)
        try:
            service, container = _interactive_storage(), request.output_container
            await asyncio.wait_for(
                asyncio.to_thread(plans.write_source_list, service, container, listed, list(request.source_blobs)), 30
            )
        except Exception as error:
            message = f"cannot store the source list, nothing was started; try again: {describe(error)}"
            return _storage_unavailable("source.blobs", message)
        request = request.with_stored_list(listed)
    hold_poll = os.environ.get("HOLD_POLL_MS", "").strip()  # "first,cap": how often a paused lane looks again
    polls = [int(v) for v in hold_poll.split(",")] if hold_poll else []
    hold_poll_ms = (polls[0], polls[1] if len(polls) > 1 else polls[0]) if polls else None
    orchestration = orchestration_input(request, AppSettings.from_env(), run, hold_poll_ms=hold_poll_ms)
    try:
        instance_id = await client.start_new(IMAGE_PROCESSING_ORCHESTRATOR, instance_id, orchestration.to_dict())
    except Exception:
        if request.batch_id:
            existing = await client.get_status(request.batch_id)
            if existing and is_active(_runtime_status(existing)):
                conflict = RequestValidationError.conflict(request.batch_id)
                return _json(conflict.status, conflict.to_json())
        raise
    log.info("Started batch %s run %s", instance_id, run)
    body = accepted_body(batches_root(req.url), instance_id, run)
    return func.HttpResponse(
        json.dumps(body),
        status_code=202,
        mimetype="application/json",
        headers={"Location": body["statusQueryGetUri"], "Retry-After": "5"},
    )


@app.route(route="batches/{id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@app.durable_client_input(client_name="client")
async def get_batch(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """A friendly status: the latest run's state and live progress, its manifest
    and report, and the batch's earlier runs."""
    instance_id = req.route_params.get("id", "")
    status = await _status(client, instance_id)
    if not status:
        return _not_found(instance_id)
    runtime = _runtime_status(status) or "Unknown"
    custom = status.custom_status if isinstance(status.custom_status, dict) else {}
    run = custom.get("run")
    progress = None
    if is_active(runtime) and run and isinstance(custom.get("progress"), dict):
        # The parent was read first (above), so a shard listed here is not counted twice.
        shards = await client.get_status_by(
            instance_id_prefix=shard_instance_prefix(instance_id, run), runtime_status=ACTIVE_SHARD_STATUSES
        )
        progress = live_progress(custom["progress"], [shard.custom_status for shard in shards])
    batch = _batch_input(status)
    request = batch.request if batch else None
    try:
        # Best effort: a status answer must not wait on (or fail with) an unwell storage account.
        earlier = await asyncio.wait_for(asyncio.to_thread(_earlier_runs, request, instance_id, run), timeout=5)
    except Exception as error:
        log.warning("Batch %s: cannot list earlier runs: %s", instance_id, describe(error))
        earlier = None
    root = batches_root(req.url)
    body = friendly_status(
        instance_id=instance_id,
        runtime_status=runtime,
        custom_status=status.custom_status,
        output=status.output,
        created_time=status.created_time.isoformat() if status.created_time else None,
        last_updated_time=status.last_updated_time.isoformat() if status.last_updated_time else None,
        live=progress,
        links={**batch_links(root, instance_id), **review_links(root, instance_id)},
        earlier_runs=earlier,
    )
    proof = (body.get("review") or {}).get("proof")
    if isinstance(proof, str) and "/" in proof:
        # Where a browser opens the proof sheet (it needs read access to the containers).
        with contextlib.suppress(Exception):
            body["review"]["proof_url"] = reports.proof_sheet_url(_interactive_storage(), proof)
    return _json(200, body)


def _interactive_storage() -> BlobService:
    """A storage client for calls a person waits on over HTTP: one quick retry at most
    (the batch's own clients wait out longer trouble; a caller can simply ask again)."""
    return interactive_client(AppSettings.from_env().storage_connection)


# (container, prefix, batch, run) -> the finished runs found. A run's earlier runs cannot
# change while it is the batch's run (a new start is refused with 409 until it ends), so each
# worker lists them once per run, not on every status poll.
_EARLIER_RUNS: dict[tuple[str, str, str, str | None], list[str]] = {}
_EARLIER_RUNS_KEPT = 512


def _earlier_runs(request: BatchRequest | None, instance_id: str, current_run: str | None) -> list[dict[str, str]]:
    """The batch's other finished runs (oldest first), from their manifests in storage."""
    if request is None or not request.output_container:
        return []
    container, prefix = request.output_container, request.output_prefix
    key = (container, prefix, instance_id, current_run)
    found = _EARLIER_RUNS.get(key)
    if found is None:
        found = runs.finished_runs(_interactive_storage(), container, batch_folder(prefix, instance_id) + "runs/")
        if current_run:
            if len(_EARLIER_RUNS) >= _EARLIER_RUNS_KEPT:
                _EARLIER_RUNS.pop(next(iter(_EARLIER_RUNS)))  # the oldest entry
            _EARLIER_RUNS[key] = found
    return [
        {
            "run": run,
            "manifest": f"{container}/{manifest_blob_name(prefix, instance_id, run)}",
            "report": f"{container}/{report_blob_name(prefix, instance_id, run)}",
        }
        for run in found
        if run != current_run
    ]


@app.route(route="batches/{id}/cancel", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@app.durable_client_input(client_name="client")
async def cancel_batch(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Cancel the running run of a batch, gracefully.

    First the run's cancel marker is written: from then on no ProcessImage of the
    run starts an image, so every lane ends after the image in hand. Then the
    ``cancel`` event stops the parent from starting new lanes; it waits for the
    lanes, writes the manifest (status ``cancelled``: done / failed / not started)
    and completes. Unlike terminating the instance, nothing of the run is left
    running (terminating a parent never terminates its sub-orchestrations).
    """
    instance_id = req.route_params.get("id", "")
    status, runtime, request, run = await _active_run(client, instance_id)
    if not status:
        return _not_found(instance_id)
    if not is_active(runtime) or not run or request is None:
        message = f"batch '{instance_id}' is not running (it is {runtime}); only a running batch can be cancelled"
        return _error(409, "conflict", "id", message)
    marker = cancel_blob_name(request.output_prefix, instance_id, run)
    requested = {"batch_id": instance_id, "run": run, "requested": datetime.now(UTC).isoformat()}
    try:
        service, container = _interactive_storage(), request.output_container
        await asyncio.wait_for(asyncio.to_thread(runs.write_cancel_marker, service, container, marker, requested), 10)
    except Exception as error:
        # Without the marker the lanes would not stop: refuse rather than half-cancel.
        message = f"cannot write the run's cancel marker, nothing was cancelled; try again: {describe(error)}"
        return _storage_unavailable("id", message)
    try:
        await client.raise_event(instance_id, CANCEL_EVENT, requested)
    except Exception:
        # It ended between the two calls: the marker stopped whatever was left.
        log.info("Cancel of %s: the instance ended before the event was raised", instance_id)
    root = batches_root(req.url)
    body = {"id": instance_id, "run": run, "batchStatus": "Cancelling", **batch_links(root, instance_id)}
    return func.HttpResponse(
        json.dumps(body), status_code=202, mimetype="application/json", headers={"Location": body["statusQueryGetUri"]}
    )


# Stages in which a live control no longer means anything: the run is stopping or done.
_FINAL_STAGES = frozenset({"cancelling", "deadline_exceeded", "notifying", "done"})


async def _change_controls(
    req: func.HttpRequest, client: df.DurableOrchestrationClient, action: str, change: Any
) -> func.HttpResponse:
    """Pause, resume or re-bound a running run: update its control document (and its
    hold marker), then raise ``control-{version}`` with the whole new state on the parent
    (orchestrators/controls.py explains the versioned names)."""
    instance_id = req.route_params.get("id", "")
    status, runtime, request, run = await _active_run(client, instance_id)
    if not status:
        return _not_found(instance_id)
    custom = status.custom_status if isinstance(status.custom_status, dict) else {}
    stage = custom.get("stage")
    if not is_active(runtime) or not run or request is None or stage in _FINAL_STAGES:
        state = runtime if stage not in _FINAL_STAGES or not is_active(runtime) else f"{runtime}, {stage}"
        message = f"batch '{instance_id}' is not running (it is {state}); only a running batch can be {action}"
        return _error(409, "conflict", "id", message)
    prefix = request.output_prefix
    initial = {"version": 0, "paused": False, "max_concurrency": request.max_concurrency}
    stamp = {"batch_id": instance_id, "run": run, "requested": datetime.now(UTC).isoformat()}
    try:
        service, container = _interactive_storage(), request.output_container
        new = await asyncio.wait_for(
            asyncio.to_thread(
                update_controls,
                service,
                container,
                controls_blob=controls_blob_name(prefix, instance_id, run),
                marker_blob=cancel_blob_name(prefix, instance_id, run),
                initial=initial,
                change=change,
                stamp=stamp,
            ),
            15,
        )
    except ControlConflict as conflict:
        return _error(409, "conflict", "id", f"batch '{instance_id}' cannot be {action}: {conflict}")
    except Exception as error:
        message = f"cannot write the run's controls, nothing was {action}; try again: {describe(error)}"
        return _storage_unavailable("id", message)
    applied = custom.get("controls") or {}
    versions = [new["version"]]
    try:
        applied_version = int(applied.get("version", 0))
    except (TypeError, ValueError):
        applied_version = 0
    if applied_version < new["version"] - 1:
        # An earlier raise may have been lost: the version the run waits for gets the newest state.
        versions.insert(0, applied_version + 1)
    try:
        for version in versions:
            await client.raise_event(instance_id, control_event_name(version), new)
    except Exception:
        log.info("Control of %s: the instance ended before the event was raised", instance_id)
    if not new["paused"]:
        await _wake_held_lanes(client, instance_id, run)
    root = batches_root(req.url)
    body = {
        "id": instance_id,
        "run": run,
        "batchStatus": "Paused" if new["paused"] else "Running",
        "controls": new,
        **batch_links(root, instance_id),
        **control_links(root, instance_id),
    }
    return func.HttpResponse(
        json.dumps(body), status_code=202, mimetype="application/json", headers={"Location": body["statusQueryGetUri"]}
    )


async def _wake_held_lanes(client: df.DurableOrchestrationClient, instance_id: str, run: str) -> None:
    """After a resume: raise ``resume`` to the run's lanes that say they are held by the
    pause, so they look again now rather than at their next poll (up to a minute).
    Best effort: a lane that misses it looks again on its own timer."""
    try:
        shards = await client.get_status_by(
            instance_id_prefix=shard_instance_prefix(instance_id, run), runtime_status=ACTIVE_SHARD_STATUSES
        )
        held = [s.instance_id for s in shards if isinstance(s.custom_status, dict) and s.custom_status.get("paused")]
        await asyncio.gather(*(client.raise_event(lane, RESUME_EVENT, None) for lane in held), return_exceptions=True)
    except Exception as error:
        log.info("Resume of %s: could not wake the held lanes (they look again on their own): %s", instance_id, error)


@app.route(route="batches/{id}/pause", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@app.durable_client_input(client_name="client")
async def pause_batch(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Pause a running run: no new image starts (lanes finish the image in hand), until resumed."""
    return await _change_controls(req, client, "paused", lambda state: {**state, "paused": True})


@app.route(route="batches/{id}/resume", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@app.durable_client_input(client_name="client")
async def resume_batch(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Resume a paused run (a running one stays running)."""
    return await _change_controls(req, client, "resumed", lambda state: {**state, "paused": False})


@app.route(route="batches/{id}", methods=["PATCH"], auth_level=func.AuthLevel.FUNCTION)
@app.durable_client_input(client_name="client")
async def update_batch(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """``{"max_concurrency": M}``: a new bound for the running run, applied at once."""
    try:
        value = parse_control_update(req.get_body(), req.headers.get("content-type"))
    except RequestValidationError as error:
        return _json(error.status, error.to_json())
    return await _change_controls(req, client, "updated", lambda state: {**state, "max_concurrency": value})


async def _decide(req: func.HttpRequest, client: df.DurableOrchestrationClient, decision: str) -> func.HttpResponse:
    """Approve or reject the proof of a run awaiting approval.

    The decision is recorded in the run's ``review.json`` first (created only if absent:
    the first decision wins, a person's or the timeout's), then ``review-decision`` is
    raised with the recorded decision. A second, different decision answers ``409``;
    the same one again is accepted and raised again (repairs a lost raise). See
    ``orchestrators/review.py`` and docs/design.md, section 6c."""
    try:
        reason = parse_review_decision(req.get_body(), req.headers.get("content-type"))
    except RequestValidationError as error:
        return _json(error.status, error.to_json())
    instance_id = req.route_params.get("id", "")
    status, runtime, request, run = await _active_run(client, instance_id)
    if not status:
        return _not_found(instance_id)
    custom = status.custom_status if isinstance(status.custom_status, dict) else {}
    stage = custom.get("stage")
    verb = "approved" if decision == APPROVED else "rejected"
    if not is_active(runtime) or not run or request is None or stage != "awaiting_approval":
        state = runtime if not is_active(runtime) or not stage else f"{runtime}, {stage}"
        message = f"batch '{instance_id}' is not awaiting approval (it is {state}); nothing to be {verb}"
        return _error(409, "conflict", "id", message)
    blob = review_blob_name(request.output_prefix, instance_id, run)
    mine = decision_record(decision, BY_REVIEWER, datetime.now(UTC), reason).to_dict()
    try:
        service, container = _interactive_storage(), request.output_container
        recorded = await asyncio.wait_for(asyncio.to_thread(record_decision, service, container, blob, mine), 15)
    except Exception as error:
        message = f"cannot record the decision, nothing was {verb}; try again: {describe(error)}"
        return _storage_unavailable("id", message)
    if recorded.get("decision") != decision:
        message = (
            f"batch '{instance_id}' was already {recorded.get('decision')} "
            f"(by {recorded.get('by')} at {recorded.get('at')}); the first decision stands"
        )
        return _error(409, "conflict", "id", message)
    try:
        await client.raise_event(instance_id, REVIEW_EVENT, recorded)
    except Exception:
        log.info("Review of %s: the instance ended before the event was raised", instance_id)
    root = batches_root(req.url)
    body = {"id": instance_id, "run": run, "review": recorded, **batch_links(root, instance_id)}
    return func.HttpResponse(
        json.dumps(body), status_code=202, mimetype="application/json", headers={"Location": body["statusQueryGetUri"]}
    )


@app.route(route="batches/{id}/approve", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@app.durable_client_input(client_name="client")
async def approve_batch(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Approve the proof sheet: the rest of the batch runs (the sample is not rendered again)."""
    return await _decide(req, client, APPROVED)


@app.route(route="batches/{id}/reject", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@app.durable_client_input(client_name="client")
async def reject_batch(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Reject the proof sheet: the run ends ``rejected``, its manifest says why."""
    return await _decide(req, client, REJECTED)


@app.timer_trigger(schedule="0 7 * * * *", arg_name="timer", run_on_startup=False)
@app.durable_client_input(client_name="client")
async def purge_history(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    """Hourly: purge the orchestration histories (parents, shards, every
    generation) of runs that ended more than ``HISTORY_RETENTION_DAYS`` ago.

    Microsoft's guidance for task hubs: purge what is finished, or the history
    and instance tables only grow. Manifests and reports stay in storage; only
    the Durable bookkeeping goes. Only terminal instances are purged.
    """
    retention = HistoryRetention.from_env()
    if not retention.enabled:
        return
    result = await client.purge_instance_history_by(
        created_time_from=retention.oldest,
        created_time_to=retention.cutoff(datetime.now(UTC)),
        runtime_status=[
            df.OrchestrationRuntimeStatus.Completed,
            df.OrchestrationRuntimeStatus.Failed,
            df.OrchestrationRuntimeStatus.Terminated,
        ],
    )
    log.info("Purged the history of %d finished instance(s)", result.instances_deleted)
