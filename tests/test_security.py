"""Security properties a deployment relies on, checked on the running app.

* Both HTTP routes are ``AuthLevel.FUNCTION``; with keys configured (as in
  Azure) a request without a key or with a wrong one gets 401 and never
  reaches the app, and a function key works as ``?code=`` and as
  ``x-functions-key``. The Durable management webhooks need the system key.
* Renditions carry none of the original's EXIF (GPS, camera serial), XMP or
  comments, in every output format.
* Neither the manifest, the HTML report, the status responses, the stored
  orchestration input nor the logs (in-process via caplog, and a
  subprocess host's log file) contain the storage account key or the
  connection string.
* ``local.settings.json`` (which holds connection strings) is never
  published.
"""

from __future__ import annotations

import io
import logging
import time
from pathlib import Path

import aiohttp
import pytest
from PIL import Image

from durable_devhost.functions import FunctionIndex
from durable_devhost.testing import DevHost, SubprocessDevHost
from imagebatch.function_names import PROCESS_IMAGE
from tests.azurite import ACCOUNT_KEY
from tests.batchkit import (
    KEYS_ENV,
    batch_request,
    close_app_storage_clients,
    http_json,
    keyed_host,
    keyed_session,
    poll,
    read_manifest,
    start_batch,
)

REPO = Path(__file__).resolve().parent.parent
FUNCTION_KEY = "test-function-key-0123456789"
MASTER_KEY = "test-master-key-9876543210"
SERIAL = "CAMSERIAL-4711-XYZ"
XMP = (
    b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
    b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
    b'xmlns:dc="http://purl.org/dc/elements/1.1/" dc:creator="Secret Photographer"/></rdf:RDF>'
    b'</x:xmpmeta><?xpacket end="w"?>'
)


def jpeg_with_private_metadata() -> bytes:
    """A JPEG carrying GPS coordinates, a camera serial, XMP and a comment."""
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"  # Make
    exif[0xA431] = SERIAL  # BodySerialNumber (Exif IFD tag, stored at top level by Pillow: still EXIF)
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (52.0, 31.0, 12.5), 3: "E", 4: (13.0, 24.0, 36.0)})
    image = Image.new("RGB", (120, 90), (40, 120, 200))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90, exif=exif.tobytes(), xmp=XMP, comment=b"private comment")
    data = buffer.getvalue()
    assert b"Secret Photographer" in data and SERIAL.encode() in data and b"private comment" in data
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(0x8825), "the source really has GPS data"
    return data


def test_http_routes_require_a_function_key() -> None:
    index = FunctionIndex.load(str(REPO / "function_app.py"))
    http = {f.name: f for f in index.functions.values() if f.kind == "http"}
    assert set(http) == {
        "start_batch",
        "get_batch",
        "cancel_batch",
        "pause_batch",
        "resume_batch",
        "update_batch",
        "approve_batch",
        "reject_batch",
    }
    for function in http.values():
        (trigger,) = [b for b in function.bindings if b.get("type") == "httpTrigger"]
        assert str(trigger.get("authLevel")).lower() == "function", (function.name, trigger)


@pytest.mark.usefixtures(close_app_storage_clients.__name__)
async def test_keys_are_enforced_when_configured(azurite_connection_string) -> None:
    keys = {"function": [FUNCTION_KEY], "master": MASTER_KEY}
    invalid = {"source": {"container": "UPPER"}, "output": {"container": "out"}}
    async with DevHost(REPO, keys=keys) as host, aiohttp.ClientSession() as http:
        url = host.api_url("batches")
        status_url = host.api_url("batches/no-such-batch")
        for kwargs in ({}, {"params": {"code": "wrong"}}, {"headers": {"x-functions-key": "wrong"}}):
            async with http.post(url, json=invalid, **kwargs) as response:
                assert response.status == 401, kwargs
            async with http.get(status_url, **kwargs) as response:
                assert response.status == 401, kwargs
        for kwargs in ({"params": {"code": FUNCTION_KEY}}, {"headers": {"x-functions-key": FUNCTION_KEY}}):
            async with http.post(url, json=invalid, **kwargs) as response:
                assert response.status == 400 and (await response.json())["errors"], kwargs
            async with http.get(status_url, **kwargs) as response:
                assert response.status == 404, kwargs
        # The Durable management API is not open either.
        async with http.get(f"{host.url}/runtime/webhooks/durabletask/instances") as response:
            assert response.status == 401
        async with http.get(
            f"{host.url}/runtime/webhooks/durabletask/instances", params={"code": FUNCTION_KEY}
        ) as response:
            assert response.status == 401, "a function key is not the system key"
        assert await host.engine.list_instances() == [], "refused requests started nothing"


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "png"])
@pytest.mark.usefixtures(close_app_storage_clients.__name__)
async def test_renditions_carry_no_private_metadata(fmt: str, blob_service, container_factory) -> None:
    source, output = container_factory(), container_factory(create=False)
    blob_service.get_blob_client(source, "in/private.jpg").upload_blob(jpeg_with_private_metadata())
    request = batch_request(source, output, format=fmt)
    async with keyed_host() as host, keyed_session() as http:
        started = await start_batch(http, host.api_url("batches"), request)
        status = await poll(http, started["statusQueryGetUri"], timeout=60)
    assert status["runtimeStatus"] == "Completed", status["summary"]
    extension = {"jpeg": "jpg", "webp": "webp", "png": "png"}[fmt]
    manifest = read_manifest(blob_service, status["summary"]["manifest"])
    outputs = {o["rendition"]: o["blob"] for o in manifest["images"][0]["outputs"]}
    for rendition in ("small", "tiny"):
        name = outputs[rendition]
        assert name.startswith(f"web/in/private.jpg/{rendition}.") and name.endswith(f".{extension}")
        data = blob_service.get_blob_client(output, name).download_blob().readall()
        for secret in (SERIAL.encode(), b"Secret Photographer", b"SpyCam", b"private comment", b"xmpmeta"):
            assert secret not in data, (fmt, rendition, secret)
        with Image.open(io.BytesIO(data)) as image:
            exif = image.getexif()
            assert not exif.get_ifd(0x8825) and 0x010F not in exif, (fmt, dict(exif))
            assert not {"exif", "xmp", "XML:com.adobe.xmp", "comment"} & set(image.info), image.info.keys()


def _assert_no_secret(text: str, where: str) -> None:
    assert ACCOUNT_KEY not in text, f"account key in {where}"
    assert "AccountKey=" not in text, f"connection string in {where}"
    assert ACCOUNT_KEY[:20] not in text, f"part of the account key in {where}"


@pytest.mark.usefixtures(close_app_storage_clients.__name__)
async def test_no_secret_in_manifest_report_status_or_logs(
    azurite_connection_string, blob_service, container_factory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    source, output = container_factory(), container_factory(create=False)
    blob_service.get_blob_client(source, "in/a.jpg").upload_blob(jpeg_with_private_metadata())
    blob_service.get_blob_client(source, "in/broken.jpg").upload_blob(b"\xff\xd8\xff broken")
    request = batch_request(source, output, tolerated_failure_percent=100)
    async with keyed_host() as host, keyed_session() as http:
        started = await start_batch(http, host.api_url("batches"), request)
        status = await poll(http, started["statusQueryGetUri"], timeout=60)
        async with http.get(host.api_url(f"batches/{started['id']}")) as response:
            friendly = await response.text()
        instances = await host.engine.list_instances(show_input=True)
        histories = [host.history(i["instanceId"], all_executions=True) for i in instances]
    assert status["runtimeStatus"] == "Completed"
    manifest = read_manifest(blob_service, status["summary"]["manifest"])
    _assert_no_secret(str(manifest), "the manifest")
    for blob in blob_service.get_container_client(output).list_blobs(name_starts_with="web/_batches/"):
        text = blob_service.get_blob_client(output, blob.name).download_blob().readall().decode("utf-8", "replace")
        _assert_no_secret(text, blob.name)
    _assert_no_secret(str(started) + str(status) + friendly, "the HTTP responses")
    _assert_no_secret(str(instances) + str(histories), "the orchestration inputs and histories")
    _assert_no_secret("\n".join(r.getMessage() for r in caplog.records), "the in-process logs")
    assert any("azure" in r.name for r in caplog.records), "storage calls were logged (and checked)"


def test_no_secret_in_a_subprocess_host_log(
    azurite_connection_string, blob_service, container_factory, tmp_path: Path
) -> None:
    source, output = container_factory(), container_factory(create=False)
    blob_service.get_blob_client(source, "in/a.jpg").upload_blob(jpeg_with_private_metadata())
    log = tmp_path / "devhost.log"
    with SubprocessDevHost(
        REPO, state_path=tmp_path / "state.sqlite", log_path=log, args=["--verbose"], env=KEYS_ENV
    ) as host:
        code, started = http_json(f"{host.url}/api/batches", batch_request(source, output, batch_id="secret-check"))
        assert code == 202, started
        for _ in range(200):
            _, body = http_json(f"{host.url}/api/batches/secret-check")
            if body["runtimeStatus"] in ("Completed", "Failed"):
                break
            time.sleep(0.1)
    assert body["runtimeStatus"] == "Completed", body
    text = log.read_text(errors="replace")
    assert "Request URL" in text or PROCESS_IMAGE in text, "the log has content to check"
    _assert_no_secret(text, "the dev host's --verbose log")


def test_local_settings_are_never_published() -> None:
    ignored = (REPO / ".funcignore").read_text().split()
    assert "local.settings.json" in ignored
