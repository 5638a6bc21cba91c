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
from imagebatch.naming import manifest_blob_name
from imagebatch.report import REPORT_CONTENT_TYPE, build_report, report_blob_name
from imagebatch.results import Progress, build_manifest, compact_summary, failed_result
from imagebatch.settings import AppSettings
from storage import blobs

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
    that failed as a whole is expanded from its plan blob, so each of its
    images is named as failed and a re-submission processes exactly those.
    """
    results = list(payload.get("results") or [])
    for outcome in payload.get("shard_outcomes") or []:
        if "results_blob" in outcome:
            results += load_results(service, container, [outcome["results_blob"]])
        elif "results" in outcome:
            results += outcome["results"]
        elif "failed" in outcome:
            results += _failed_shard_results(service, container, outcome["failed"])
    return results


def _failed_shard_results(service: BlobServiceClient, container: str, failed: dict[str, Any]) -> list[dict[str, Any]]:
    try:
        plan = json.loads(service.get_blob_client(container, failed["plan_blob"]).download_blob().readall())
        names = [image["name"] for image in plan["images"]]
    except Exception as error:
        log.warning("Cannot read the plan of a failed shard (%s): %s", failed["plan_blob"], error)
        names = [f"{failed['size']} image(s) of {failed['plan_blob']}"]
    return [failed_result(name, failed["kind"], failed["message"]) for name in names]


def notify_completion(payload: dict[str, Any], service: BlobServiceClient, settings: AppSettings) -> dict[str, Any]:
    instance_id = payload["instance_id"]
    request = payload["request"]
    output_container = request["output_container"]
    output_prefix = request.get("output_prefix") or ""
    progress = Progress(**{k: v for k, v in payload["progress"].items() if k != "completed"})
    manifest = build_manifest(
        instance_id=instance_id,
        request=request,
        results=_results(payload, service, output_container),
        progress=progress,
        status=payload["status"],
        started=payload["started"],
        finished=payload["finished"],
        listing_error=payload.get("listing_error"),
    )
    manifest_name = manifest_blob_name(output_prefix, instance_id)
    blobs.upload_text(
        service, output_container, manifest_name, json.dumps(manifest, indent=2), "application/json"
    )
    report_name = report_blob_name(output_prefix, instance_id)
    blobs.upload_text(
        service,
        output_container,
        report_name,
        build_report(manifest, output_container=output_container, output_prefix=output_prefix),
        REPORT_CONTENT_TYPE,
    )
    summary = compact_summary(manifest, f"{output_container}/{manifest_name}")
    summary["report"] = f"{output_container}/{report_name}"
    if settings.notify_webhook_url:
        summary["webhook"] = post_webhook(
            settings.notify_webhook_url,
            summary,
            timeout=settings.notify_timeout_seconds,
            attempts=settings.notify_attempts,
        )
    return summary
