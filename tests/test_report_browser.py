"""The batch report in a real browser: a real batch on the dev host + Azurite,
then ``index.html`` opened from the blob endpoint in headless Chromium.

Why a browser and not just string checks: the report's value is that its
*relative* links resolve from where it is stored; only a browser resolving
them against the real blob URL, and loading every thumbnail anonymously from
Azurite, proves it. The report's inline script writes the outcome into
``<body data-total data-loaded data-failed>``, which ``--dump-dom`` shows.

Needs Debian's Chromium (``apt-get install -y chromium``); skipped without it.
``UPDATE_SCREENSHOTS=1`` also refreshes ``docs/report.png`` for the README.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from azure.core.exceptions import ResourceNotFoundError

from devtools.sample_images import sample_set
from durable_devhost.testing import DevHost
from imagebatch.report import report_blob_name
from tests.batchkit import keyed_host, keyed_session

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
TERMINAL = {"Completed", "Failed", "Terminated"}
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--hide-scrollbars",
    "--virtual-time-budget=15000",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install -y chromium)"
)


def chromium(profile: Path, *args: str) -> str:
    """Run headless Chromium once with a fresh profile; return its stdout."""
    command = [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


async def run_batch(host: DevHost, request: dict, timeout: float = 120) -> dict:
    async with keyed_session() as http:
        async with http.post(host.api_url("batches"), json=request) as response:
            assert response.status == 202, await response.text()
            batch_id = (await response.json())["id"]
        deadline = time.monotonic() + timeout
        while True:
            async with http.get(host.api_url(f"batches/{batch_id}")) as response:
                body = await response.json()
            if body["runtimeStatus"] in TERMINAL:
                return body
            assert time.monotonic() < deadline, body
            await asyncio.sleep(0.2)


@pytest.fixture
def named_containers(blob_service):
    """Readable fixed names ("photos", "renditions" + a tag), because they show in
    the screenshot used by the README; emptied before and after the test."""
    names = ("report-photos", "report-renditions")

    def drop() -> None:
        for name in names:
            with contextlib.suppress(ResourceNotFoundError):
                blob_service.delete_container(name)

    drop()
    for name in names:
        blob_service.create_container(name)
    yield names
    drop()


async def test_the_report_loads_every_thumbnail_from_the_blob_endpoint(
    azurite_connection_string, blob_service, named_containers, tmp_path
):
    source, output = named_containers
    # Anonymous read, as a static-site/CDN setup would have: the browser has no key.
    blob_service.get_container_client(output).set_container_access_policy(
        signed_identifiers={}, public_access="container"
    )
    samples = sample_set()
    for name, data in samples:
        blob_service.get_blob_client(source, f"photos/{name}").upload_blob(data)
    prefix = "web/2024/"  # two levels deep: links must climb past the prefix correctly
    request = {
        "source": {"container": source, "prefix": "photos/"},
        "output": {"container": output, "prefix": prefix},
        "renditions": [
            {"name": "large", "width": 1200},
            {"name": "medium", "width": 600},
            {"name": "thumb", "width": 240, "height": 240, "fit": "cover"},
        ],
        "format": "webp",
        "quality": 75,
        "max_concurrency": 4,
        "tolerated_failure_percent": 10,
        "batch_id": "summer-photos-2024",
    }
    async with keyed_host() as host:
        status = await run_batch(host, request)

    assert status["runtimeStatus"] == "Completed", status
    report_blob = report_blob_name(prefix, "summer-photos-2024", status["run"])
    assert status["summary"]["report"] == f"{output}/{report_blob}"
    url = f"{blob_service.url.rstrip('/')}/{output}/{report_blob}"
    good = sum(1 for name, _ in samples if not name.startswith("broken"))

    # A tall window puts every lazy thumbnail near the viewport so all load.
    dom = await asyncio.to_thread(chromium, tmp_path / "profile-dom", "--window-size=1280,6000", "--dump-dom", url)
    body = re.search(r"<body([^>]*)>", dom)
    assert body, dom[:500]
    marks = dict(re.findall(r'data-(total|loaded|failed)="(\d+)"', body.group(1)))
    assert marks == {"total": str(good), "loaded": str(good), "failed": "0"}, marks
    assert "broken.jpg" in dom and "truncated" in dom, "the failure table lists the broken image and why"

    shot = tmp_path / "report.png"
    await asyncio.to_thread(chromium, tmp_path / "profile-shot", "--window-size=1280,900", f"--screenshot={shot}", url)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(shot, REPO / "docs" / "report.png")
