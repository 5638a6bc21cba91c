"""``report``: fetch a batch's ``manifest.json`` and ``index.html``.

The API says where the manifest is (``container/blob``); the report sits
beside it. Both are read through the blob endpoint with the connection string,
so this works on private containers too.

The report's thumbnails are *relative* links into the output container, so a
downloaded copy shows them only when opened from storage. ``--open`` therefore
opens the blob URL when the container allows anonymous read, and the local
copy (tables and numbers, no thumbnails) otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

from batchcli.api import ApiClient
from batchcli.errors import CliError
from batchcli.storage import storage_call

REPORT_FILE = "index.html"
MANIFEST_FILE = "manifest.json"


@dataclass
class DownloadedReport:
    manifest: Path
    report: Path
    web_url: str | None  # the report's blob URL when anonymous read is allowed


def report_location(status: dict) -> tuple[str, str, str]:
    """``(container, manifest blob, report blob)`` of a finished batch."""
    manifest = status.get("manifest")
    if not manifest:
        raise CliError(
            f"batch '{status.get('id')}' has no manifest yet ({status.get('runtimeStatus')}); "
            "it is written when the batch finishes"
        )
    container, manifest_blob = manifest.split("/", 1)
    report_blob = manifest_blob.rsplit("/", 1)[0] + "/" + REPORT_FILE
    return container, manifest_blob, report_blob


def _download(service: BlobServiceClient, container: str, blob: str, target: Path) -> None:
    def fetch() -> bytes:
        try:
            return service.get_blob_client(container, blob).download_blob().readall()
        except ResourceNotFoundError:
            raise CliError(f"not found in storage: {container}/{blob}") from None

    target.write_bytes(storage_call(f"download {container}/{blob}", fetch))


def _public_url(service: BlobServiceClient, container: str, blob: str) -> str | None:
    props = storage_call(
        f"read the properties of container '{container}'",
        lambda: service.get_container_client(container).get_container_properties(),
    )
    if not props.public_access:
        return None
    return f"{service.url.rstrip('/')}/{container}/{quote(blob, safe='/')}"


def download_report(client: ApiClient, service: BlobServiceClient, batch_id: str, out_dir: Path) -> DownloadedReport:
    container, manifest_blob, report_blob = report_location(client.get_batch(batch_id))
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CliError(f"cannot create {out_dir}: {error.strerror}") from None
    result = DownloadedReport(out_dir / MANIFEST_FILE, out_dir / REPORT_FILE, None)
    _download(service, container, manifest_blob, result.manifest)
    _download(service, container, report_blob, result.report)
    result.web_url = _public_url(service, container, report_blob)
    return result
