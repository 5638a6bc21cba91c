"""The host dies mid-batch, again and again: ``python -m durable_devhost``
(state in a SQLite file) is SIGKILLed at seeded random moments during a
200-image batch and restarted on the same state file each time.

Durable's promise is at-least-once activities plus replayed orchestrations,
so after the last restart the batch must finish with every image rendered
exactly once per rendition (re-runs overwrite the same deterministic names),
every rendition decodable, and a manifest with all 200 entries. A kill can
land anywhere -- inside an activity, an orchestrator episode, a store commit,
the manifest upload -- which is the point.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

from durable_devhost.testing import SubprocessDevHost
from tests.batchkit import KEYS_ENV, TERMINAL, batch_request, check_outputs, http_json, read_manifest, seed_images

REPO = Path(__file__).resolve().parent.parent
IMAGES = 200
SEED = 20261126
# One kill at a random moment early on (listing / planning / first shards), then
# kills once the batch has passed seeded random points, each after a further
# random delay, so they spread over the whole run instead of bunching at start.
EARLY_KILLS = 2
PROCESSING_KILLS = 5


def test_sigkill_at_random_moments_loses_nothing(blob_service, container_factory, tmp_path: Path) -> None:
    source, output = container_factory(), container_factory(create=False)
    sources = seed_images(blob_service, source, IMAGES)
    rng = random.Random(SEED)
    host = SubprocessDevHost(
        REPO,
        state_path=tmp_path / "state.sqlite",
        log_path=tmp_path / "devhost.log",
        env={"ACTIVITY_RETRY_FIRST_INTERVAL_MS": "100", "ACTIVITY_RETRY_MAX_ATTEMPTS": "4", **KEYS_ENV},
    )
    status_url = f"{host.url}/api/batches/crashy"
    kills: list[dict[str, Any]] = []
    started_at = time.monotonic()
    with host:
        code, started = http_json(f"{host.url}/api/batches", batch_request(source, output, batch_id="crashy"))
        assert code == 202, started
        thresholds = [None] * EARLY_KILLS + sorted(rng.sample(range(10, IMAGES - 10), PROCESSING_KILLS))
        for threshold in thresholds:
            if threshold is not None:
                wait_for_progress(status_url, threshold, timeout=60)
            time.sleep(rng.uniform(0.0, 0.8))
            _, before = http_json(status_url)
            host.kill()
            kills.append({"status": before["runtimeStatus"], "stage": before.get("stage"), **before["progress"]})
            if before["runtimeStatus"] in TERMINAL:
                host.start()
                break
            host.restart()
        deadline = time.monotonic() + 120
        final: dict[str, Any] = {}
        while time.monotonic() < deadline:
            _, final = http_json(status_url)
            if final and final["runtimeStatus"] in TERMINAL:
                break
            time.sleep(0.3)
    elapsed = time.monotonic() - started_at
    mid_flight = [k for k in kills if k["status"] not in TERMINAL]
    print(
        f"\n[crashes] {len(kills)} SIGKILLs, {len(mid_flight)} mid-flight, batch done in {elapsed:.1f}s; "
        "at each kill (stage, completed/total): "
        + ", ".join(f"{k['stage']} {k['completed']}/{k['total']}" for k in kills)
    )

    assert final.get("runtimeStatus") == "Completed", final
    assert len(mid_flight) >= EARLY_KILLS + PROCESSING_KILLS - 1, f"only {len(mid_flight)} kills mid-batch: {kills}"
    counts = final["summary"]["counts"]
    assert (counts["total"], counts["done"] + counts["skipped"], counts["failed"]) == (IMAGES, IMAGES, 0), counts
    assert check_outputs(blob_service, output, "web/", sources) == []
    manifest = read_manifest(blob_service, final["manifest"])
    assert sorted(i["name"] for i in manifest["images"]) == sorted(sources), "one manifest entry per image"
    assert all(i["status"] in ("processed", "skipped") and len(i["outputs"]) == 2 for i in manifest["images"])


def wait_for_progress(url: str, completed: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, body = http_json(url)
        if body["runtimeStatus"] in TERMINAL or body["progress"]["completed"] >= completed:
            return
        time.sleep(0.05)
    raise AssertionError(f"the batch did not reach {completed} completed images in {timeout}s")
