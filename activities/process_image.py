"""ProcessImage: one source blob in, its renditions out.

Idempotent by design, because Durable delivers activities at least once: the
output names are deterministic, every upload is a single atomic Put Blob, and
when every output already carries this source's etag and these parameters the
image is skipped without downloading it.

A run that is being cancelled has a cancel marker; an image of that run that
has not started yet is returned as ``not_started`` without any work.

Permanent problems (corrupt data, blob gone, too large) are *returned* as a
failed result so the orchestration records them and moves on; transient
storage errors and running out of memory (``MemoryError``, which
``render_image`` also raises for decoder allocation failures) are *raised* so
the Durable retry policy tries again.

An image is decoded only once its estimated decode memory (from the header)
fits the per-process budget ``IMAGE_MEMORY_BUDGET_MB`` shared by the activity
threads of this worker; until then its thread waits (imagebatch.memory_budget).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from imagebatch.imaging import ImageProcessingError, decode_estimate, render_image
from imagebatch.memory_budget import process_budget
from imagebatch.messages import ProcessImageInput
from imagebatch.naming import output_blob_name, output_folder, output_version
from imagebatch.results import (
    KIND_BLOB_GONE,
    KIND_STORAGE_ERROR,
    KIND_TOO_LARGE,
    failed_result,
    image_result,
    not_started_result,
    output_entry,
)
from imagebatch.settings import AppSettings
from storage import blobs, runs
from storage.clients import BlobService
from storage.errors import NotFoundError, StorageResponseError, describe, is_transient


def _elapsed_ms(start: float) -> int:
    return int((time.perf_counter() - start) * 1000)


def _existing_outputs(
    service: BlobService, container: str, targets: dict[str, str], etag: str, fingerprint: str
) -> list[dict[str, Any]] | None:
    """The outputs, if every one already exists for this source version and
    these parameters; else None. Stops at the first miss, so a new image costs
    one HEAD request, not one per rendition."""
    outputs = []
    for rendition, name in targets.items():
        match, size, width, height = blobs.output_matches(
            service, container, name, source_etag=etag, spec_fingerprint=fingerprint
        )
        if not match:
            return None
        outputs.append(output_entry(rendition, name, width, height, size))
    return outputs


def process_image(work: ProcessImageInput, service: BlobService, settings: AppSettings) -> dict[str, Any]:
    """One image's renditions; returns its result (``ImageResult``'s dict, built by the
    ``imagebatch.results`` helpers)."""
    start = time.perf_counter()
    source = work.source
    spec = work.spec
    source_container = work.source_container
    output_container = work.output_container
    output_prefix = work.output_prefix
    fingerprint = spec.fingerprint()
    folder = output_folder(output_prefix, source.name)
    renditions = [r.name for r in spec.renditions]

    def targets_for(etag: str) -> dict[str, str]:
        version = output_version(etag, fingerprint)
        return {r: output_blob_name(output_prefix, source.name, r, spec.extension, version) for r in renditions}

    def remove_versions(keep: frozenset[str] = frozenset()) -> int:
        return blobs.remove_rendition_versions(service, output_container, folder, renditions, spec.extension, keep)

    try:
        # Cancel is checked here, per image, so a lane stops after the image in hand
        # (one HEAD; the marker is written before the cancel is acknowledged).
        if work.cancel_blob and runs.marker_exists(service, output_container, work.cancel_blob):
            return not_started_result(source.name)
        etag = source.etag or blobs.source_etag(service, source_container, source.name)
        existing = _existing_outputs(service, output_container, targets_for(etag), etag, fingerprint)
        if existing is not None:
            return image_result(source.name, "skipped", outputs=existing, duration_ms=_elapsed_ms(start))

        downloaded = blobs.download(service, source_container, source.name, max_bytes=settings.max_source_bytes)
        targets = targets_for(downloaded.etag)  # the version of the bytes actually rendered
        max_pixels, backend, max_decode_bytes = (
            settings.max_pixels,
            settings.image_backend,
            settings.max_decode_mb * 2**20,
        )
        # Admission: wait until this image's estimated decode memory fits the
        # process-wide budget shared with the other activity threads.
        cost = decode_estimate(
            downloaded.data, spec, max_pixels=max_pixels, backend=backend, max_decode_bytes=max_decode_bytes
        )
        with process_budget(settings.memory_budget_mb * 2**20).admit(cost):
            rendered = render_image(
                downloaded.data, spec, max_pixels=max_pixels, backend=backend, max_decode_bytes=max_decode_bytes
            )
        outputs = []
        written: list[str] = []
        try:
            for rendition in rendered.renditions:
                name = targets[rendition.name]
                blobs.upload_rendition(
                    service,
                    output_container,
                    name,
                    rendition.data,
                    content_type=rendition.content_type,
                    cache_control=settings.cache_control,
                    metadata=blobs.rendition_metadata(
                        source_name=source.name,
                        etag=downloaded.etag,
                        spec_fingerprint=fingerprint,
                        rendition=rendition.name,
                        width=rendition.width,
                        height=rendition.height,
                    ),
                )
                written.append(name)
                outputs.append(
                    output_entry(rendition.name, name, rendition.width, rendition.height, len(rendition.data))
                )
        except BaseException:
            # All or nothing: an image whose renditions are not all written leaves none of
            # this attempt's behind (a retry writes them all again).
            blobs.delete_quietly(service, output_container, written)
            raise
        # Older versions (a changed source or changed parameters) go once the new ones exist.
        remove_versions(keep=frozenset(written))
        return image_result(source.name, "processed", outputs=outputs, duration_ms=_elapsed_ms(start))
    except NotFoundError:
        return _failed(remove_versions, source.name, KIND_BLOB_GONE, "the source blob no longer exists", start)
    except StorageResponseError as error:
        if is_transient(error):
            raise  # 5xx, 408, 429: the orchestration retries with backoff
        # 400/403/409/412...: retrying cannot help; record it once, precisely. The source
        # itself may be fine, so earlier renditions stay (only this attempt's were removed).
        return failed_result(source.name, KIND_STORAGE_ERROR, describe(error), _elapsed_ms(start))
    except blobs.BlobTooLargeError as error:
        return _failed(remove_versions, source.name, KIND_TOO_LARGE, str(error), start)
    except ImageProcessingError as error:
        return _failed(remove_versions, source.name, error.kind, error.message, start)


def _failed(remove_versions: Callable[[], int], name: str, kind: str, message: str, start: float) -> dict[str, Any]:
    """A permanent failure of the source itself (damaged, too large, gone), after
    removing the image's renditions: an earlier run's renditions of it would
    otherwise stay live beside a "failed" record (docs/design.md, section 6)."""
    try:
        removed = remove_versions()
    except Exception:  # cleanup must not replace the failure with its own error
        removed = 0
    result = failed_result(name, kind, message, _elapsed_ms(start))
    if removed:
        result["removed_outputs"] = removed
    return result
