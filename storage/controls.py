"""Storage side of live controls: the run's hold marker and control document.

**The hold marker is the cancel marker.** ``ProcessImage`` answers
``not_started`` without any work for every image that starts while the run's
cancel marker blob exists (one HEAD per image). Pause writes the same blob
with ``{"reason": "paused"}``; resume deletes it again (only while it still
says paused: an ETag-conditional delete, so a cancel written in between is
never undone). A lane whose image came back ``not_started`` asks
``ReadRunHold`` why: ``paused`` (wait and look again), ``cancelled`` (stop) or
``None`` (resumed meanwhile: go on).

**The control document** (``controls.json`` in the run folder) holds the
state the HTTP API changes -- ``{"version", "paused", "max_concurrency"}`` --
and is written with an ETag condition, so two concurrent requests get
consecutive versions; the marker is brought in line with the state inside the
same attempt, before the conditional write, so whichever write wins also did
the last marker change (the loser starts again from the winner's state).

The ``ReadRunHold`` activity (``activities/functions.py``) calls :func:`read_hold`,
``LoadShard`` :func:`read_concurrency_bound`; the HTTP control routes call
:func:`update_controls`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import ContentSettings

from imagebatch.naming import controls_blob_name
from storage import documents
from storage.clients import AsyncBlobService, BlobService

__all__ = ["ControlConflict", "controls_blob_name", "read_concurrency_bound", "read_hold", "update_controls"]

PAUSED = "paused"
CANCELLED = "cancelled"
_JSON = ContentSettings(content_type="application/json", cache_control="no-cache")
MAX_ATTEMPTS = 8


class ControlConflict(Exception):
    """The change cannot apply (the run is being cancelled)."""


def _read(service: BlobService, container: str, name: str) -> tuple[Any, str | None]:
    """(value, etag), or (None, None) when the blob does not exist."""
    try:
        downloader = service.get_blob_client(container, name).download_blob()
        data = downloader.readall()
    except ResourceNotFoundError:
        return None, None
    try:
        value = json.loads(data)
    except ValueError:
        value = {}
    return value, downloader.properties.etag


def hold_reason(marker: Any) -> str | None:
    if marker is None:
        return None
    return PAUSED if isinstance(marker, dict) and marker.get("reason") == PAUSED else CANCELLED


def read_hold(service: BlobService, container: str, marker_blob: str) -> str | None:
    """Why the run's images do not start: ``paused``, ``cancelled`` or None (they do)."""
    value, _ = _read(service, container, marker_blob)
    return hold_reason(value)


def _sync_marker(service: BlobService, container: str, marker_blob: str, paused: bool, stamp: dict) -> None:
    client = service.get_blob_client(container, marker_blob)
    marker, etag = _read(service, container, marker_blob)
    if hold_reason(marker) == CANCELLED:
        raise ControlConflict("the run is being cancelled")
    if paused and marker is None:
        try:
            client.upload_blob(json.dumps({"reason": PAUSED, **stamp}), overwrite=False, content_settings=_JSON)
        except ResourceExistsError:  # a cancel (or another pause) got there first: look again
            _sync_marker(service, container, marker_blob, paused, stamp)
    elif not paused and marker is not None:
        try:
            client.delete_blob(etag=etag, match_condition=MatchConditions.IfNotModified)
        except ResourceNotFoundError:
            pass
        except ResourceModifiedError:  # rewritten meanwhile (a cancel?): look again
            _sync_marker(service, container, marker_blob, paused, stamp)


def update_controls(
    service: BlobService,
    container: str,
    *,
    controls_blob: str,
    marker_blob: str,
    initial: dict[str, Any],
    change: Callable[[dict[str, Any]], dict[str, Any]],
    stamp: dict[str, Any],
) -> dict[str, Any]:
    """Apply ``change`` to the run's control state; returns the new state with its version.

    ``initial`` is the state before any control request (the request's bound, running).
    Raises :class:`ControlConflict` when the run is being cancelled.
    """
    client = service.get_blob_client(container, controls_blob)
    for _ in range(MAX_ATTEMPTS):
        current, etag = _read(service, container, controls_blob)
        state = {**initial, **(current if isinstance(current, dict) else {})}
        new = {**change(dict(state)), "version": int(state.get("version", 0)) + 1}
        _sync_marker(service, container, marker_blob, bool(new.get("paused")), stamp)
        try:
            if etag is None:
                client.upload_blob(json.dumps(new), overwrite=False, content_settings=_JSON)
            else:
                client.upload_blob(
                    json.dumps(new),
                    overwrite=True,
                    content_settings=_JSON,
                    etag=etag,
                    match_condition=MatchConditions.IfNotModified,
                )
            return new
        except (ResourceExistsError, ResourceModifiedError):
            continue  # another request won: apply ours on top of its state
    raise ControlConflict("too many concurrent control requests; try again")


async def read_concurrency_bound(service: AsyncBlobService, container: str, controls_blob: str) -> int | None:
    """``max_concurrency`` of the run's control document, None when none was ever written
    (or it cannot be understood)."""
    try:
        value = await documents.read_json_async(service, container, controls_blob)
        return int(value["max_concurrency"]) if isinstance(value, dict) and "max_concurrency" in value else None
    except (ResourceNotFoundError, ValueError, TypeError):
        return None
