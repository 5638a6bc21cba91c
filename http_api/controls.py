"""Act on a running batch: cancel, pause, resume, a new ``max_concurrency`` (PATCH) and
the review's approve / reject. Each writes the run's document in storage first, then
raises the event, so a run that misses the event still sees the change."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from http_api.blueprint import bp
from http_api.common import (
    ACTIVE_SHARD_STATUSES,
    accepted,
    error_response,
    interactive_storage,
    json_response,
    latest_run,
    not_found,
    storage_unavailable,
)
from imagebatch.batch_api import (
    batch_links,
    batches_root,
    control_links,
)
from imagebatch.batch_request import (
    RequestValidationError,
    parse_control_update,
    parse_review_decision,
)
from imagebatch.batch_status import is_active
from imagebatch.naming import (
    cancel_blob_name,
    review_blob_name,
    shard_instance_prefix,
)
from orchestrators.controls import control_event_name
from orchestrators.image_processing import CANCEL_EVENT
from orchestrators.review import APPROVED, BY_REVIEWER, REJECTED, REVIEW_EVENT, decision_record
from orchestrators.shard import RESUME_EVENT
from storage import runs
from storage.controls import ControlConflict, controls_blob_name, update_controls
from storage.errors import describe
from storage.review import record_decision

log = logging.getLogger(__name__)


@bp.route(route="batches/{id}/cancel", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
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
    found = await latest_run(client, instance_id)
    if found is None:
        return not_found(instance_id)
    runtime, request, run = found.runtime, found.request, found.run
    if not is_active(runtime) or not run or request is None:
        message = f"batch '{instance_id}' is not running (it is {runtime}); only a running batch can be cancelled"
        return error_response(409, "conflict", "id", message)
    marker = cancel_blob_name(request.output_prefix, instance_id, run)
    requested = {"batch_id": instance_id, "run": run, "requested": datetime.now(UTC).isoformat()}
    try:
        service, container = interactive_storage(), request.output_container
        await asyncio.wait_for(asyncio.to_thread(runs.write_cancel_marker, service, container, marker, requested), 10)
    except Exception as error:
        # Without the marker the lanes would not stop: refuse rather than half-cancel.
        message = f"cannot write the run's cancel marker, nothing was cancelled; try again: {describe(error)}"
        return storage_unavailable("id", message)
    try:
        await client.raise_event(instance_id, CANCEL_EVENT, requested)
    except Exception:
        # It ended between the two calls: the marker stopped whatever was left.
        log.info("Cancel of %s: the instance ended before the event was raised", instance_id)
    root = batches_root(req.url)
    body = {"id": instance_id, "run": run, "batchStatus": "Cancelling", **batch_links(root, instance_id)}
    return accepted(body)


# Stages in which a live control no longer means anything: the run is stopping or done.
_FINAL_STAGES = frozenset({"cancelling", "deadline_exceeded", "notifying", "done"})


async def _change_controls(
    req: func.HttpRequest, client: df.DurableOrchestrationClient, action: str, change: Any
) -> func.HttpResponse:
    """Pause, resume or re-bound a running run: update its control document (and its
    hold marker), then raise ``control-{version}`` with the whole new state on the parent
    (orchestrators/controls.py explains the versioned names)."""
    instance_id = req.route_params.get("id", "")
    found = await latest_run(client, instance_id)
    if found is None:
        return not_found(instance_id)
    runtime, request, run, stage = found.runtime, found.request, found.run, found.stage
    if not is_active(runtime) or not run or request is None or stage in _FINAL_STAGES:
        state = runtime if stage not in _FINAL_STAGES or not is_active(runtime) else f"{runtime}, {stage}"
        message = f"batch '{instance_id}' is not running (it is {state}); only a running batch can be {action}"
        return error_response(409, "conflict", "id", message)
    prefix = request.output_prefix
    initial = {"version": 0, "paused": False, "max_concurrency": request.max_concurrency}
    stamp = {"batch_id": instance_id, "run": run, "requested": datetime.now(UTC).isoformat()}
    try:
        service, container = interactive_storage(), request.output_container
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
        return error_response(409, "conflict", "id", f"batch '{instance_id}' cannot be {action}: {conflict}")
    except Exception as error:
        message = f"cannot write the run's controls, nothing was {action}; try again: {describe(error)}"
        return storage_unavailable("id", message)
    applied = found.custom.get("controls") or {}
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
    return accepted(body)


async def _wake_held_lanes(client: df.DurableOrchestrationClient, instance_id: str, run: str) -> None:
    """After a resume: raise ``resume`` to the run's lanes that say they are held by the
    pause, so they look again now rather than at their next poll (up to a minute).
    Best effort: a lane that misses it looks again on its own timer."""
    try:
        shards = await client.get_status_by(
            instance_id_prefix=shard_instance_prefix(instance_id, run), runtime_status=ACTIVE_SHARD_STATUSES
        )
        held = [
            s.instance_id
            for s in shards
            if s.instance_id and isinstance(s.custom_status, dict) and s.custom_status.get("paused")
        ]
        await asyncio.gather(*(client.raise_event(lane, RESUME_EVENT, None) for lane in held), return_exceptions=True)
    except Exception as error:
        log.info("Resume of %s: could not wake the held lanes (they look again on their own): %s", instance_id, error)


@bp.route(route="batches/{id}/pause", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def pause_batch(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Pause a running run: no new image starts (lanes finish the image in hand), until resumed."""
    return await _change_controls(req, client, "paused", lambda state: {**state, "paused": True})


@bp.route(route="batches/{id}/resume", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def resume_batch(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Resume a paused run (a running one stays running)."""
    return await _change_controls(req, client, "resumed", lambda state: {**state, "paused": False})


@bp.route(route="batches/{id}", methods=["PATCH"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def update_batch(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """``{"max_concurrency": M}``: a new bound for the running run, applied at once."""
    try:
        value = parse_control_update(req.get_body(), req.headers.get("content-type"))
    except RequestValidationError as error:
        return json_response(error.status, error.to_json())
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
        return json_response(error.status, error.to_json())
    instance_id = req.route_params.get("id", "")
    found = await latest_run(client, instance_id)
    if found is None:
        return not_found(instance_id)
    runtime, request, run, stage = found.runtime, found.request, found.run, found.stage
    verb = "approved" if decision == APPROVED else "rejected"
    if not is_active(runtime) or not run or request is None or stage != "awaiting_approval":
        state = runtime if not is_active(runtime) or not stage else f"{runtime}, {stage}"
        message = f"batch '{instance_id}' is not awaiting approval (it is {state}); nothing to be {verb}"
        return error_response(409, "conflict", "id", message)
    blob = review_blob_name(request.output_prefix, instance_id, run)
    mine = decision_record(decision, BY_REVIEWER, datetime.now(UTC), reason).to_dict()
    try:
        service, container = interactive_storage(), request.output_container
        recorded = await asyncio.wait_for(asyncio.to_thread(record_decision, service, container, blob, mine), 15)
    except Exception as error:
        message = f"cannot record the decision, nothing was {verb}; try again: {describe(error)}"
        return storage_unavailable("id", message)
    if recorded.get("decision") != decision:
        message = (
            f"batch '{instance_id}' was already {recorded.get('decision')} "
            f"(by {recorded.get('by')} at {recorded.get('at')}); the first decision stands"
        )
        return error_response(409, "conflict", "id", message)
    try:
        await client.raise_event(instance_id, REVIEW_EVENT, recorded)
    except Exception:
        log.info("Review of %s: the instance ended before the event was raised", instance_id)
    root = batches_root(req.url)
    body = {"id": instance_id, "run": run, "review": recorded, **batch_links(root, instance_id)}
    return accepted(body)


@bp.route(route="batches/{id}/approve", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def approve_batch(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Approve the proof sheet: the rest of the batch runs (the sample is not rendered again)."""
    return await _decide(req, client, APPROVED)


@bp.route(route="batches/{id}/reject", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def reject_batch(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Reject the proof sheet: the run ends ``rejected``, its manifest says why."""
    return await _decide(req, client, REJECTED)
