"""Sources and their renditions: list and read the source images, and write,
check and remove the renditions made from them.

Each function takes a client handle (``storage.clients.BlobService``) so tests
can point it at Azurite and production at Azure Storage with the same code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import quote, unquote

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from imagebatch.naming import is_rendition_version
from imagebatch.specs import SourceBlob
from storage import documents
from storage.clients import BlobService

# Blob metadata must be ASCII; source names are percent-encoded into it.
META_SOURCE = "source_name"
META_SOURCE_ETAG = "source_etag"
META_SPEC = "spec"
META_RENDITION = "rendition"
META_WIDTH = "width"
META_HEIGHT = "height"


def iter_blob_pages(
    service: BlobService, container: str, prefix: str | None, page_size: int
) -> Iterator[list[SourceBlob]]:
    """Yield the listing one page at a time, following every continuation token."""
    client = service.get_container_client(container)
    pages = client.list_blobs(name_starts_with=prefix or None, results_per_page=page_size).by_page()
    for page in pages:
        yield [SourceBlob(name=item.name, etag=str(item.etag).strip('"'), size=int(item.size or 0)) for item in page]


def list_blobs(
    service: BlobService,
    container: str,
    prefix: str | None,
    *,
    page_size: int,
    keep: Callable[[str], bool],
) -> tuple[list[SourceBlob], int]:
    """Every blob under ``prefix`` that ``keep`` accepts, sorted by name, and the
    number of pages read (tests assert paging really happened)."""
    found: list[SourceBlob] = []
    page_count = 0
    for page in iter_blob_pages(service, container, prefix, page_size):
        page_count += 1
        found.extend(blob for blob in page if keep(blob.name))
    found.sort(key=lambda blob: blob.name)
    return found, page_count


@dataclass(frozen=True)
class DownloadedBlob:
    data: bytes
    etag: str
    size: int


def download(service: BlobService, container: str, name: str, *, max_bytes: int) -> DownloadedBlob:
    """Download a source blob. Raises ``errors.NotFoundError`` when it is gone
    and ``BlobTooLargeError`` before reading a body over ``max_bytes``."""
    blob = service.get_blob_client(container, name)
    downloader = blob.download_blob(max_concurrency=1)
    size = int(downloader.properties.size or 0)
    if size > max_bytes:
        raise BlobTooLargeError(f"the blob is {size} bytes, over the {max_bytes}-byte limit")
    data = downloader.readall()
    return DownloadedBlob(data=data, etag=str(downloader.properties.etag).strip('"'), size=size)


class BlobTooLargeError(Exception):
    """The source is larger than we are willing to hold in memory."""


def delete_quietly(service: BlobService, container: str, names: list[str]) -> int:
    """Delete ``names`` as far as storage lets us (cleanup on a failure path must not
    replace the failure with its own error); returns how many were deleted."""
    deleted = 0
    for name in names:
        try:
            service.get_blob_client(container, name).delete_blob()
            deleted += 1
        except Exception:  # gone already, leased, storage down: the failure itself is what matters
            continue
    return deleted


def remove_rendition_versions(
    service: BlobService,
    container: str,
    folder: str,
    renditions: list[str],
    extension: str,
    keep: frozenset[str] = frozenset(),
) -> int:
    """Delete every version of these renditions in one source's output folder except
    ``keep`` (one listing of the folder); returns how many were deleted."""
    try:
        names = [item.name for item in service.get_container_client(container).list_blobs(name_starts_with=folder)]
    except ResourceNotFoundError:
        return 0
    stale = [
        name
        for name in names
        if name not in keep and any(is_rendition_version(name, folder, r, extension) for r in renditions)
    ]
    return delete_quietly(service, container, stale)


def read_head(service: BlobService, container: str, name: str, length: int) -> bytes:
    """The first ``length`` bytes of a blob (one ranged GET), ``b""`` for an empty one."""
    try:
        return service.get_blob_client(container, name).download_blob(offset=0, length=length).readall()
    except HttpResponseError as error:
        if error.status_code == 416:  # an empty blob has no byte 0
            return b""
        raise


def source_etag(service: BlobService, container: str, name: str) -> str:
    props = service.get_blob_client(container, name).get_blob_properties()
    return str(props.etag).strip('"')


def output_matches(
    service: BlobService, container: str, name: str, *, source_etag: str, spec_fingerprint: str
) -> tuple[bool, int, int, int]:
    """Whether an existing output was made from this exact source version with
    these exact parameters; also its size and dimensions for the result."""
    try:
        props = service.get_blob_client(container, name).get_blob_properties()
    except ResourceNotFoundError:
        return False, 0, 0, 0
    meta = props.metadata or {}
    same = meta.get(META_SOURCE_ETAG) == source_etag and unquote(meta.get(META_SPEC, "")) == spec_fingerprint
    return same, int(props.size or 0), int(meta.get(META_WIDTH, 0)), int(meta.get(META_HEIGHT, 0))


def upload_rendition(
    service: BlobService,
    container: str,
    name: str,
    data: bytes,
    *,
    content_type: str,
    cache_control: str,
    metadata: dict[str, str],
) -> None:
    """Upload one output in a single Put Blob (atomic: readers see the old or the
    new blob, never half of one)."""
    documents.put(
        service, container, name, data, content_type=content_type, cache_control=cache_control, metadata=metadata
    )


def rendition_metadata(
    *, source_name: str, etag: str, spec_fingerprint: str, rendition: str, width: int, height: int
) -> dict[str, str]:
    return {
        META_SOURCE: quote(source_name, safe="/"),
        META_SOURCE_ETAG: etag,
        META_SPEC: quote(spec_fingerprint, safe=""),
        META_RENDITION: rendition,
        META_WIDTH: str(width),
        META_HEIGHT: str(height),
    }
