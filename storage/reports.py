"""What a run publishes: its manifest (the durable record), the HTML report and
the proof sheet beside it, and the batch's ``latest.json`` pointer.

Every write overwrites the whole blob with ``no-cache`` (an activity run again by
Durable writes the same thing again); names come from ``imagebatch.naming``,
``imagebatch.report`` and ``imagebatch.proof``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from imagebatch.proof import PROOF_CONTENT_TYPE
from imagebatch.report import REPORT_CONTENT_TYPE
from storage import documents
from storage.clients import BlobService, blob_url


def read_manifest(service: BlobService, container: str, blob: str) -> Any | None:
    """The manifest written at ``blob``, None when there is none; raises ``ValueError``
    when the blob is not JSON (not a manifest of ours)."""
    return documents.read_json_or_none(service, container, blob)


def publish_manifest(service: BlobService, container: str, blob: str, manifest: Mapping[str, Any]) -> None:
    documents.put_json(service, container, blob, manifest, indent=2)


def publish_report(service: BlobService, container: str, blob: str, html: str) -> None:
    """The run's report page (written after the manifest it links to)."""
    documents.put_text(service, container, blob, html, REPORT_CONTENT_TYPE)


def write_latest_run(service: BlobService, container: str, blob: str, pointer: dict[str, Any]) -> None:
    """The batch's ``latest.json``: which run ended last, and where its manifest and report are."""
    documents.put_json(service, container, blob, pointer, indent=2)


def publish_proof_sheet(service: BlobService, container: str, blob: str, html: str) -> None:
    """The proof sheet of a run under review."""
    documents.put_text(service, container, blob, html, PROOF_CONTENT_TYPE)


def proof_sheet_url(service: BlobService, proof: str) -> str:
    """Where a browser opens a proof sheet given as ``container/blob``."""
    return blob_url(service, proof)
