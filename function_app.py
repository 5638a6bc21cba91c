"""Composition root of the function app: one ``df.DFApp``, the orchestrator
and activity blueprints, and the HTTP API.

HTTP functions stay thin: validation, status mapping and naming live in the
Azure-free ``imagebatch`` package.
"""

from __future__ import annotations

import json
import logging

import azure.durable_functions as df
import azure.functions as func

from activities import bp as activities_bp
from imagebatch.batch_request import RequestValidationError, parse_batch_request
from imagebatch.batch_status import friendly_status, is_active
from imagebatch.naming import instance_id_error
from imagebatch.settings import AppSettings
from orchestrators import bp as orchestrators_bp
from orchestrators.image_processing import ORCHESTRATOR_NAME

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(orchestrators_bp)
app.register_functions(activities_bp)

log = logging.getLogger(__name__)


def _json(status: int, body: dict) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")


def _runtime_status(status: df.DurableOrchestrationStatus) -> str | None:
    value = status.runtime_status
    return None if value is None else getattr(value, "value", str(value))


@app.route(route="batches", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@app.durable_client_input(client_name="client")
async def start_batch(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Validate the request, then start ImageProcessing_Orchestrator.

    A client-chosen ``batch_id`` becomes the instance id; starting it again
    while it still runs answers 409 instead of silently replacing it.
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

    settings = AppSettings.from_env()
    orchestration_input = {
        "request": request.to_dict(),
        "retry": settings.retry_options(),
        "shard_size": settings.shard_size,
        "list_page_size": settings.list_page_size,
    }
    instance_id = await client.start_new(ORCHESTRATOR_NAME, request.batch_id, orchestration_input)
    log.info("Started batch %s", instance_id)
    return client.create_check_status_response(req, instance_id)


@app.route(route="batches/{id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@app.durable_client_input(client_name="client")
async def get_batch(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """A friendly status: runtime status, progress counts, timestamps, manifest."""
    instance_id = req.route_params.get("id", "")
    # An id that could never name a batch (e.g. with '#' or '?') is unknown, and must not
    # reach the SDK, which pastes it unescaped into the management URL.
    status = None if instance_id_error(instance_id) else await client.get_status(instance_id)
    if not status:
        message = f"no batch with id '{instance_id}'"
        return _json(404, {"error": "not_found", "message": message, "errors": [{"field": "id", "message": message}]})
    return _json(
        200,
        friendly_status(
            instance_id=instance_id,
            runtime_status=_runtime_status(status) or "Unknown",
            custom_status=status.custom_status,
            output=status.output,
            created_time=status.created_time.isoformat() if status.created_time else None,
            last_updated_time=status.last_updated_time.isoformat() if status.last_updated_time else None,
        ),
    )
