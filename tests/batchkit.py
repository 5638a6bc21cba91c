"""Helpers shared by the reliability tests: seed a batch, drive it over HTTP,
and check -- from storage, not from what the app says -- that nothing was lost,
duplicated or left half-written.

The checks read the output container directly from Azurite (never through a
fault proxy) and decode every rendition with Pillow, because "the manifest
says processed" is exactly the claim these tests exist to verify.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import aiohttp
import pytest
from azure.storage.blob import BlobServiceClient
from PIL import Image

import storage.clients
from durable_devhost.testing import DevHost
from imagebatch.function_names import PROCESS_IMAGE
from imagebatch.naming import BATCHES_FOLDER, output_blob_name, output_version
from imagebatch.specs import RenderSpec

TERMINAL = frozenset({"Completed", "Failed", "Terminated"})
REPO = Path(__file__).resolve().parent.parent
# The app's HTTP tests run with keys on, as on Azure: every route is AuthLevel.FUNCTION, so a
# request without a function key gets 401 there and here (tests/test_security.py proves it).
FUNCTION_KEY = "test-function-key"
KEY_HEADERS = {"x-functions-key": FUNCTION_KEY}
# For SubprocessDevHost(env=...): the same key, read by ``python -m durable_devhost``.
KEYS_ENV = {"DEVHOST_FUNCTION_KEY": FUNCTION_KEY}
SMALL_RENDITIONS = ({"name": "small", "width": 32}, {"name": "tiny", "width": 16, "height": 16, "fit": "cover"})
# What batch_request() asks for, as the app parses it (output names depend on it).
SMALL_SPEC = RenderSpec.from_dict({"renditions": list(SMALL_RENDITIONS), "format": "jpeg", "quality": 80})


def keyed_host(app: Any = REPO, **options: Any) -> DevHost:
    """The app (this repository's function_app.py unless ``app`` says otherwise) on an
    in-process dev host with keys on; send :data:`KEY_HEADERS` (see :func:`keyed_session`)."""
    return DevHost(app, keys={"function": [FUNCTION_KEY]}, **options)


def keyed_session(**options: Any) -> aiohttp.ClientSession:
    """An HTTP session that sends the test function key with every request."""
    return aiohttp.ClientSession(headers=KEY_HEADERS, **options)


def small_jpeg(index: int, size: tuple[int, int] = (64, 48)) -> bytes:
    """A distinct little JPEG per index (colour and a bar position depend on it)."""
    image = Image.new("RGB", size, ((index * 37) % 256, 255 - (index * 11) % 256, (index * 5) % 256))
    x = index % size[0]
    image.paste((255, 255, 255), (x, 0, min(size[0], x + 3), size[1]))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def seed_images(service: BlobServiceClient, container: str, count: int, prefix: str = "in/") -> dict[str, str]:
    """Upload ``count`` small JPEGs; return ``{blob name: etag}``."""
    etags = {}
    for i in range(count):
        name = f"{prefix}img{i:03d}.jpg"
        props = service.get_blob_client(container, name).upload_blob(small_jpeg(i), overwrite=True)
        etags[name] = str(props["etag"]).strip('"')
    return etags


def batch_request(source: str, output: str, **overrides: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "source": {"container": source, "prefix": "in/"},
        "output": {"container": output, "prefix": "web/"},
        "renditions": list(SMALL_RENDITIONS),
        "format": "jpeg",
        "quality": 80,
        "max_concurrency": 8,
        "tolerated_failure_percent": 0,
    }
    request.update(overrides)
    return request


async def start_batch(http: aiohttp.ClientSession, url: str, request: Mapping[str, Any]) -> dict[str, Any]:
    async with http.post(url, json=request) as response:
        body = await response.json(content_type=None)
        assert response.status == 202, (response.status, body)
        return body


async def poll(http: aiohttp.ClientSession, url: str, timeout: float) -> dict[str, Any]:
    """GET ``url`` until the runtime status is terminal; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            async with http.get(url) as response:
                body = await response.json(content_type=None) or {}
        except aiohttp.ClientError:
            body = {}
        if body.get("runtimeStatus") in TERMINAL:
            return body
        await asyncio.sleep(0.2)
    raise AssertionError(f"batch still {body.get('runtimeStatus')} after {timeout}s: {body.get('customStatus')}")


def http_json(url: str, body: dict[str, Any] | None = None, timeout: float = 10) -> tuple[int, Any]:
    """Blocking JSON GET (or POST with ``body``) for tests that drive a subprocess host."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json", **KEY_HEADERS})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def read_manifest(service: BlobServiceClient, location: str) -> dict[str, Any]:
    """``location`` is ``<container>/<blob>`` as the app reports it."""
    container, blob = location.split("/", 1)
    return json.loads(service.get_blob_client(container, blob).download_blob().readall())


def check_outputs(
    service: BlobServiceClient,
    container: str,
    prefix: str,
    sources: Mapping[str, str],
    spec: RenderSpec = SMALL_SPEC,
) -> list[str]:
    """Everything wrong with the output container, as readable lines (empty = all good).

    Exactly one blob per (source, rendition), named for the source's current
    version (etag) and ``spec``, and nothing else outside the ``_batches/``
    folder (no older version left behind); each decodes completely with
    Pillow; its recorded size matches the pixels; it was made from the current
    source version.
    """
    problems: list[str] = []
    expected = {
        output_blob_name(prefix, s, r.name, spec.extension, output_version(etag, spec.fingerprint())): (s, r.name)
        for s, etag in sources.items()
        for r in spec.renditions
    }
    blobs = list(service.get_container_client(container).list_blobs(name_starts_with=prefix, include=["metadata"]))
    seen = [b.name for b in blobs if not b.name.startswith(prefix + BATCHES_FOLDER)]
    if len(seen) != len(set(seen)):
        problems.append("duplicate names in the listing")
    missing, extra = set(expected) - set(seen), set(seen) - set(expected)
    problems += [f"missing {n}" for n in sorted(missing)] + [f"unexpected {n}" for n in sorted(extra)]
    for blob in blobs:
        if blob.name not in expected:
            continue
        source, rendition = expected[blob.name]
        meta = blob.metadata or {}
        if meta.get("source_etag") != sources[source] or unquote(meta.get("source_name", "")) != source:
            problems.append(f"{blob.name}: made from {meta.get('source_name')}@{meta.get('source_etag')}")
        if meta.get("rendition") != rendition:
            problems.append(f"{blob.name}: metadata rendition {meta.get('rendition')!r}")
        data = service.get_blob_client(container, blob.name).download_blob().readall()
        try:
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                size = image.size
        except Exception as error:  # any decode failure is the finding
            problems.append(f"{blob.name}: does not decode ({error})")
            continue
        if (str(size[0]), str(size[1])) != (meta.get("width"), meta.get("height")):
            problems.append(f"{blob.name}: {size} but metadata says {meta.get('width')}x{meta.get('height')}")
    return problems


_EVENT_NAMES = {4: "TaskScheduled", 5: "TaskCompleted", 6: "TaskFailed", 9: "SubOrchestrationInstanceFailed"}


def durable_retries(histories: Iterable[list[Mapping[str, Any]]], images: int) -> dict[str, int]:
    """Durable-level retry figures over a batch's instance histories (the parent
    and its shard sub-orchestrations; ``EventType`` as int or name).

    ``ProcessImage`` is retried by the orchestrators' own window (one more
    ``TaskScheduled`` per attempt); ``ListImages``, ``LoadShard``,
    ``RecordShardResults`` and ``NotifyCompletion`` by the extension's retry
    interceptor (one ``TaskFailed`` per failed attempt); a failed shard shows as
    ``SubOrchestrationInstanceFailed`` in the parent.
    """
    attempts = failed_process = failed_other = failed_shards = 0
    for history in histories:
        scheduled: dict[int, str] = {}
        for event in history:
            kind = _EVENT_NAMES.get(event["EventType"], str(event["EventType"]))
            if kind == "TaskScheduled":
                scheduled[event["EventId"]] = event.get("Name", "")
                attempts += event.get("Name") == PROCESS_IMAGE
            elif kind == "TaskFailed":
                if scheduled.get(event.get("TaskScheduledId", -1)) == PROCESS_IMAGE:
                    failed_process += 1
                else:
                    failed_other += 1
            elif kind == "SubOrchestrationInstanceFailed":
                failed_shards += 1
    return {
        "process_image_attempts": attempts,
        "process_image_reruns": attempts - images,
        "process_image_failed_attempts": failed_process,
        "other_activity_failed_attempts": failed_other,
        "failed_sub_orchestrations": failed_shards,
    }


async def all_histories(host: Any) -> list[list[dict[str, Any]]]:
    """Every instance history of an in-process ``DevHost`` (parent and shards)."""
    return [host.history(i["instanceId"], all_executions=True) for i in await host.engine.list_instances()]


@pytest.fixture
async def close_app_storage_clients() -> Any:
    """Close the app's cached asyncio storage clients (``async def`` activities
    make one per event loop) when an in-process dev host test ends, instead of
    leaving aiohttp to complain about an unclosed session at garbage collection."""
    yield
    await storage.clients.close_async_clients()
