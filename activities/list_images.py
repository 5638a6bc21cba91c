"""ListImages: the batch's input images, in a stable order, cut into shards.

The listing itself never travels through Durable Functions: the images of
each shard are written to a small JSON blob, and only the shard sizes and the
plan's folder go back to the orchestrator. A prefix with a million blobs
costs the orchestration history a few hundred integers.
"""

from __future__ import annotations

import uuid
from typing import Any

from imagebatch.messages import ListImagesInput, ShardPlan
from imagebatch.naming import is_image_name, is_own_output, plan_folder, shard_plan_blob
from imagebatch.results import failed_result
from imagebatch.sharding import sample_positions, sample_shard_sizes, shard_bounds, shard_sizes
from imagebatch.source_check import KIND_INVALID_NAME, SNIFF_BYTES, output_name_error, sniff_image_format
from imagebatch.specs import SourceBlob
from storage import blobs, plans
from storage.clients import BlobService
from storage.errors import NotFoundError, permanent_error

# Objects without an image extension whose first bytes are read per listing; past it
# they are listed as not checked (a prefix of 100,000 sidecar files must not cost 100,000 reads).
MAX_SNIFFS = 1000
# Names of non-image objects kept in the manifest (all are counted).
MAX_LISTED_NOT_IMAGES = 1000


def list_images(job: ListImagesInput, service: BlobService, default_page_size: int) -> dict[str, Any]:
    """Every image under the prefix (all pages), sorted by name, and what was left
    out and why (``not_images``); never the batch's own outputs when input and
    output share a container (see ``imagebatch.source_check``)."""
    container = job.container
    prefix = job.prefix
    output_prefix = job.output_prefix
    exclude_outputs = job.exclude_own_outputs
    page_size = job.page_size or default_page_size
    not_images: list[dict[str, str]] = []
    sniffed = 0

    def keep(name: str) -> bool:
        nonlocal sniffed
        if exclude_outputs and is_own_output(name, output_prefix):
            return False
        if is_image_name(name):
            return True
        if sniffed >= MAX_SNIFFS:
            not_images.append({"name": name, "reason": f"no image extension; not sniffed (over {MAX_SNIFFS} objects)"})
            return False
        sniffed += 1
        if sniff_image_format(blobs.read_head(service, container, name, SNIFF_BYTES)):
            return True
        not_images.append({"name": name, "reason": "not an image: no image extension and no image signature"})
        return False

    try:
        images, pages = blobs.list_blobs(service, container, prefix, page_size=page_size, keep=keep)
    except NotFoundError:
        return {"images": [], "pages": 0, "error": f"source container '{container}' does not exist"}
    return {"images": [image.to_dict() for image in images], "pages": pages, "not_images": not_images}


def plan_batch(job: ListImagesInput, service: BlobService, default_page_size: int) -> ShardPlan:
    """:func:`write_plan`, with storage refusals that retrying cannot fix (403 on the
    source or the output, a lease...) ending the batch at once with a one-line reason
    instead of being retried as if transient."""
    try:
        return write_plan(job, service, default_page_size)
    except Exception as error:
        permanent = permanent_error(error)
        if permanent is None:
            raise
        return ShardPlan(0, (), "", 0, error=f"cannot list the source or write the batch plan: {permanent['message']}")


def write_plan(job: ListImagesInput, service: BlobService, default_page_size: int) -> ShardPlan:
    """List (or take the explicit list), then write one blob per shard.

    Each shard blob also carries the batch request, so a shard's input (and the
    parent's history, which records it) holds only a few blob names. Images
    whose outputs could not be named are refused here (``rejected``); they and
    the objects that are not images are written to the plan's ``extra.json``
    for the manifest, and only their counts reach the orchestration."""
    request = job.request
    # An explicit list: stored once by the starter (or still in the request, when not started over HTTP).
    explicit = None if request.source_blobs is None else list(request.source_blobs)
    if explicit is None and request.source_list_blob:
        explicit = plans.read_source_list(service, job.output_container, request.source_list_blob)
        if explicit is None:
            raise LookupError(f"the batch's source list {request.source_list_blob} is gone")
    if explicit is not None:
        listing: dict[str, Any] = {"images": [SourceBlob(name).to_dict() for name in explicit], "pages": 0}
    else:
        listing = list_images(job, service, default_page_size)
    output_prefix = job.output_prefix
    spec = request.spec
    images, rejected = [], []
    for image in listing["images"]:
        error = output_name_error(output_prefix, image["name"], [r.name for r in spec.renditions], spec.extension)
        if error:
            rejected.append(failed_result(image["name"], KIND_INVALID_NAME, error))
        else:
            images.append(image)
    concurrency = request.max_concurrency
    cap = job.shard_size or None  # None: sized for the batch
    # A proof's sample comes first, in shards of its own, so the run can render it,
    # wait for approval and then run the other shards without rendering it again.
    picked = set(sample_positions(len(images), job.review_sample))
    if picked:
        images = [images[i] for i in sorted(picked)] + [image for i, image in enumerate(images) if i not in picked]
    sample_sizes = sample_shard_sizes(len(picked), concurrency, cap)
    sizes = sample_sizes + shard_sizes(len(images) - len(picked), concurrency, cap)
    folder = plan_folder(output_prefix, job.instance_id, job.run, uuid.uuid4().hex)
    for shard, (start, stop) in enumerate(shard_bounds(sizes)):
        plans.write_shard_plan(
            service,
            job.output_container,
            shard_plan_blob(folder, shard),
            request.to_dict(),
            images[start:stop],
        )
    not_images = listing.get("not_images") or []
    extra = None
    if rejected or not_images:
        refused = {
            "rejected": rejected,
            "not_images": {"count": len(not_images), "items": not_images[:MAX_LISTED_NOT_IMAGES]},
        }
        plans.write_plan_extra(service, job.output_container, extra_blob(folder), refused)
        extra = extra_blob(folder)
    return ShardPlan(
        total=len(images) + len(rejected),
        shards=tuple(sizes),
        plan=folder,
        pages=listing["pages"],
        sample=len(picked),
        sample_shards=len(sample_sizes) if picked else 0,
        rejected=len(rejected),
        not_images=len(not_images),
        extra=extra,
        error=listing.get("error"),
    )


def extra_blob(folder: str) -> str:
    """The plan's list of refused images and non-image objects (for the manifest)."""
    return f"{folder}extra.json"
