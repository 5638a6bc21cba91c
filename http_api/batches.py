"""Start a batch (``POST /api/batches``) and follow it (``GET /api/batches/{id}``):
validation and naming live in ``imagebatch``; the orchestration input is an
``imagebatch.messages.BatchInput``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import uuid
from datetime import UTC, datetime

import azure.durable_functions as df
import azure.functions as func

from http_api.blueprint import bp
from http_api.common import (
    ACTIVE_SHARD_STATUSES,
    batch_input,
    instance_status,
    interactive_storage,
    json_response,
    not_found,
    runtime_status,
    storage_unavailable,
)
from imagebatch.batch_api import (
    accepted_body,
    batch_links,
    batches_root,
    live_progress,
    orchestration_input,
    review_links,
)
from imagebatch.batch_request import (
    RequestValidationError,
    parse_batch_request,
)
from imagebatch.batch_status import friendly_status, is_active
from imagebatch.function_names import IMAGE_PROCESSING_ORCHESTRATOR
from imagebatch.naming import (
    batch_folder,
    manifest_blob_name,
    new_run_id,
    shard_instance_prefix,
    source_list_blob,
)
from imagebatch.report import report_blob_name
from imagebatch.settings import AppSettings
from imagebatch.specs import BatchRequest
from storage import plans, reports, runs
from storage.errors import describe

log = logging.getLogger(__name__)


@bp.route(route="batches", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def start_batch(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Validate the request, then start a new run of ImageProcessing_Orchestrator.

    A client-chosen ``batch_id`` becomes the instance id; starting it while a run
    is still active answers 409, also when two starts race (the extension refuses
    the second ``start_new``; that refusal is answered as the conflict it is).
    """
    try:
        request = parse_batch_request(req.get_body(), req.headers.get("content-type"))
    except RequestValidationError as error:
        return json_response(error.status, error.to_json())

    if request.batch_id:
        existing = await client.get_status(request.batch_id)
        if existing and is_active(runtime_status(existing)):
            conflict = RequestValidationError.conflict(request.batch_id)
            return json_response(conflict.status, conflict.to_json())

    run = new_run_id(datetime.now(UTC), uuid.uuid4().hex)
    instance_id = request.batch_id or uuid.uuid4().hex
    if request.source_blobs is not None:
        # Stored once: up to 10,000 names must not travel through every Durable message.
        listed = source_list_blob(request.output_prefix, instance_id, run)
        try:
            service, container = interactive_storage(), request.output_container
            await asyncio.wait_for(
                asyncio.to_thread(plans.write_source_list, service, container, listed, list(request.source_blobs)), 30
            )
        except Exception as error:
            message = f"cannot store the source list, nothing was started; try again: {describe(error)}"
            return storage_unavailable("source.blobs", message)
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
            if existing and is_active(runtime_status(existing)):
                conflict = RequestValidationError.conflict(request.batch_id)
                return json_response(conflict.status, conflict.to_json())
        raise
    log.info("Started batch %s run %s", instance_id, run)
    body = accepted_body(batches_root(req.url), instance_id, run)
    return func.HttpResponse(
        json.dumps(body),
        status_code=202,
        mimetype="application/json",
        headers={"Location": body["statusQueryGetUri"], "Retry-After": "5"},
    )


@bp.route(route="batches/{id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
async def get_batch(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """A friendly status: the latest run's state and live progress, its manifest
    and report, and the batch's earlier runs."""
    instance_id = req.route_params.get("id", "")
    status = await instance_status(client, instance_id)
    if not status:
        return not_found(instance_id)
    runtime = runtime_status(status) or "Unknown"
    custom = status.custom_status if isinstance(status.custom_status, dict) else {}
    run = custom.get("run")
    progress = None
    if is_active(runtime) and run and isinstance(custom.get("progress"), dict):
        # The parent was read first (above), so a shard listed here is not counted twice.
        shards = await client.get_status_by(
            instance_id_prefix=shard_instance_prefix(instance_id, run), runtime_status=ACTIVE_SHARD_STATUSES
        )
        progress = live_progress(custom["progress"], [shard.custom_status for shard in shards])
    batch = batch_input(status)
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
            body["review"]["proof_url"] = reports.proof_sheet_url(interactive_storage(), proof)
    return json_response(200, body)


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
        found = runs.finished_runs(interactive_storage(), container, batch_folder(prefix, instance_id) + "runs/")
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
