"""WriteProofSheet: the proof of a run under review, from its sample shards' results.

The sample's shards have written their per-image results like every shard (one blob
per segment, see ``orchestrators/shard.py``); this activity reads them the way
NotifyCompletion does, adds each source's size from the plan, and writes
``proof.html`` beside the run's manifest (``imagebatch.proof``). Only the blob's
location and a few counts go back to the orchestrator. Idempotent: the same
records give the same page, written over the same name.
"""

from __future__ import annotations

import logging

from activities.notify_completion import collect_results
from imagebatch.messages import ProofSheetInput, ProofSheetResult
from imagebatch.naming import proof_blob_name, shard_plan_blob
from imagebatch.proof import build_proof
from storage import plans, reports
from storage.clients import BlobService
from storage.errors import describe, permanent_error

log = logging.getLogger(__name__)


def _source_sizes(service: BlobService, container: str, plan_folder: str, shards: int) -> dict[str, int]:
    """Each sample image's size as listed (the plan carries it); best effort."""
    sizes: dict[str, int] = {}
    for shard in range(shards):
        try:
            plan = plans.read_shard_plan(service, container, shard_plan_blob(plan_folder, shard))
        except Exception as error:
            log.warning("Proof: cannot read the plan of sample shard %d: %s", shard, describe(error))
            continue
        sizes.update({image["name"]: int(image["size"]) for image in plan["images"] if image.get("size")})
    return sizes


def write_proof_sheet(sheet: ProofSheetInput, service: BlobService) -> ProofSheetResult:
    """The proof's location (``container/blob``) with the sample's size and failures, or
    ``proof`` None and ``error`` when storage refuses for good (the run still waits for a
    decision)."""
    request = sheet.request
    container = request.output_container
    prefix = request.output_prefix
    name = proof_blob_name(prefix, sheet.instance_id, sheet.run)
    outcomes = sheet.shard_outcomes
    try:
        results = collect_results(
            service,
            container,
            request=request,
            instance_id=sheet.instance_id,
            run=sheet.run,
            plan_folder=sheet.plan_folder,
            outcomes=outcomes,
        )
        sizes = _source_sizes(service, container, sheet.plan_folder, len(outcomes))
        page = build_proof(
            batch_id=sheet.instance_id,
            run=sheet.run,
            request=request.to_dict(),
            results=results,
            source_sizes=sizes,
            total=sheet.total,
            timeout_at=sheet.timeout_at,
            on_timeout=sheet.on_timeout,
        )
        reports.publish_proof_sheet(service, container, name, page)
    except Exception as error:
        permanent = permanent_error(error)
        if permanent is None:
            raise
        return ProofSheetResult(None, error=f"the proof sheet could not be written: {permanent['message']}")
    failed = sum(1 for r in results if r.get("status") not in ("processed", "skipped"))
    return ProofSheetResult(f"{container}/{name}", sample=len(results), failed=failed)
