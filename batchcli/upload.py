"""``upload``: copy a local folder into a container, skipping unchanged files.

Why size + MD5 and not timestamps: the blob's last-modified time is when it
was *uploaded*, not when the photo changed, so it cannot tell "same file"
from "different file". Comparing size first is free (one listing for the
whole folder); only files of equal size are compared by MD5, which the CLI
also stores as the blob's ``Content-MD5`` so the next run can compare again
(Azure does not compute it for block-list uploads of large files).

Uploads run in a thread pool: the work is network-bound and the SDK is
blocking, so threads give parallelism without an event loop.
"""

from __future__ import annotations

import contextlib
import hashlib
import mimetypes
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from azure.core.exceptions import AzureError, ResourceExistsError
from azure.storage.blob import BlobServiceClient, ContentSettings

from batchcli.errors import CliError
from batchcli.storage import storage_call

OnFile = Callable[[str, str, int], None]  # (blob name, "uploaded" | "skipped" | "failed", bytes)


@dataclass
class UploadResult:
    uploaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    bytes_sent: int = 0


def folder_prefix(prefix: str | None) -> str:
    """``"2024"`` -> ``"2024/"``: a folder name, not a name fragment."""
    if not prefix:
        return ""
    return prefix if prefix.endswith("/") else prefix + "/"


def local_files(root: Path) -> list[tuple[Path, str]]:
    """Every regular file under ``root`` with its ``/``-separated relative name,
    sorted. Hidden files and folders (``.DS_Store``, ``.git``) are left out:
    they are never photos and uploading them only clutters the container."""
    if not root.is_dir():
        raise CliError(f"not a directory: {root}")
    found = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.is_file() and not any(part.startswith(".") for part in relative.parts):
            found.append((path, relative.as_posix()))
    return found


def file_md5(path: Path) -> bytes:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.digest()


def existing_blobs(service: BlobServiceClient, container: str, prefix: str) -> dict[str, tuple[int, bytes | None]]:
    """``name -> (size, Content-MD5)`` for what is already there, in one listing."""
    client = service.get_container_client(container)

    def listing() -> dict[str, tuple[int, bytes | None]]:
        with contextlib.suppress(ResourceExistsError):
            client.create_container()
        found = {}
        for blob in client.list_blobs(name_starts_with=prefix or None):
            md5 = blob.content_settings.content_md5
            found[blob.name] = (int(blob.size or 0), bytes(md5) if md5 else None)
        return found

    return storage_call(f"list container '{container}'", listing)


def _upload_one(
    service: BlobServiceClient, container: str, path: Path, name: str, existing: tuple[int, bytes | None] | None
) -> tuple[str, int]:
    size = path.stat().st_size
    md5 = file_md5(path)
    if existing is not None and existing[0] == size and existing[1] == md5:
        return "skipped", 0
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    settings = ContentSettings(content_type=content_type, content_md5=bytearray(md5))
    with path.open("rb") as stream:
        service.get_blob_client(container, name).upload_blob(
            stream, length=size, overwrite=True, content_settings=settings, max_concurrency=2
        )
    return "uploaded", size


def upload_directory(
    service: BlobServiceClient,
    root: Path,
    container: str,
    prefix: str | None = None,
    *,
    workers: int = 8,
    on_start: Callable[[int], None] | None = None,
    on_file: OnFile | None = None,
) -> UploadResult:
    """Upload ``root`` to ``container`` under ``prefix``; files whose size and
    MD5 match the existing blob are skipped. Per-file failures are collected,
    not raised, so one bad file does not hide the state of the others."""
    prefix = folder_prefix(prefix)
    files = local_files(root)
    existing = existing_blobs(service, container, prefix)
    if on_start is not None:
        on_start(len(files))
    result = UploadResult()
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="upload") as pool:
        futures = {
            pool.submit(_upload_one, service, container, path, prefix + name, existing.get(prefix + name)): prefix
            + name
            for path, name in files
        }
        for future in as_completed(futures):
            name = futures[future]
            try:
                outcome, sent = future.result()
            except (AzureError, OSError) as error:
                result.failed.append((name, str(error).strip().splitlines()[0] if str(error).strip() else repr(error)))
                outcome, sent = "failed", 0
            if outcome == "uploaded":
                result.uploaded.append(name)
                result.bytes_sent += sent
            elif outcome == "skipped":
                result.skipped.append(name)
            if on_file is not None:
                on_file(name, outcome, sent)
    result.uploaded.sort()
    result.skipped.sort()
    return result
