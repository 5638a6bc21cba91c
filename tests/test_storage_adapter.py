"""The storage adapter (``storage/``) against a real Azurite: the named reads and
writes the activities and the HTTP layer call, and the wall that keeps the SDK
inside ``storage/``.

Most of the adapter is exercised through the activity tests
(``tests/test_activities.py``); this file covers what those do not reach: the
headers each document is written with, reads of what is missing or not JSON,
the asyncio functions, and containers created on first use.
"""

from __future__ import annotations

import ast
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from imagebatch.proof import PROOF_CONTENT_TYPE
from imagebatch.report import REPORT_CONTENT_TYPE
from storage import controls, plans, reports, results, runs
from storage.clients import AsyncBlobService, create_client
from storage.errors import NotFoundError

REPO = Path(__file__).resolve().parent.parent
# Everything of the app outside storage/: the SDK stays behind the adapter.
OUTSIDE_STORAGE = ["activities", "orchestrators", "http_api", "imagebatch", "function_app.py"]
STORAGE_SDKS = ("azure.storage", "azure.identity", "azure.core")


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def test_only_the_storage_adapter_imports_the_storage_sdk() -> None:
    sources = [p for entry in OUTSIDE_STORAGE for p in sorted((REPO / entry).glob("**/*.py")) or [REPO / entry]]
    assert len(sources) > 20, sources  # the walk found the packages
    offenders = {
        str(path.relative_to(REPO)): found
        for path in sources
        if (found := [name for name in _imports(path) if name.startswith(STORAGE_SDKS)])
    }
    assert offenders == {}, "call storage/ instead of the SDK (types: storage.clients.BlobService)"


@pytest.fixture
async def aio_service(azurite_connection_string: str) -> AsyncIterator[AsyncBlobService]:
    client = create_client("STORE", {"STORE": azurite_connection_string}, aio=True)
    async with client:
        yield client


def _headers(service: BlobServiceClient, container: str, name: str) -> tuple[str | None, str | None]:
    settings = service.get_blob_client(container, name).get_blob_properties().content_settings
    return settings.content_type, settings.cache_control


def test_documents_go_in_with_their_content_types_and_no_cache(blob_service, container_factory) -> None:
    container = container_factory(create=False)  # created by the first write
    reports.publish_manifest(blob_service, container, "m.json", {"run": "r1"})
    reports.publish_report(blob_service, container, "index.html", "<p>report</p>")
    reports.publish_proof_sheet(blob_service, container, "proof.html", "<p>proof</p>")
    reports.write_latest_run(blob_service, container, "latest.json", {"run": "r1"})
    plans.write_shard_plan(blob_service, container, "plan/0.json", {"spec": {}}, [{"name": "a.jpg"}])
    plans.write_plan_extra(blob_service, container, "plan/extra.json", {"rejected": []})
    plans.write_source_list(blob_service, container, "list.json", ["a.jpg", "b.jpg"])
    runs.write_cancel_marker(blob_service, container, "cancel.json", {"run": "r1"})

    html = {"index.html": REPORT_CONTENT_TYPE, "proof.html": PROOF_CONTENT_TYPE}
    for name in ("m.json", "index.html", "proof.html", "latest.json", "plan/0.json", "list.json", "cancel.json"):
        assert _headers(blob_service, container, name) == (html.get(name, "application/json"), "no-cache"), name
    assert reports.read_manifest(blob_service, container, "m.json") == {"run": "r1"}
    assert plans.read_shard_plan(blob_service, container, "plan/0.json") == {
        "request": {"spec": {}},
        "images": [{"name": "a.jpg"}],
    }
    assert plans.read_plan_extra(blob_service, container, "plan/extra.json") == {"rejected": []}
    assert plans.read_source_list(blob_service, container, "list.json") == ["a.jpg", "b.jpg"]
    assert runs.marker_exists(blob_service, container, "cancel.json")


def test_missing_documents_read_as_none_or_raise_not_found(blob_service, container_factory) -> None:
    container = container_factory()
    missing_container = container_factory(create=False)
    for where in (container, missing_container):
        assert reports.read_manifest(blob_service, where, "nope.json") is None
        assert plans.read_source_list(blob_service, where, "nope.json") is None
        assert not runs.marker_exists(blob_service, where, "nope.json")
        with pytest.raises(NotFoundError):
            plans.read_shard_plan(blob_service, where, "nope.json")
        with pytest.raises(NotFoundError):
            results.read_shard_part(blob_service, where, "nope.json")
    blob_service.get_blob_client(container, "bad.json").upload_blob(b"<html>")
    with pytest.raises(ValueError):
        reports.read_manifest(blob_service, container, "bad.json")


async def test_shard_parts_round_trip_and_create_their_container(
    aio_service: AsyncBlobService, blob_service, container_factory
) -> None:
    container = container_factory(create=False)
    records = [{"name": "a.jpg", "status": "processed"}]
    await results.write_shard_part(aio_service, container, "parts/0.json", records)
    await results.write_shard_part(aio_service, container, "parts/0.json", records)  # again: same blob
    assert results.read_shard_part(blob_service, container, "parts/0.json") == records
    assert _headers(blob_service, container, "parts/0.json") == ("application/json", "no-cache")


async def test_the_concurrency_bound_is_read_from_the_control_document(
    aio_service: AsyncBlobService, blob_service, container_factory
) -> None:
    container = container_factory()
    assert await controls.read_concurrency_bound(aio_service, container, "controls.json") is None
    client = blob_service.get_blob_client(container, "controls.json")
    client.upload_blob(json.dumps({"version": 2, "max_concurrency": 7}))
    assert await controls.read_concurrency_bound(aio_service, container, "controls.json") == 7
    client.upload_blob(b"not json", overwrite=True)
    assert await controls.read_concurrency_bound(aio_service, container, "controls.json") is None


async def test_a_shard_plan_reads_the_same_sync_and_asyncio(
    aio_service: AsyncBlobService, blob_service, container_factory
) -> None:
    container = container_factory()
    plans.write_shard_plan(blob_service, container, "p/3.json", None, [{"name": "x.jpg", "size": 3}])
    expected = {"request": None, "images": [{"name": "x.jpg", "size": 3}]}
    assert await plans.read_shard_plan_async(aio_service, container, "p/3.json") == expected
    assert plans.read_shard_plan(blob_service, container, "p/3.json") == expected
