"""What every route of the HTTP API shares: JSON responses and errors (the 4xx/5xx
body names the field), and reading a batch's latest run from the task hub."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import azure.durable_functions as df
import azure.functions as func
from azure.durable_functions.models.DurableOrchestrationStatus import DurableOrchestrationStatus

from imagebatch.jsonvalue import json_object
from imagebatch.messages import BatchInput, MessageError
from imagebatch.naming import (
    instance_id_error,
)
from imagebatch.settings import AppSettings
from imagebatch.specs import BatchRequest
from storage.clients import BlobService, interactive_client

log = logging.getLogger(__name__)


def json_response(status: int, body: dict) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")


def runtime_status(status: DurableOrchestrationStatus) -> str | None:
    value = status.runtime_status
    return None if value is None else getattr(value, "value", str(value))


ACTIVE_SHARD_STATUSES = [
    df.OrchestrationRuntimeStatus.Running,
    df.OrchestrationRuntimeStatus.Pending,
    df.OrchestrationRuntimeStatus.ContinuedAsNew,
]


def error_response(status: int, error: str, field: str, message: str) -> func.HttpResponse:
    return json_response(status, {"error": error, "message": message, "errors": [{"field": field, "message": message}]})


def not_found(instance_id: str) -> func.HttpResponse:
    return error_response(404, "not_found", "id", f"no batch with id '{instance_id}'")


def storage_unavailable(field: str, message: str) -> func.HttpResponse:
    """A request refused because storage did not answer; nothing was done, try again."""
    response = error_response(503, "storage_unavailable", field, message)
    response.headers["Retry-After"] = "10"
    return response


def batch_input(status: DurableOrchestrationStatus) -> BatchInput | None:
    """The run's orchestration input, or None when it cannot be read as one (the routes
    then treat the run as one they cannot act on)."""
    try:
        return BatchInput.from_dict(json_object(status.input_))
    except MessageError as error:
        log.warning("Batch %s: its orchestration input is not a BatchInput: %s", status.instance_id, error)
        return None


@dataclass(frozen=True)
class LatestRun:
    """A batch's latest run as the routes that act on it need it. ``request`` and ``run``
    are None when its input cannot be read as a ``BatchInput``; ``stage`` is where its
    custom status says it is (None before the first one)."""

    status: DurableOrchestrationStatus
    runtime: str | None
    request: BatchRequest | None
    run: str | None
    custom: dict[str, Any]
    stage: str | None


async def latest_run(client: df.DurableOrchestrationClient, instance_id: str) -> LatestRun | None:
    """The batch's latest run, or None when there is no such batch."""
    status = await instance_status(client, instance_id)
    if not status:
        return None
    batch = batch_input(status)
    custom = status.custom_status if isinstance(status.custom_status, dict) else {}
    stage = custom.get("stage")
    return LatestRun(
        status=status,
        runtime=runtime_status(status),
        request=batch.request if batch else None,
        run=batch.run if batch else None,
        custom=custom,
        stage=stage if isinstance(stage, str) else None,
    )


def accepted(body: dict[str, Any]) -> func.HttpResponse:
    """202 with ``body``, whose ``statusQueryGetUri`` is also the ``Location`` to poll
    (the HTTP async request-reply pattern the Durable client's own 202 follows)."""
    return func.HttpResponse(
        json.dumps(body), status_code=202, mimetype="application/json", headers={"Location": body["statusQueryGetUri"]}
    )


async def instance_status(client: df.DurableOrchestrationClient, instance_id: str) -> DurableOrchestrationStatus | None:
    # An id that could never name a batch (e.g. with '#' or '?') is unknown, and must not
    # reach the SDK, which pastes it unescaped into the management URL.
    if instance_id_error(instance_id):
        return None
    status = await client.get_status(instance_id, show_input=True)
    return status if status and runtime_status(status) else None


def interactive_storage() -> BlobService:
    """A storage client for calls a person waits on over HTTP: one quick retry at most
    (the batch's own clients wait out longer trouble; a caller can simply ask again)."""
    return interactive_client(AppSettings.from_env().storage_connection)
