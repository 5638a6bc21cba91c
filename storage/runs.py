"""Storage side of a batch's runs: the cancel marker, the list of a batch's
finished runs, and removing a run's scratch blobs (the latest-run pointer and
the manifests are in ``storage/reports.py``).

Names come from ``imagebatch.naming`` (one place for the layout); this module
only reads and writes them.
"""

from __future__ import annotations

import contextlib
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from storage import documents
from storage.clients import BlobService


def marker_exists(service: BlobService, container: str, name: str) -> bool:
    """One HEAD request: whether a marker blob (e.g. the run's cancel marker) exists."""
    try:
        service.get_blob_client(container, name).get_blob_properties()
    except ResourceNotFoundError:
        return False
    return True


def write_cancel_marker(service: BlobService, container: str, name: str, request: dict[str, Any]) -> None:
    """The run's cancel marker (who asked, when): from now on no image of the run starts
    (``storage/controls.py`` explains the marker)."""
    documents.put_json(service, container, name, request, indent=2)


# The Blob Batch API takes at most 256 sub-requests per call.
BATCH_DELETE_LIMIT = 256


def delete_prefixes(service: BlobService, container: str, prefixes: tuple[str, ...]) -> int:
    """Delete every blob whose name starts with one of ``prefixes``; returns how many.

    A 10,000-image run leaves about 1,300 plan and part blobs, so they go in Blob
    Batch calls of 256 (one round trip each instead of one per blob); an account
    that refuses batches (the Batch API is not on every account type) gets single
    deletes. Idempotent (a blob already gone is fine), so an activity that deletes
    and is then run again by Durable does not fail.
    """
    client = service.get_container_client(container)
    deleted = 0
    for prefix in prefixes:
        try:
            names = [item.name for item in client.list_blobs(name_starts_with=prefix)]
        except ResourceNotFoundError:
            return deleted
        for start in range(0, len(names), BATCH_DELETE_LIMIT):
            deleted += _delete_some(client, names[start : start + BATCH_DELETE_LIMIT])
    return deleted


def _delete_some(client: Any, names: list[str]) -> int:
    try:
        answers = list(client.delete_blobs(*names, raise_on_any_failure=False))
    except HttpResponseError:
        answers = None
    if answers is None or len(answers) != len(names):
        deleted = 0
        for name in names:
            with contextlib.suppress(ResourceNotFoundError):
                client.delete_blob(name)
                deleted += 1
        return deleted
    failed = [name for name, answer in zip(names, answers, strict=True) if answer.status_code not in (202, 404)]
    if failed:  # a sub-request refused for another reason: ask once more, one by one, and let it raise
        for name in failed:
            with contextlib.suppress(ResourceNotFoundError):
                client.delete_blob(name)
    return sum(answer.status_code == 202 for answer in answers) + len(failed)


def finished_runs(service: BlobService, container: str, runs_folder: str) -> list[str]:
    """The run ids under ``runs_folder`` that have a manifest, oldest first
    (run ids sort by start time).

    Called on every status GET, so it lists run *folders* (a delimiter listing:
    one entry per run) and asks for each folder's manifest by name, never every
    blob under the folder: a running 10,000-image run holds thousands of plan and
    part blobs, which a flat listing would page through on each poll.
    """
    client = service.get_container_client(container)
    try:
        folders = [item.name for item in client.walk_blobs(name_starts_with=runs_folder, delimiter="/")]
    except ResourceNotFoundError:
        return []
    runs = []
    for folder in folders:
        run = folder[len(runs_folder) :].rstrip("/")
        if folder.endswith("/") and run and client.get_blob_client(f"{folder}manifest.json").exists():
            runs.append(run)
    return sorted(runs)
