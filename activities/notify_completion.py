"""NotifyCompletion: write the batch manifest and its HTML report, then tell a
webhook if one is configured.

The manifest is the batch's durable record (in the spirit of Step Functions'
ResultWriter): parameters, every image's result, counts, failures with
reasons, timings. ``index.html`` beside it is the same record for people
(``imagebatch.report``); it is written *after* the manifest so that a report
never exists without the manifest it links to. The webhook URL comes only
from the app setting ``NOTIFY_WEBHOOK_URL``, never from a request, so callers
cannot make the app post to arbitrary addresses.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from activities.shard_results import load_results
from imagebatch.messages import BatchSummary, NotifyInput, ShardRecord
from imagebatch.naming import (
    latest_run_blob_name,
    manifest_blob_name,
    output_blob_name,
    output_version,
    run_scratch_prefixes,
    segment_part_blob,
    shard_parts_prefix,
    shard_plan_blob,
)
from imagebatch.report import build_report, report_blob_name
from imagebatch.results import (
    KIND_RECORD_LOST,
    Progress,
    build_manifest,
    compact_summary,
    failed_result,
    image_result,
    manifest_error_text,
    not_started_result,
    output_entry,
)
from imagebatch.settings import AppSettings
from imagebatch.specs import BatchRequest, SourceBlob
from storage import blobs, plans, reports, runs
from storage.clients import BlobService
from storage.errors import describe, permanent_error

log = logging.getLogger(__name__)


def post_webhook(url: str, body: dict[str, Any], *, timeout: float, attempts: int) -> str:
    """POST ``body`` as JSON with a timeout and a bounded number of attempts.

    Returns "delivered" or a short failure reason; a dead webhook must never
    fail a batch whose images are already processed and recorded.
    """
    data = json.dumps(body).encode("utf-8")
    reason = "not attempted"
    for attempt in range(1, max(1, attempts) + 1):
        request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                if 200 <= response.status < 300:
                    return "delivered"
                reason = f"HTTP {response.status}"
        except urllib.error.HTTPError as error:
            reason = f"HTTP {error.code}"
            if 400 <= error.code < 500 and error.code not in (408, 429):
                break
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            reason = type(error).__name__
        if attempt < attempts:
            time.sleep(min(2 ** (attempt - 1), 8))
    log.warning("Completion webhook failed after %d attempt(s): %s", attempts, reason)
    return f"failed: {reason}"


def collect_results(
    service: BlobService,
    container: str,
    *,
    request: BatchRequest,
    instance_id: str,
    run: str,
    plan_folder: str | None,
    outcomes: Sequence[ShardRecord],
    rejected: Sequence[dict[str, Any]] = (),
) -> list[dict[str, Any]]:
    """Every image's result, in shard order, after the plan's ``rejected`` ones: what the
    manifest lists, and what the proof sheet reads of its sample's shards.

    Shards leave their results in one blob per segment (the orchestration never
    carries them); a segment that could not be written was carried inline; a
    shard that failed as a whole, never started (cancel) or stopped early
    (cancel) is expanded from its plan blob, so each of its images is named and
    a re-submission processes exactly those. A segment's results blob that cannot
    be read (deleted, container gone, storage refusing) costs only its own
    records: those images are re-checked against their outputs in storage.
    """
    prefix = request.output_prefix
    results = list(rejected)
    for shard, outcome in enumerate(outcomes):
        plan_blob = shard_plan_blob(plan_folder, shard) if plan_folder else None
        if outcome.parts is not None:
            parts = shard_parts_prefix(prefix, instance_id, run, shard)
            size = outcome.segment_size
            inline = outcome.inline
            for segment in range(outcome.parts):
                if str(segment) in inline:
                    results += [result.to_dict() for result in inline[str(segment)]]
                    continue
                name = segment_part_blob(parts, segment)
                try:
                    results += load_results(service, container, [name])
                except Exception as error:
                    if permanent_error(error) is None:
                        raise  # transient: the activity's retry policy tries again
                    log.warning("Cannot read the results of shard %d (%s): %s", shard, name, describe(error))
                    window = (segment * size, (segment + 1) * size)
                    results += _recheck_shard(request, service, plan_blob, window, describe(error))
            if outcome.not_started_from is not None and plan_blob:
                names = _plan_names(service, container, {"plan_blob": plan_blob, "size": "the rest"})
                results += [not_started_result(name) for name in names[outcome.not_started_from :]]
        elif outcome.failed is not None:
            failed = outcome.failed
            names = _plan_names(service, container, failed.to_dict())
            results += [failed_result(name, failed.kind or "", failed.message or "") for name in names]
        elif outcome.not_started is not None:
            # Why they never started: a cancel (the default), or the run's proof was rejected.
            message = outcome.not_started.message
            names = _plan_names(service, container, outcome.not_started.to_dict())
            results += [not_started_result(name, message) if message else not_started_result(name) for name in names]
    return results


def _extra(name: str | None, service: BlobService, container: str) -> dict[str, Any]:
    """The plan's refused images and non-image objects (``ListImages``' extra.json), if any."""
    if not name:
        return {}
    try:
        return plans.read_plan_extra(service, container, name)
    except Exception as error:
        if permanent_error(error) is None:
            raise
        log.warning("Cannot read the plan's extra list (%s): %s", name, describe(error))
        return {"not_images": {"count": None, "items": [], "error": describe(error)}}


def _recheck_shard(
    request: BatchRequest, service: BlobService, plan_blob: str | None, window: tuple[int, int], reason: str
) -> list[dict[str, Any]]:
    """The records of a shard segment whose results blob is lost (its plan's images
    ``window[0]:window[1]``), rebuilt from storage: an image whose every rendition
    exists for its current source version and these parameters is ``processed``
    (``recovered``); any other is ``unknown`` (kind ``record_lost``), which a
    re-submission checks again."""
    output_container = request.output_container
    spec = request.spec
    try:
        if plan_blob is None:
            raise LookupError("no plan folder")
        plan = plans.read_shard_plan(service, output_container, plan_blob)
        images = [SourceBlob.from_dict(image) for image in plan["images"][window[0] : window[1]]]
    except Exception as error:
        log.warning("Cannot re-check a shard without its plan (%s): %s", plan_blob, describe(error))
        message = f"the shard's result record was lost ({reason}) and its plan too; re-submit to check them"
        return [
            image_result(
                f"images {window[0]}-{window[1] - 1} of {plan_blob}", "unknown", kind=KIND_RECORD_LOST, message=message
            )
        ]
    rechecked = []
    for source in images:
        try:
            etag = source.etag or blobs.source_etag(service, request.source_container, source.name)
            version = output_version(etag, spec.fingerprint())
            targets = {
                r.name: output_blob_name(request.output_prefix, source.name, r.name, spec.extension, version)
                for r in spec.renditions
            }
            outputs = []
            for rendition, name in targets.items():
                match, size, width, height = blobs.output_matches(
                    service, output_container, name, source_etag=etag, spec_fingerprint=spec.fingerprint()
                )
                if not match:
                    raise LookupError(f"{name} is missing or out of date")
                outputs.append(output_entry(rendition, name, width, height, size))
            rechecked.append({**image_result(source.name, "processed", outputs=outputs), "recovered": True})
        except Exception as error:
            message = f"its result record was lost ({reason}); re-checked in storage: {describe(error)}"
            rechecked.append(image_result(source.name, "unknown", kind=KIND_RECORD_LOST, message=message))
    return rechecked


def _plan_names(service: BlobService, container: str, shard: dict[str, Any]) -> list[str]:
    try:
        plan = plans.read_shard_plan(service, container, shard["plan_blob"])
        return [image["name"] for image in plan["images"]]
    except Exception as error:
        log.warning("Cannot read the plan of a shard (%s): %s", shard["plan_blob"], describe(error))
        return [f"{shard['size']} image(s) of {shard['plan_blob']}"]


def _review_record(notify: NotifyInput, service: BlobService, container: str) -> dict[str, Any]:
    """The run's review as the orchestrator reports it, plus the names of the sample
    images (the plan's first ``sample_shards`` shards)."""
    review = dict(notify.review or {})
    plan_folder = notify.plan_folder
    outcomes = notify.shard_outcomes
    if plan_folder:
        names: list[str] = []
        for shard in range(min(int(review.get("sample_shards") or 0), len(outcomes))):
            names += _plan_names(service, container, {"plan_blob": shard_plan_blob(plan_folder, shard), "size": "?"})
        review["sample_images"] = names
    return review


def _warnings(request: BatchRequest, progress: Progress) -> list[str]:
    """What a user should know even when nothing failed."""
    if progress.total:
        return []
    where = f"{request.source_container}/{request.source_prefix or ''}"
    if request.source_blobs is not None or request.source_list_blob:
        return ["the batch listed no blobs"]
    return [f"no images found under '{where}': check the container and prefix"]


def notify_completion(notify: NotifyInput, service: BlobService, settings: AppSettings) -> BatchSummary:
    """Write the run's manifest and report, point ``latest.json`` at them, then
    remove the run's scratch blobs (plans, parts, cancel marker).

    Every step is idempotent, so Durable may run this activity again: the
    scratch blobs are only removed after the manifest that replaces them exists.
    Transient storage errors are raised (retried); a refusal that retrying cannot
    fix (403, a lease, ...) returns the summary with ``manifest_error`` instead, so
    the batch still ends with its counts and a one-line reason."""
    instance_id, run, request = notify.instance_id, notify.run, notify.request
    output_container = request.output_container
    output_prefix = request.output_prefix
    progress = Progress.from_dict(notify.progress)
    manifest_name = manifest_blob_name(output_prefix, instance_id, run)
    try:
        # At-least-once: an earlier attempt may have written the manifest and removed the
        # scratch blobs it was built from before the host died. That manifest is complete;
        # rebuilding it now would find the run's parts gone.
        written = reports.read_manifest(service, output_container, manifest_name)
    except ValueError:  # not JSON: not a manifest of ours, rebuild and overwrite it
        written = None
    except Exception as error:
        if permanent_error(error) is None:
            raise
        written = None
    if isinstance(written, dict) and written.get("run") == run and written.get("batch_id") == instance_id:
        return _publish(notify, service, settings, written, manifest_name, already_written=True)
    extra = _extra(notify.extra_blob, service, output_container)
    results = collect_results(
        service,
        output_container,
        rejected=extra.get("rejected") or [],
        request=request,
        instance_id=instance_id,
        run=run,
        plan_folder=notify.plan_folder,
        outcomes=notify.shard_outcomes,
    )
    manifest = build_manifest(
        instance_id=instance_id,
        run=run,
        request=request.to_dict(),
        results=results,
        progress=progress,
        status=notify.status,
        started=notify.started,
        finished=notify.finished,
        listing_error=notify.listing_error,
        warnings=_warnings(request, progress),
    )
    not_images = extra.get("not_images")
    if not_images:
        manifest["not_images"] = not_images
    if notify.review:
        manifest["review"] = _review_record(notify, service, output_container)
    return _publish(notify, service, settings, manifest, manifest_name, already_written=False)


def _publish(
    notify: NotifyInput,
    service: BlobService,
    settings: AppSettings,
    manifest: Mapping[str, Any],
    manifest_name: str,
    *,
    already_written: bool,
) -> BatchSummary:
    """Manifest (unless an earlier attempt wrote it), report, ``latest.json``, then the
    scratch blobs go; each step idempotent. Then the webhook, if configured."""
    instance_id, run, request = notify.instance_id, notify.run, notify.request
    output_container = request.output_container
    output_prefix = request.output_prefix
    report_name = report_blob_name(output_prefix, instance_id, run)
    summary = replace(
        BatchSummary.from_dict(compact_summary(manifest, f"{output_container}/{manifest_name}")),
        report=f"{output_container}/{report_name}",
    )
    try:
        if not already_written:
            reports.publish_manifest(service, output_container, manifest_name, manifest)
        reports.publish_report(
            service,
            output_container,
            report_name,
            build_report(manifest, output_container=output_container, output_prefix=output_prefix),
        )
        reports.write_latest_run(
            service,
            output_container,
            latest_run_blob_name(output_prefix, instance_id),
            {
                "batch_id": instance_id,
                "run": run,
                "status": manifest["status"],
                "finished": manifest["timings"]["finished"],
                "manifest": manifest_name,
                "report": report_name,
            },
        )
        runs.delete_prefixes(service, output_container, run_scratch_prefixes(output_prefix, instance_id, run))
    except Exception as error:
        permanent = permanent_error(error)
        if permanent is None:
            raise
        reason = manifest_error_text(summary.manifest or manifest_name, permanent["message"])
        return replace(summary, manifest=None, report=None, manifest_error=reason)
    if settings.notify_webhook_url:
        delivery = post_webhook(
            settings.notify_webhook_url,
            summary.to_dict(),
            timeout=settings.notify_timeout_seconds,
            attempts=settings.notify_attempts,
        )
        summary = replace(summary, webhook=delivery)
    return summary
