"""The activity functions as Azure Functions see them: triggers only.

Each one reads settings, takes the process-wide storage client, reads its payload
into its message type (``imagebatch.messages``: ``from_dict`` on receipt) and hands it
to plain code that tests can call directly against Azurite; what goes back is the
result's ``to_dict()``. Names come from ``imagebatch.function_names``.
"""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from activities.list_images import plan_batch
from activities.notify_completion import notify_completion
from activities.process_image import process_image
from activities.proof_sheet import write_proof_sheet
from activities.shard_results import load_shard, record_shard_results
from imagebatch import function_names as names
from imagebatch.messages import (
    ListImagesInput,
    LoadShardInput,
    NotifyInput,
    ProcessImageInput,
    ProofSheetInput,
    RecordDecisionInput,
    RecordResultsInput,
    RunHold,
    RunHoldInput,
)
from imagebatch.settings import AppSettings
from storage.clients import async_blob_service_client, blob_service_client
from storage.controls import read_hold
from storage.review import record_decision

bp = df.Blueprint()


def _settings() -> AppSettings:
    return AppSettings.from_env()


@bp.function_name(names.LIST_IMAGES)
@bp.activity_trigger(input_name="payload")
def ListImages(payload: dict[str, Any]) -> dict[str, Any]:
    """List the source (every page) and write the shard plan; returns sizes only."""
    settings = _settings()
    listing = ListImagesInput.from_dict(payload)
    return plan_batch(listing, blob_service_client(settings.storage_connection), settings.list_page_size).to_dict()


@bp.function_name(names.LOAD_SHARD)
@bp.activity_trigger(input_name="payload")
async def LoadShard(payload: dict[str, Any]) -> dict[str, Any]:
    settings = _settings()
    wanted = LoadShardInput.from_dict(payload)
    return (await load_shard(wanted, async_blob_service_client(settings.storage_connection))).to_dict()


@bp.function_name(names.PROCESS_IMAGE)
@bp.activity_trigger(input_name="payload")
def ProcessImage(payload: dict[str, Any]) -> dict[str, Any]:
    settings = _settings()
    work = ProcessImageInput.from_dict(payload)
    return process_image(work, blob_service_client(settings.storage_connection), settings)


@bp.function_name(names.RECORD_SHARD_RESULTS)
@bp.activity_trigger(input_name="payload")
async def RecordShardResults(payload: dict[str, Any]) -> dict[str, Any]:
    settings = _settings()
    record = RecordResultsInput.from_dict(payload)
    return (await record_shard_results(record, async_blob_service_client(settings.storage_connection))).to_dict()


@bp.function_name(names.NOTIFY_COMPLETION)
@bp.activity_trigger(input_name="payload")
def NotifyCompletion(payload: dict[str, Any]) -> dict[str, Any]:
    settings = _settings()
    notify = NotifyInput.from_dict(payload)
    return notify_completion(notify, blob_service_client(settings.storage_connection), settings).to_dict()


@bp.function_name(names.READ_RUN_HOLD)
@bp.activity_trigger(input_name="payload")
def ReadRunHold(payload: dict[str, Any]) -> dict[str, Any]:
    """Why a lane's image did not start: ``{"hold": "paused" | "cancelled" | None}``
    (the run's hold marker; see ``storage/controls.py``)."""
    settings = _settings()
    marker = RunHoldInput.from_dict(payload)
    hold = read_hold(blob_service_client(settings.storage_connection), marker.container, marker.blob)
    return RunHold(hold).to_dict()


@bp.function_name(names.WRITE_PROOF_SHEET)
@bp.activity_trigger(input_name="payload")
def WriteProofSheet(payload: dict[str, Any]) -> dict[str, Any]:
    """The proof sheet of a run under review (its sample's renditions beside their sources)."""
    settings = _settings()
    sheet = ProofSheetInput.from_dict(payload)
    return write_proof_sheet(sheet, blob_service_client(settings.storage_connection)).to_dict()


@bp.function_name(names.RECORD_REVIEW_DECISION)
@bp.activity_trigger(input_name="payload")
def RecordReviewDecision(payload: dict[str, Any]) -> dict[str, Any]:
    """The review's timeout, recorded unless a person decided first; returns the decision
    that stands (``storage/review.py``: first wins)."""
    settings = _settings()
    service = blob_service_client(settings.storage_connection)
    record = RecordDecisionInput.from_dict(payload)
    return record_decision(service, record.container, record.blob, record.decision.to_dict())
