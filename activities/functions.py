"""The activity functions as Azure Functions see them: triggers only.

Each one reads settings, takes the process-wide storage client and hands the
payload to plain code that tests can call directly against Azurite.
"""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from activities.list_images import plan_batch
from activities.notify_completion import notify_completion
from activities.process_image import process_image
from activities.proof_sheet import write_proof_sheet
from activities.shard_results import load_shard, record_shard_results
from imagebatch.settings import AppSettings
from storage.clients import async_blob_service_client, blob_service_client
from storage.controls import read_hold
from storage.review import record_decision

bp = df.Blueprint()


def _settings() -> AppSettings:
    return AppSettings.from_env()


@bp.activity_trigger(input_name="payload")
def ListImages(payload: dict[str, Any]) -> dict[str, Any]:
    """List the source (every page) and write the shard plan; returns sizes only."""
    settings = _settings()
    return plan_batch(payload, blob_service_client(settings.storage_connection), settings.list_page_size)


@bp.activity_trigger(input_name="payload")
async def LoadShard(payload: dict[str, Any]) -> dict[str, Any]:
    settings = _settings()
    return await load_shard(payload, async_blob_service_client(settings.storage_connection))


@bp.activity_trigger(input_name="payload")
def ProcessImage(payload: dict[str, Any]) -> dict[str, Any]:
    settings = _settings()
    return process_image(payload, blob_service_client(settings.storage_connection), settings)


@bp.activity_trigger(input_name="payload")
async def RecordShardResults(payload: dict[str, Any]) -> dict[str, Any]:
    settings = _settings()
    return await record_shard_results(payload, async_blob_service_client(settings.storage_connection))


@bp.activity_trigger(input_name="payload")
def NotifyCompletion(payload: dict[str, Any]) -> dict[str, Any]:
    settings = _settings()
    return notify_completion(payload, blob_service_client(settings.storage_connection), settings)


@bp.activity_trigger(input_name="payload")
def ReadRunHold(payload: dict[str, Any]) -> dict[str, Any]:
    """Why a lane's image did not start: ``{"hold": "paused" | "cancelled" | None}``
    (the run's hold marker; see ``storage/controls.py``)."""
    settings = _settings()
    return {"hold": read_hold(blob_service_client(settings.storage_connection), payload["container"], payload["blob"])}


@bp.activity_trigger(input_name="payload")
def WriteProofSheet(payload: dict[str, Any]) -> dict[str, Any]:
    """The proof sheet of a run under review (its sample's renditions beside their sources)."""
    settings = _settings()
    return write_proof_sheet(payload, blob_service_client(settings.storage_connection))


@bp.activity_trigger(input_name="payload")
def RecordReviewDecision(payload: dict[str, Any]) -> dict[str, Any]:
    """The review's timeout, recorded unless a person decided first; returns the decision
    that stands (``storage/review.py``: first wins)."""
    settings = _settings()
    service = blob_service_client(settings.storage_connection)
    return record_decision(service, payload["container"], payload["blob"], payload["decision"])
