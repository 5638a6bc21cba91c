"""Batch results, tolerance and the friendly status: pure functions."""

from __future__ import annotations

import json

import pytest

from imagebatch.batch_status import friendly_status, is_active
from imagebatch.results import (
    Progress,
    batch_status,
    build_manifest,
    compact_summary,
    custom_status,
    failed_result,
    image_result,
)


def results(processed: int, skipped: int, failed: int) -> list[dict]:
    out = [image_result(f"p{i}.jpg", "processed", duration_ms=10 + i) for i in range(processed)]
    out += [image_result(f"s{i}.jpg", "skipped") for i in range(skipped)]
    out += [failed_result(f"f{i}.jpg", "corrupt", "bad bytes") for i in range(failed)]
    return out


@pytest.mark.parametrize(
    ("failed", "tolerated", "expected"),
    [
        (0, 0, "succeeded"),
        (1, 0, "failed"),
        (1, 10, "succeeded"),  # exactly at the threshold is tolerated (10 %)
        (2, 10, "failed"),
        (10, 100, "succeeded"),
    ],
)
def test_tolerated_failure_percent_is_a_strict_threshold(failed, tolerated, expected):
    progress = Progress(total=10)
    for result in results(10 - failed, 0, failed):
        progress.record(result)
    assert batch_status(progress, tolerated) == expected


def test_progress_counts_each_status():
    progress = Progress(total=6)
    for result in results(3, 2, 1):
        progress.record(result)
    assert progress.to_dict() == {
        "total": 6,
        "done": 3,
        "skipped": 2,
        "failed": 1,
        "in_flight": 0,
        "not_started": 0,
        "completed": 6,
    }


def test_custom_status_stays_small_for_huge_batches():
    progress = Progress(total=1_000_000, done=999_999, failed=1, in_flight=1000)
    assert len(json.dumps(custom_status("processing", progress, "c/x/_batches/id/manifest.json"))) < 512


def test_manifest_lists_failures_with_reasons_and_summary_omits_images():
    progress = Progress(total=3)
    items = results(1, 1, 1)
    for result in items:
        progress.record(result)
    manifest = build_manifest(
        instance_id="b1",
        run="r1",
        request={"output_container": "out"},
        results=items,
        progress=progress,
        status="failed",
        started="s",
        finished="f",
    )
    assert manifest["failures"] == [{"name": "f0.jpg", "kind": "corrupt", "message": "bad bytes"}]
    assert manifest["counts"]["completed"] == 3
    summary = compact_summary(manifest, "out/_batches/b1/manifest.json")
    assert "images" not in summary and summary["manifest"] == "out/_batches/b1/manifest.json"


def test_failure_messages_are_truncated():
    assert len(failed_result("x", "corrupt", "y" * 5000)["message"]) <= 300


def test_friendly_status_while_running_and_when_done():
    running = friendly_status(
        instance_id="b1",
        runtime_status="Running",
        custom_status={"stage": "processing", "progress": {"total": 5, "done": 2, "in_flight": 3}},
        output=None,
        created_time="t0",
        last_updated_time="t1",
    )
    assert running["progress"]["total"] == 5 and running["progress"]["failed"] == 0
    assert running["manifest"] is None and is_active("Running")

    done = friendly_status(
        instance_id="b1",
        runtime_status="Completed",
        custom_status={"stage": "done", "progress": {"total": 5, "done": 5}, "manifest": "c/m.json"},
        output={"manifest": "c/m.json", "status": "succeeded"},
        created_time="t0",
        last_updated_time="t2",
    )
    assert done["manifest"] == "c/m.json" and done["summary"]["status"] == "succeeded" and not is_active("Completed")

    failed = friendly_status(
        instance_id="b1",
        runtime_status="Failed",
        custom_status={"stage": "done", "manifest": "c/m.json"},
        output="Orchestrator function 'X' failed: Batch failed",
        created_time=None,
        last_updated_time=None,
    )
    assert failed["manifest"] == "c/m.json" and "Batch failed" in failed["error"]
