"""Proof before the batch, over the app's HTTP API on the local dev host with real
Azurite: the sample, the proof sheet, approve / reject / timeout, and the hazardous
orders (a decision before the wait, a decision and the timeout in one episode).

Every claim about what ran is read from the instance histories (which ProcessImage
calls were scheduled, when), never from what the app says about itself.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from durable_devhost.history import parse_ts
from durable_devhost.testing import DevHost
from imagebatch.function_names import PROCESS_IMAGE, RECORD_REVIEW_DECISION, WRITE_PROOF_SHEET
from imagebatch.sharding import sample_positions
from orchestrators.review import REVIEW_EVENT
from tests.batchkit import (
    batch_request,
    close_app_storage_clients,
    keyed_host,
    keyed_session,
    poll,
    read_manifest,
    seed_images,
    start_batch,
)
from tests.history_checks import (
    ORCHESTRATOR_STARTED,
    SUB_CREATED,
    TASK_COMPLETED,
    TASK_SCHEDULED,
    TIMER_CREATED,
    TIMER_FIRED,
    executions,
    timer_delays_ms,
)
from tests.test_controls import EVENT_RAISED, wait_for
from tests.test_lifecycle import batch_instances, post_json

REPO = Path(__file__).resolve().parent.parent
IMAGES = 12
SAMPLE = 3

pytestmark = pytest.mark.usefixtures(close_app_storage_clients.__name__)


def review_request(source: str, output: str, batch_id: str, **review: Any) -> dict[str, Any]:
    return batch_request(
        source,
        output,
        max_concurrency=2,
        batch_id=batch_id,
        review={"sample": SAMPLE, "timeout_minutes": 600, **review},
    )


def sample_names(sources: dict[str, str], sample: int = SAMPLE) -> set[str]:
    """What ListImages picks: evenly spaced over the sorted listing."""
    names = sorted(sources)
    return {names[i] for i in sample_positions(len(names), sample)}


def process_image_results(host: DevHost, instances: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every completed ProcessImage of the shards, with its image name and status."""
    calls = []
    for instance in instances:
        if ":" not in instance["instanceId"]:
            continue
        for run in executions(host.history(instance["instanceId"], all_executions=True)):
            scheduled = {e["EventId"] for e in run if e["EventType"] == TASK_SCHEDULED and e["Name"] == PROCESS_IMAGE}
            for event in run:
                if event["EventType"] == TASK_COMPLETED and event["TaskScheduledId"] in scheduled:
                    result = json.loads(event["Result"])
                    result = json.loads(result) if isinstance(result, str) else result
                    calls.append({"name": result["name"], "status": result["status"]})
    return calls


def positions(history: list[dict[str, Any]], event_type: int, name: str | None = None) -> list[int]:
    return [
        i for i, e in enumerate(history) if e["EventType"] == event_type and (name is None or e.get("Name") == name)
    ]


def timeout_timer_ids(history: list[dict[str, Any]], minutes: int) -> list[int]:
    """Ids of the timers created ``minutes`` ahead of their episode, give or take the time the
    proof sheet took (the review's timeout links)."""
    ids, now = [], None
    for event in history:
        if event["EventType"] == ORCHESTRATOR_STARTED:
            now = parse_ts(event["Timestamp"])
        elif (
            event["EventType"] == TIMER_CREATED
            and now is not None
            and abs((parse_ts(event["FireAt"]) - now).total_seconds() - minutes * 60) < 30
        ):
            ids.append(event["EventId"])
    return ids


async def awaiting(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    return await wait_for(http, url, lambda s: s["batchStatus"] == "AwaitingApproval", timeout=90)


async def test_approve_runs_the_rest_without_rendering_the_sample_again(monkeypatch, blob_service, container_factory):
    monkeypatch.setenv("SHARD_SIZE", "4")
    source, output = container_factory(), container_factory()
    sources = seed_images(blob_service, source, IMAGES)
    request = review_request(source, output, "rv-approve")
    async with keyed_host() as host, keyed_session() as http:
        started = await start_batch(http, host.api_url("batches"), request)
        url = started["statusQueryGetUri"]
        waiting = await awaiting(http, url)
        review = waiting["review"]
        assert waiting["stage"] == "awaiting_approval" and waiting["approvePostUri"] == url + "/approve", waiting
        assert review["sample"] == SAMPLE and review["on_timeout"] == "reject" and review["timeout_at"], review
        assert review["proof"].endswith(f"/_batches/rv-approve/runs/{started['run']}/proof.html"), review
        assert review["proof_url"].startswith("http://127.0.0.1:") and review["proof_url"].endswith("/proof.html")
        container, blob = review["proof"].split("/", 1)
        proof = blob_service.get_blob_client(container, blob).download_blob().readall().decode()
        assert all(name in proof for name in sample_names(sources)), "every sample image is on the proof sheet"
        before = process_image_results(host, await batch_instances(host, "rv-approve"))
        assert sorted(c["name"] for c in before) == sorted(sample_names(sources)), "only the sample ran"
        await asyncio.sleep(0.5)
        assert len(process_image_results(host, await batch_instances(host, "rv-approve"))) == SAMPLE

        code, body = await post_json(http, url + "/approve", {"reason": "looks right"})
        assert code == 202 and body["review"]["decision"] == "approved", body
        final = await poll(http, url, timeout=120)
        calls = process_image_results(host, await batch_instances(host, "rv-approve"))
        parent = host.history("rv-approve")
        late_code, late = await post_json(http, url + "/reject")

    assert final["batchStatus"] == "Succeeded", final
    assert late_code == 409 and late["error"] == "conflict", late
    counted = Counter(c["name"] for c in calls)
    assert counted == Counter(set(sources)), "every image rendered exactly once: the sample was not rendered again"
    manifest = read_manifest(blob_service, final["manifest"])
    assert manifest["counts"]["done"] == IMAGES and manifest["status"] == "succeeded"
    assert manifest["review"]["decision"] == "approved" and manifest["review"]["by"] == "reviewer"
    assert manifest["review"]["reason"] == "looks right"
    assert set(manifest["review"]["sample_images"]) == sample_names(sources)
    assert final["review"]["decision"] == "approved"
    # The timeout link was cancelled: it never fired, and the run did not wait for it.
    (timeout_id,) = timeout_timer_ids(parent, 600)
    assert timeout_id not in {e.get("TimerId") for e in parent if e["EventType"] == TIMER_FIRED}


async def test_reject_ends_the_run_rejected_with_the_reason_in_the_manifest(
    monkeypatch, blob_service, container_factory
):
    monkeypatch.setenv("SHARD_SIZE", "4")
    source, output = container_factory(), container_factory()
    sources = seed_images(blob_service, source, IMAGES)
    async with keyed_host() as host, keyed_session() as http:
        started = await start_batch(http, host.api_url("batches"), review_request(source, output, "rv-reject"))
        url = started["statusQueryGetUri"]
        await awaiting(http, url)
        bad_code, bad = await post_json(http, url + "/reject", {"reason": 5, "why": "x"})
        code, body = await post_json(http, url + "/reject", {"reason": "the crop cuts heads off"})
        assert code == 202 and body["review"]["decision"] == "rejected", body
        final = await poll(http, url, timeout=120)
        calls = process_image_results(host, await batch_instances(host, "rv-reject"))
        late_code, late = await post_json(http, url + "/approve")

    assert bad_code == 400 and {e["field"] for e in bad["errors"]} == {"reason", "why"}, bad
    assert final["runtimeStatus"] == "Completed" and final["batchStatus"] == "Rejected", final
    assert late_code == 409 and "not awaiting approval" in late["message"], late
    assert sorted(c["name"] for c in calls) == sorted(sample_names(sources)), "nothing but the sample ran"
    manifest = read_manifest(blob_service, final["manifest"])
    assert manifest["status"] == "rejected"
    assert manifest["review"]["decision"] == "rejected" and manifest["review"]["reason"] == "the crop cuts heads off"
    assert manifest["counts"]["done"] == SAMPLE and manifest["counts"]["not_started"] == IMAGES - SAMPLE
    rest = [i for i in manifest["images"] if i["status"] == "not_started"]
    assert {i["name"] for i in rest} == set(sources) - sample_names(sources)
    assert all("proof was rejected (reviewer): the crop cuts heads off" in i["message"] for i in rest), rest[0]
    latest = read_manifest(blob_service, f"{output}/web/_batches/rv-reject/latest.json")
    assert latest["status"] == "rejected"


@pytest.mark.parametrize(("on_timeout", "minutes"), [("reject", 600), ("approve", 8 * 24 * 60)])
async def test_the_timeout_decides_when_nobody_does(monkeypatch, blob_service, container_factory, on_timeout, minutes):
    """Hours (10 h) and days (8 days: past Azure Storage's 6-day timer limit, so a chain of
    3-day links) of timeout in seconds of test: the host skips to the next timer when idle."""
    monkeypatch.setenv("SHARD_SIZE", "4")
    source, output = container_factory(), container_factory()
    sources = seed_images(blob_service, source, IMAGES)
    batch_id = f"rv-timeout-{on_timeout}"
    request = review_request(source, output, batch_id, timeout_minutes=minutes, on_timeout=on_timeout)
    async with keyed_host(time_skipping=True) as host, keyed_session() as http:
        started = await start_batch(http, host.api_url("batches"), request)
        final = await poll(http, started["statusQueryGetUri"], timeout=120)
        calls = process_image_results(host, await batch_instances(host, batch_id))
        parent = host.history(batch_id)

    manifest = read_manifest(blob_service, final["manifest"])
    review = manifest["review"]
    assert review["by"] == "timeout" and review["reason"] == f"nobody decided within {minutes} minutes", review
    links = [d for d in timer_delays_ms(parent) if d > 60_000]
    if minutes > 6 * 24 * 60:
        assert links[:2] == [3 * 86_400_000, 3 * 86_400_000] and len(links) == 3, links
        assert abs(links[2] - 2 * 86_400_000) < 30_000, links  # the rest, from the second link's firing
    else:
        assert len(links) == 1 and abs(links[0] - minutes * 60_000) < 30_000, links
    if on_timeout == "reject":
        assert final["batchStatus"] == "Rejected" and review["decision"] == "rejected", final
        assert sorted(c["name"] for c in calls) == sorted(sample_names(sources))
        assert manifest["counts"]["not_started"] == IMAGES - SAMPLE
    else:
        assert final["batchStatus"] == "Succeeded" and review["decision"] == "approved", final
        assert Counter(c["name"] for c in calls) == Counter(set(sources))
    recorded = read_manifest(blob_service, f"{output}/web/_batches/{batch_id}/runs/{final['run']}/review.json")
    assert recorded["by"] == "timeout" and recorded["decision"] == review["decision"]


async def test_a_decision_and_the_timeout_in_the_same_episode_the_decision_wins(
    monkeypatch, blob_service, container_factory
):
    monkeypatch.setenv("SHARD_SIZE", "4")
    source, output = container_factory(), container_factory()
    sources = seed_images(blob_service, source, IMAGES)
    request = review_request(source, output, "rv-same", timeout_minutes=60, on_timeout="reject")
    async with keyed_host(time_skipping=False) as host, keyed_session() as http:
        started = await start_batch(http, host.api_url("batches"), request)
        url = started["statusQueryGetUri"]
        await awaiting(http, url)
        await host.wait_idle()
        # Hold every orchestrator slot of the host while the timer fires and the event
        # arrives, so the next episode of the parent sees both at once.
        permits = max(1, host.engine.options.max_concurrent_orchestrations)
        for _ in range(permits):
            await host.engine._orch_sem.acquire()
        try:
            await host.skip(timedelta(minutes=61))
            await host.raise_event("rv-same", REVIEW_EVENT, {"decision": "approved", "by": "reviewer", "reason": "ok"})
            await asyncio.sleep(0.3)
        finally:
            for _ in range(permits):
                host.engine._orch_sem.release()
        final = await poll(http, url, timeout=120)
        calls = process_image_results(host, await batch_instances(host, "rv-same"))
        parent = host.history("rv-same")

    (raised,) = positions(parent, EVENT_RAISED, REVIEW_EVENT)
    (timeout_id,) = timeout_timer_ids(parent, 60)
    (fired,) = [i for i in positions(parent, TIMER_FIRED) if parent[i]["TimerId"] == timeout_id]
    episode = lambda i: len(positions(parent[:i], ORCHESTRATOR_STARTED))  # noqa: E731
    assert episode(raised) == episode(fired), "the decision and the timeout arrived in one episode"
    assert final["batchStatus"] == "Succeeded", final
    assert final["review"]["decision"] == "approved" and final["review"]["by"] == "reviewer"
    assert Counter(c["name"] for c in calls) == Counter(set(sources))
    assert RECORD_REVIEW_DECISION not in {e.get("Name") for e in parent if e["EventType"] == TASK_SCHEDULED}


async def test_a_decision_raised_before_the_run_waits_is_not_lost(monkeypatch, blob_service, container_factory):
    monkeypatch.setenv("SHARD_SIZE", "4")
    source, output = container_factory(), container_factory()
    sources = seed_images(blob_service, source, IMAGES)
    request = review_request(source, output, "rv-early", timeout_minutes=60, on_timeout="reject")
    async with keyed_host(time_skipping=False) as host, keyed_session() as http:
        started = await start_batch(http, host.api_url("batches"), request)
        url = started["statusQueryGetUri"]
        # Over HTTP a decision before the proof is refused ...
        code, early = await post_json(http, url + "/approve")
        # ... but an event that arrives early (raised straight to the instance) waits for its wait.
        await host.raise_event("rv-early", REVIEW_EVENT, {"decision": "approved", "by": "reviewer"})
        final = await poll(http, url, timeout=120)
        calls = process_image_results(host, await batch_instances(host, "rv-early"))
        parent = host.history("rv-early")

    assert code == 409 and "not awaiting approval" in early["message"], early
    (raised,) = positions(parent, EVENT_RAISED, REVIEW_EVENT)
    (proof,) = positions(parent, TASK_SCHEDULED, WRITE_PROOF_SHEET)
    assert raised < proof, "the event arrived before the run waited for it"
    assert final["batchStatus"] == "Succeeded" and final["review"]["decision"] == "approved", final
    assert Counter(c["name"] for c in calls) == Counter(set(sources))


async def test_cancel_while_awaiting_approval_and_two_decisions_at_once(monkeypatch, blob_service, container_factory):
    monkeypatch.setenv("SHARD_SIZE", "4")
    source, output = container_factory(), container_factory()
    sources = seed_images(blob_service, source, IMAGES)
    async with keyed_host() as host, keyed_session() as http:
        started = await start_batch(http, host.api_url("batches"), review_request(source, output, "rv-cancel"))
        url = started["statusQueryGetUri"]
        await awaiting(http, url)
        code, _ = await post_json(http, url + "/cancel")
        assert code == 202
        cancelled = await poll(http, url, timeout=60)
        calls = process_image_results(host, await batch_instances(host, "rv-cancel"))

        # A second run of the same batch: approve and reject race; exactly one wins.
        again = await start_batch(http, host.api_url("batches"), review_request(source, output, "rv-cancel"))
        await awaiting(http, url)
        (a_code, a), (r_code, r) = await asyncio.gather(
            post_json(http, url + "/approve"), post_json(http, url + "/reject", {"reason": "no"})
        )
        final = await poll(http, url, timeout=120)

    assert cancelled["batchStatus"] == "Cancelled", cancelled
    assert sorted(c["name"] for c in calls) == sorted(sample_names(sources)), "no lane started after the cancel"
    manifest = read_manifest(blob_service, cancelled["manifest"])
    assert manifest["counts"]["not_started"] == IMAGES - SAMPLE and manifest["review"].get("decision") is None
    assert sorted([a_code, r_code]) == [202, 409], (a, r)
    winner = "approved" if a_code == 202 else "rejected"
    loser = r if a_code == 202 else a
    assert final["run"] == again["run"] and final["review"]["decision"] == winner, final
    assert final["batchStatus"] == ("Succeeded" if winner == "approved" else "Rejected")
    assert "first decision stands" in loser["message"] or "not awaiting approval" in loser["message"], loser


async def test_review_routes_answer_4xx_for_bad_requests(blob_service, container_factory):
    source, output = container_factory(), container_factory()
    seed_images(blob_service, source, 2)
    async with keyed_host() as host, keyed_session() as http:
        base = host.api_url("batches")
        bad = batch_request(source, output, review={"sample": 0, "timeout_minutes": 1.5, "on_timeout": "maybe", "x": 1})
        code, body = await post_json(http, base, bad)
        assert code == 400, body
        assert {e["field"] for e in body["errors"]} == {
            "review.sample",
            "review.timeout_minutes",
            "review.on_timeout",
            "review.x",
        }
        code, body = await post_json(http, base, batch_request(source, output, review={"timeout_minutes": 5}))
        assert code == 400 and [e["field"] for e in body["errors"]] == ["review.sample"], body
        code, body = await post_json(http, base + "/nobody/approve")
        assert code == 404 and body["error"] == "not_found", body
        async with http.post(
            base + "/nobody/reject", data=b"not json", headers={"Content-Type": "application/json"}
        ) as response:
            assert response.status == 400 and (await response.json())["errors"][0]["field"] == "body"
        started = await start_batch(http, base, batch_request(source, output, batch_id="rv-plain"))
        final = await poll(http, started["statusQueryGetUri"], timeout=60)
        assert final["batchStatus"] == "Succeeded" and "review" not in final
        code, body = await post_json(http, base + "/rv-plain/approve", {"reason": "late"})
        assert code == 409 and body["errors"][0]["field"] == "id", body


# --- the proof sheet as a page (no storage) ----------------------------------------------------


def test_proof_links_resolve_from_where_the_sheet_is_stored() -> None:
    from urllib.parse import urljoin

    from imagebatch.naming import proof_blob_name
    from imagebatch.proof import build_proof, cross_container_url

    proof_blob = proof_blob_name("web/2024/", "b1", "20261201T113400Z-1a2b3c")
    for account_root in ("https://acct.blob.core.windows.net/", "http://127.0.0.1:10000/devstoreaccount1/"):
        sheet = f"{account_root}renditions/{proof_blob}"
        link = cross_container_url(proof_blob, "photos", "in/a #1?.jpg")
        assert urljoin(sheet, link) == f"{account_root}photos/in/a%20%231%3F.jpg", link
    request = {
        "source_container": "photos",
        "source_prefix": "in/",
        "output_container": "renditions",
        "output_prefix": "web/2024/",
        "spec": {"format": "webp", "quality": 80, "renditions": [{"name": "thumb", "width": 64}]},
    }
    results = [
        {
            "name": "in/<b>.jpg",
            "status": "processed",
            "outputs": [
                {
                    "rendition": "thumb",
                    "blob": "web/2024/in/<b>.jpg/thumb.0123456789.webp",
                    "width": 64,
                    "height": 48,
                    "bytes": 1000,
                }
            ],
        },
        {"name": "in/bad.jpg", "status": "failed", "outputs": [], "kind": "truncated", "message": "ends <early>"},
    ]
    page = build_proof(
        batch_id="b1",
        run="20261201T113400Z-1a2b3c",
        request=request,
        results=results,
        source_sizes={"in/<b>.jpg": 4000},
        total=10,
        timeout_at="2026-12-02T10:00:00+00:00",
        on_timeout="approve",
    )
    assert "<b>.jpg" not in page and "in/&lt;b&gt;.jpg" in page, "names are escaped"
    assert 'src="../../../../in/%3Cb%3E.jpg/thumb.0123456789.webp"' in page  # up to web/2024/
    assert "75% smaller" in page and "ends &lt;early&gt;" in page and "truncated" in page
    assert "approved automatically" in page and "the other 8 image(s)" in page


async def test_a_pause_during_the_review_holds_the_lanes_an_approval_starts(
    monkeypatch, blob_service, container_factory
):
    monkeypatch.setenv("SHARD_SIZE", "4")
    monkeypatch.setenv("HOLD_POLL_MS", "100,400")
    source, output = container_factory(), container_factory()
    sources = seed_images(blob_service, source, IMAGES)
    async with keyed_host() as host, keyed_session() as http:
        started = await start_batch(http, host.api_url("batches"), review_request(source, output, "rv-pause"))
        url = started["statusQueryGetUri"]
        await awaiting(http, url)
        code, _ = await post_json(http, url + "/pause")
        assert code == 202
        status = await wait_for(http, url, lambda s: (s.get("controls") or {}).get("paused"))
        assert status["batchStatus"] == "AwaitingApproval", "the review still waits for its decision"
        code, body = await post_json(http, url + "/approve")
        assert code == 202, body
        await wait_for(http, url, lambda s: s["batchStatus"] == "Paused")
        await asyncio.sleep(1.0)
        during = process_image_results(host, await batch_instances(host, "rv-pause"))
        code, _ = await post_json(http, url + "/resume")
        assert code == 202
        final = await poll(http, url, timeout=120)
        calls = process_image_results(host, await batch_instances(host, "rv-pause"))
        parent = host.history("rv-pause")

    assert sorted(c["name"] for c in during if c["status"] == "processed") == sorted(sample_names(sources))
    assert final["batchStatus"] == "Succeeded" and final["review"]["decision"] == "approved", final
    assert Counter(c["name"] for c in calls if c["status"] == "processed") == Counter(set(sources))
    approve = positions(parent, EVENT_RAISED, REVIEW_EVENT)[0]
    resume = positions(parent, EVENT_RAISED, "control-2")[0]
    lanes_started = [i for i in positions(parent, SUB_CREATED) if i > approve]
    assert lanes_started and min(lanes_started) > resume, "no lane started between the approval and the resume"
