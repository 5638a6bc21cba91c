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
from typing import Any

from azure.storage.blob import BlobServiceClient

from activities.shard_results import load_results
from imagebatch.naming import latest_run_blob_name, manifest_blob_name, run_scratch_prefixes
from imagebatch.report import REPORT_CONTENT_TYPE, build_report, report_blob_name
from imagebatch.results import Progress, build_manifest, compact_summary, failed_result, not_started_result
from imagebatch.settings import AppSettings
from storage import blobs, runs

log = logging.getLogger(__name__)


def post_webhook(url: str, body: dict[str, Any], *, timeout: float, attempts: int) -> str:
    """POST ``body`` as JSON with a timeout and a bounded number of attempts.

    Returns "delivered" or a short failure reason; a dead webhook must never
    fail a batch whose images are already processed and recorded.
    """
    data = json.dumps(body).encode("utf-8")
    reason = "not attempted"
    for attempt in range(1, max(1, attempts) + 1):
        request = urllib.request.Request(
            url, data=data, method="POST", headers={"Content-Type": "application/json"}
        )
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


def _results(payload: dict[str, Any], service: BlobServiceClient, container: str) -> list[dict[str, Any]]:
    """Every image's result, in shard order.

    Shards normally leave their results in a blob (the orchestration never
    carries them); a shard that could not write it passes them inline; a shard
    that failed as a whole, or never started because the run was cancelled, is
    expanded from its plan blob, so each of its images is named and a
    re-submission processes exactly those.
    """
    results = list(payload.get("results") or [])
    for outcome in payload.get("shard_outcomes") or []:
        if "results_blob" in outcome:
            results += load_results(service, container, [outcome["results_blob"]])
        elif "results" in outcome:
            results += outcome["results"]
        elif "failed" in outcome:
            failed = outcome["failed"]
            names = _plan_names(service, container, failed)
            results += [failed_result(name, failed["kind"], failed["message"]) for name in names]
        elif "not_started" in outcome:
            results += [not_started_result(name) for name in _plan_names(service, container, outcome["not_started"])]
    return results


def _plan_names(service: BlobServiceClient, container: str, shard: dict[str, Any]) -> list[str]:
    try:
        plan = json.loads(service.get_blob_client(container, shard["plan_blob"]).download_blob().readall())
        return [image["name"] for image in plan["images"]]
    except Exception as error:
        log.warning("Cannot read the plan of a shard (%s): %s", shard["plan_blob"], error)
        return [f"{shard['size']} image(s) of {shard['plan_blob']}"]


def notify_completion(payload: dict[str, Any], service: BlobServiceClient, settings: AppSettings) -> dict[str, Any]:
    """Write the run's manifest and report, point ``latest.json`` at them, then
    remove the run's scratch blobs (plans, parts, cancel marker).

    Every step is idempotent, so Durable may run this activity again: the
    scratch blobs are only removed after the manifest that replaces them exists,
    and a re-run that finds them gone rebuilds nothing (it is never called
    again once it has returned)."""
    instance_id = payload["instance_id"]
    run = payload["run"]
    request = payload["request"]
    output_container = request["output_container"]
    output_prefix = request.get("output_prefix") or ""
    progress = Progress.from_dict(payload["progress"])
    manifest = build_manifest(
        instance_id=instance_id,
        run=run,
        request=request,
        results=_results(payload, service, output_container),
        progress=progress,
        status=payload["status"],
        started=payload["started"],
        finished=payload["finished"],
        listing_error=payload.get("listing_error"),
    )
    manifest_name = manifest_blob_name(output_prefix, instance_id, run)
    blobs.upload_text(
        service, output_container, manifest_name, json.dumps(manifest, indent=2), "application/json"
    )
    report_name = report_blob_name(output_prefix, instance_id, run)
    blobs.upload_text(
        service,
        output_container,
        report_name,
        build_report(manifest, output_container=output_container, output_prefix=output_prefix),
        REPORT_CONTENT_TYPE,
    )
    summary = compact_summary(manifest, f"{output_container}/{manifest_name}")
    summary["report"] = f"{output_container}/{report_name}"
    runs.write_json(
        service,
        output_container,
        latest_run_blob_name(output_prefix, instance_id),
        {"batch_id": instance_id, "run": run, "status": manifest["status"], "finished": payload["finished"],
         "manifest": manifest_name, "report": report_name},
    )
    runs.delete_prefixes(service, output_container, run_scratch_prefixes(output_prefix, instance_id, run))
    if settings.notify_webhook_url:
        summary["webhook"] = post_webhook(
            settings.notify_webhook_url,
            summary,
            timeout=settings.notify_timeout_seconds,
            attempts=settings.notify_attempts,
        )
    return summary
