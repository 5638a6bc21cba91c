"""The image app end to end: the real function_app.py on the local dev host,
real Azurite, real SDK, real Pillow, driven only through HTTP."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from urllib.parse import unquote

import aiohttp
import pytest

from devtools.sample_images import sample_set
from imagebatch.naming import output_blob_name, output_version
from tests.batchkit import keyed_host, keyed_session

REPO = Path(__file__).resolve().parent.parent
TERMINAL = {"Completed", "Failed", "Terminated"}


async def poll(http: aiohttp.ClientSession, url: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        async with http.get(url) as response:
            body = await response.json(content_type=None)
        if body and body.get("runtimeStatus") in TERMINAL:
            return body
        assert time.monotonic() < deadline, f"still {body.get('runtimeStatus')} after {timeout}s"
        await asyncio.sleep(0.2)


@pytest.fixture
async def app_host(azurite_connection_string):
    async with keyed_host() as host:
        yield host


async def test_a_batch_of_photos_end_to_end(app_host, blob_service, container_factory):
    source, output = container_factory(), container_factory(create=False)
    samples = sample_set()
    for name, data in samples:
        blob_service.get_blob_client(source, f"photos/{name}").upload_blob(data)
    request = {
        "source": {"container": source, "prefix": "photos/"},
        "output": {"container": output, "prefix": "web/"},
        "renditions": [
            {"name": "medium", "width": 400},
            {"name": "thumb", "width": 120, "height": 120, "fit": "cover"},
        ],
        "format": "webp",
        "quality": 75,
        "max_concurrency": 3,
        "tolerated_failure_percent": 25,
    }
    async with keyed_session() as http:
        async with http.post(app_host.api_url("batches"), json=request) as response:
            assert response.status == 202
            started = await response.json()
        status = await poll(http, started["statusQueryGetUri"])
        async with http.get(app_host.api_url(f"batches/{started['id']}")) as response:
            assert response.status == 200
            friendly = await response.json()

    assert status["runtimeStatus"] == "Completed", status["summary"]
    summary = status["summary"]
    broken = [name for name, _ in samples if name.startswith("broken")]
    good = [name for name, _ in samples if name not in broken]
    assert summary["counts"]["done"] == len(good) and summary["counts"]["failed"] == len(broken)
    assert friendly["runtimeStatus"] == "Completed" and friendly["manifest"] == summary["manifest"]
    assert friendly["progress"]["completed"] == len(samples) and friendly["progress"]["in_flight"] == 0

    manifest_blob = summary["manifest"].split("/", 1)[1]
    manifest = json.loads(blob_service.get_blob_client(output, manifest_blob).download_blob().readall())
    written = {o["blob"]: o for i in manifest["images"] for o in i["outputs"]}
    outputs = {b.name: b for b in blob_service.get_container_client(output).list_blobs(include=["metadata"])}
    assert set(written) == {n for n in outputs if "/_batches/" not in n}, "the manifest names exactly what exists"
    for name in good:
        props = blob_service.get_blob_client(source, f"photos/{name}").get_blob_properties()
        for rendition in ("medium", "thumb"):
            fingerprint = unquote(outputs[next(iter(written))].metadata["spec"])
            version = output_version(str(props.etag).strip('"'), fingerprint)
            blob = outputs[output_blob_name("web/", f"photos/{name}", rendition, "webp", version)]
            assert blob.content_settings.content_type == "image/webp"
            assert blob.content_settings.cache_control == "public, max-age=31536000, immutable"
            assert blob.metadata["rendition"] == rendition
    thumb = next(b for n, b in outputs.items() if n.startswith(f"web/photos/{good[0]}/thumb."))
    assert (thumb.metadata["width"], thumb.metadata["height"]) == ("120", "120")
    assert {f["name"] for f in manifest["failures"]} == {f"photos/{n}" for n in broken}
    assert len(manifest["images"]) == len(samples)


async def test_invalid_requests_start_nothing(app_host):
    bad_bodies = [
        (b"not json", 400),
        (json.dumps({"source": {"container": "UPPER"}, "output": {"container": "ok-out"}}).encode(), 400),
        (
            json.dumps(
                {
                    "source": {"container": "abc", "prefix": ""},
                    "output": {"container": "out"},
                    "renditions": [{"name": "x", "width": 9000}],
                }
            ).encode(),
            400,
        ),
        (b"{" + b" " * (1024 * 1024 + 10) + b"}", 413),
    ]
    async with keyed_session() as http:
        for body, expected in bad_bodies:
            async with http.post(
                app_host.api_url("batches"), data=body, headers={"Content-Type": "application/json"}
            ) as response:
                assert response.status == expected
                error = await response.json()
                assert error["errors"], error
        async with http.get(app_host.api_url("batches/nope")) as response:
            assert response.status == 404
            assert (await response.json())["error"] == "not_found"
    assert await app_host.engine.list_instances() == []


async def test_a_running_batch_id_cannot_be_started_twice(app_host, blob_service, container_factory):
    source = container_factory()
    blob_service.get_blob_client(source, "a.jpg").upload_blob(sample_set()[0][1])
    request = {
        "source": {"container": source, "prefix": ""},
        "output": {"container": source, "prefix": "web/"},
        "batch_id": "dup-batch-1",
    }
    async with keyed_session() as http:
        async with http.post(app_host.api_url("batches"), json=request) as response:
            assert response.status == 202
        await app_host.engine.suspend("dup-batch-1", "hold it running for the test")
        async with http.post(app_host.api_url("batches"), json=request) as response:
            assert response.status == 409
            body = await response.json()
            assert body["errors"][0]["field"] == "batch_id"
        await app_host.engine.resume("dup-batch-1", "done")
        final = await poll(http, app_host.api_url("batches/dup-batch-1"))
        assert final["runtimeStatus"] == "Completed"
        async with http.post(app_host.api_url("batches"), json=request) as response:
            assert response.status == 202, "a finished batch id may be started again (re-submission)"
