"""The proof sheet in a real browser: a batch under review on the dev host + Azurite,
then ``proof.html`` opened from the blob endpoint in headless Chromium while the run
awaits approval.

Why a browser: the sheet's links are relative to where it is stored, and the source
links climb out of the output container into the source container; only a browser
resolving them against the real blob URL (Azurite's path-style one) proves they load.
The sheet's inline script writes the outcome into ``<body data-total data-loaded
data-failed>``, which ``--dump-dom`` shows. Skipped without /usr/bin/chromium.
``UPDATE_SCREENSHOTS=1`` also refreshes ``docs/proof.png`` for the README.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import time

import aiohttp
import pytest
from azure.core.exceptions import ResourceNotFoundError

from devtools.sample_images import sample_set
from tests.batchkit import close_app_storage_clients, keyed_host, keyed_session, poll
from tests.test_report_browser import CHROMIUM, REPO, chromium

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium"),
    pytest.mark.usefixtures(close_app_storage_clients.__name__),
]
SAMPLE = 4
RENDITIONS = [
    {"name": "large", "width": 1200},
    {"name": "medium", "width": 600},
    {"name": "thumb", "width": 240, "height": 240, "fit": "cover"},
]


@pytest.fixture
def proof_containers(blob_service):
    names = ("proof-photos", "proof-renditions")

    def drop() -> None:
        for name in names:
            with contextlib.suppress(ResourceNotFoundError):
                blob_service.delete_container(name)

    drop()
    for name in names:
        # Anonymous read on both: the browser has no key, and sources show beside renditions.
        blob_service.create_container(name, public_access="container")
    yield names
    drop()


async def wait_for_stage(http: aiohttp.ClientSession, url: str, state: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        async with http.get(url) as response:
            body = await response.json()
        if body["batchStatus"] == state:
            return body
        assert body["runtimeStatus"] in ("Running", "Pending"), body
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.2)


async def test_the_proof_sheet_loads_every_source_and_rendition(blob_service, proof_containers, tmp_path):
    source, output = proof_containers
    good = [(name, data) for name, data in sample_set() if not name.startswith("broken")]
    for name, data in good:
        blob_service.get_blob_client(source, f"photos/{name}").upload_blob(data)
    request = {
        "source": {"container": source, "prefix": "photos/"},
        "output": {"container": output, "prefix": "web/2024/"},  # two levels: links must climb past it
        "renditions": RENDITIONS,
        "format": "webp",
        "max_concurrency": 4,
        "batch_id": "proof-in-browser",
        "review": {"sample": SAMPLE, "timeout_minutes": 60},
    }
    async with keyed_host() as host, keyed_session() as http:
        async with http.post(host.api_url("batches"), json=request) as response:
            assert response.status == 202, await response.text()
        status = await wait_for_stage(http, host.api_url("batches/proof-in-browser"), "AwaitingApproval")
        url = status["review"]["proof_url"]
        assert url == f"{blob_service.url.rstrip('/')}/{status['review']['proof']}", status["review"]
        dom = await asyncio.to_thread(chromium, tmp_path / "profile", "--window-size=1280,8000", "--dump-dom", url)
        shot = tmp_path / "proof.png"
        await asyncio.to_thread(chromium, tmp_path / "shot", "--window-size=1280,900", f"--screenshot={shot}", url)
        async with http.post(host.api_url("batches/proof-in-browser/reject"), json={"reason": "test"}) as response:
            assert response.status == 202
        final = await poll(http, host.api_url("batches/proof-in-browser"), timeout=60)
        assert final["batchStatus"] == "Rejected", final

    body = re.search(r"<body([^>]*)>", dom)
    assert body, dom[:500]
    marks = dict(re.findall(r'data-(total|loaded|failed)="(\d+)"', body.group(1)))
    expected = SAMPLE * (1 + len(RENDITIONS))  # each sample image's source beside its renditions
    assert marks == {"total": str(expected), "loaded": str(expected), "failed": "0"}, marks
    assert "awaiting approval" in dom and "smaller" in dom, "bytes saved are shown"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(shot, REPO / "docs" / "proof.png")
