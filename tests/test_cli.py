"""The ``imagebatch`` CLI against the real app on the dev host and Azurite.

The CLI is blocking (urllib, the storage SDK) while the dev host runs on the
test's event loop, so every command runs in a worker thread through
``main([...])``: exactly what a user's shell would run, minus the process.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import webbrowser
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from PIL import Image

from batchcli.__main__ import build_parser, main
from batchcli.request import batch_request
from devtools.sample_images import sample_set
from durable_devhost.testing import DevHost
from tests.batchkit import FUNCTION_KEY, keyed_host

REPO = Path(__file__).resolve().parent.parent
DEAD_URL = "http://127.0.0.1:9"

Cli = Callable[..., Awaitable[tuple[int, str, str]]]


@pytest.fixture
def cli(capsys) -> Cli:
    """``code, stdout, stderr = await cli("watch", "x", ...)``."""

    async def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = await asyncio.to_thread(main, list(args))
        out, err = capsys.readouterr()
        assert "Traceback" not in err, err
        return code, out, err

    return run


@pytest.fixture
async def app_host(azurite_connection_string, monkeypatch):
    """The app with keys on; the CLI finds the key where users put it (IMAGEBATCH_KEY)."""
    monkeypatch.setenv("IMAGEBATCH_KEY", FUNCTION_KEY)
    async with keyed_host() as host:
        yield host


def small_samples() -> list[tuple[str, bytes]]:
    """Two good photos and the broken one: enough for every outcome, fast."""
    samples = dict(sample_set())
    return [(name, samples[name]) for name in ("small.jpg", "logo-alpha.png", "broken.jpg")]


def write_folder(root: Path) -> None:
    for name, data in small_samples():
        (root / "sub" if name.endswith(".png") else root).mkdir(parents=True, exist_ok=True)
        (root / "sub" / name if name.endswith(".png") else root / name).write_bytes(data)
    (root / ".DS_Store").write_bytes(b"junk")


async def test_upload_skips_unchanged_files_on_the_second_run(
    cli: Cli, tmp_path, blob_service, container_factory, azurite_connection_string
):
    write_folder(tmp_path)
    container = container_factory(create=False)  # upload creates it
    args = (
        "upload",
        str(tmp_path),
        "--container",
        container,
        "--prefix",
        "photos",
        "--connection-string",
        azurite_connection_string,
    )

    code, out, _ = await cli(*args)
    assert code == 0 and "uploaded 3 file(s)" in out and "skipped 0" in out
    blobs = {b.name: b for b in blob_service.get_container_client(container).list_blobs()}
    assert set(blobs) == {"photos/small.jpg", "photos/broken.jpg", "photos/sub/logo-alpha.png"}
    assert blobs["photos/sub/logo-alpha.png"].content_settings.content_type == "image/png"
    assert all(b.content_settings.content_md5 for b in blobs.values())

    code, out, _ = await cli(*args)
    assert code == 0 and "uploaded 0 file(s)" in out and "skipped 3 unchanged" in out

    (tmp_path / "small.jpg").write_bytes(b"changed" + (tmp_path / "small.jpg").read_bytes()[7:])  # same size
    code, out, _ = await cli(*args)
    assert code == 0 and "uploaded 1 file(s)" in out and "skipped 2 unchanged" in out


async def test_submit_watch_and_download_the_report(
    cli: Cli, app_host, tmp_path, blob_service, container_factory, monkeypatch
):
    source, output = container_factory(), container_factory()
    for name, data in small_samples():
        blob_service.get_blob_client(source, f"in/{name}").upload_blob(data)
    submit = (
        "submit",
        "--url",
        app_host.url,
        "--source-container",
        source,
        "--prefix",
        "in/",
        "--output-container",
        output,
        "--output-prefix",
        "web/",
        "--rendition",
        "medium:200",
        "--rendition",
        "thumb:64x64:cover",
        "--format",
        "webp",
        "--quality",
        "70",
        "--max-concurrency",
        "2",
        "--interval",
        "0.1",
        "--watch",
    )

    code, out, err = await cli(*submit, "--tolerated-failure-percent", "50", "--batch-id", "cli-ok")
    assert code == 0, err
    assert "batch cli-ok started" in out and f"status: {app_host.url}/api/batches/cli-ok" in out
    assert "cli-ok: Succeeded - 2 processed, 0 skipped, 1 failed of 3" in out
    assert re.search(rf"report: {output}/web/_batches/cli-ok/runs/[0-9TZa-f-]+/index.html\n", out), out
    assert "1 failed" in err, "the progress bar shows the counts"
    (thumb_name,) = [
        b.name for b in blob_service.get_container_client(output).list_blobs(name_starts_with="web/in/small.jpg/thumb.")
    ]
    thumb = blob_service.get_blob_client(output, thumb_name).get_blob_properties()
    assert thumb.metadata["width"] == "64"

    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", lambda url: opened.append(url) or True)
    code, out, err = await cli("report", "cli-ok", "--url", app_host.url, "--out", str(tmp_path / "r"), "--open")
    assert code == 0, err
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["batch_id"] == "cli-ok" and len(manifest["images"]) == 3
    assert "Batch cli-ok" in (tmp_path / "r" / "index.html").read_text()
    assert opened == [(tmp_path / "r" / "index.html").resolve().as_uri()], "private container: the local copy"
    assert "thumbnails show only" in err

    blob_service.get_container_client(output).set_container_access_policy(
        signed_identifiers={}, public_access="container"
    )
    code, out, _ = await cli("report", "cli-ok", "--url", app_host.url, "--out", str(tmp_path / "r"), "--open")
    assert code == 0 and opened[-1].startswith(f"{blob_service.url.rstrip('/')}/{output}/web/_batches/cli-ok/runs/")
    assert opened[-1].endswith("/index.html")

    # Same sources, no tolerance: the batch ends Failed and watch says so with exit 1.
    code, out, err = await cli(*submit, "--batch-id", "cli-strict")
    assert code == 1, err
    assert "cli-strict: Failed" in out and "error: " in out
    assert re.search(rf"report: {output}/web/_batches/cli-strict/runs/[0-9TZa-f-]+/index.html\n", out), out


def seed_tiny(blob_service, container: str, count: int) -> None:
    """``count`` tiny JPEGs (img00.jpg ...): seconds of work for one lane."""
    tiny = io.BytesIO()
    Image.new("RGB", (24, 16), (90, 140, 200)).save(tiny, "JPEG")
    for i in range(count):
        blob_service.get_blob_client(container, f"img{i:02d}.jpg").upload_blob(tiny.getvalue())


def one_container(url: str, container: str) -> tuple[str, ...]:
    """``submit`` options for a batch whose sources and renditions share one container."""
    return (
        "--url",
        url,
        "--source-container",
        container,
        "--prefix",
        "",
        "--output-container",
        container,
        "--output-prefix",
        "web/",
    )


async def test_cancel_stops_a_running_batch_gracefully(cli: Cli, app_host, blob_service, container_factory):
    source = container_factory()
    seed_tiny(blob_service, source, 40)  # one lane, 40 images: seconds of work, so the cancel lands mid-batch
    code, out, err = await cli(
        "submit",
        *one_container(app_host.url, source),
        "--batch-id",
        "cli-stop",
        "--max-concurrency",
        "1",
        "--rendition",
        "t:16",
    )
    assert code == 0, err

    code, out, err = await cli("cancel", "cli-stop", "--url", app_host.url, "--wait", "--interval", "0.1")
    assert code == 0 and "cancel requested" in out, err
    assert re.search(r"cli-stop: Cancelled - \d+ processed, 0 skipped, 0 failed, \d+ not started of 40", out), out
    status = await app_host.status("cli-stop")
    assert status and status["runtimeStatus"] == "Completed" and status["output"]["status"] == "cancelled"

    code, _, err = await cli("cancel", "cli-stop", "--url", app_host.url)
    assert code == 2 and err.strip() == "imagebatch: error: batch 'cli-stop' is not running; nothing to cancel"


async def test_errors_are_one_clear_line_and_exit_2(cli: Cli, app_host, monkeypatch):
    code, _, err = await cli("watch", "any", "--url", DEAD_URL)
    assert code == 2 and err.startswith(f"imagebatch: error: cannot reach {DEAD_URL}") and err.count("\n") == 1

    for command in (("watch", "nope"), ("cancel", "nope"), ("report", "nope")):
        code, _, err = await cli(*command, "--url", app_host.url)
        assert code == 2 and err == f"imagebatch: error: no batch with id 'nope' at {app_host.url}\n", command

    code, _, err = await cli(
        "submit",
        "--url",
        app_host.url,
        "--source-container",
        "UPPER",
        "--prefix",
        "",
        "--output-container",
        "ok-out",
        "--rendition",
        "large:9000",
        "--quality",
        "0",
    )
    assert code == 2
    lines = err.splitlines()
    assert lines[0].startswith("imagebatch: error: invalid request (HTTP 400)")
    fields = {line.split(":")[0].strip() for line in lines[1:]}
    assert fields == {"source.container", "renditions[0].width", "quality"}, lines

    code, _, err = await cli("upload", "/no/such/dir", "--container", "c1c")
    assert code == 2 and err == "imagebatch: error: not a directory: /no/such/dir\n"
    monkeypatch.delenv("AzureWebJobsStorage")
    code, _, err = await cli("upload", ".", "--container", "c1c")
    assert code == 2 and "no storage connection" in err

    with pytest.raises(SystemExit) as usage:
        main(["submit", "--source-container", "a", "--output-container", "b", "--prefix", "", "--rendition", "x"])
    assert usage.value.code == 2


async def test_the_key_is_sent_as_x_functions_key(cli: Cli, azurite_connection_string):
    async with DevHost(REPO, keys={"function": ["secret-key"]}) as host:
        code, _, err = await cli("watch", "nope", "--url", host.url)
        assert code == 2 and "refused the key (HTTP 401)" in err
        code, _, err = await cli("--key", "secret-key", "watch", "nope", "--url", host.url)
        assert code == 2 and "no batch with id 'nope'" in err, "the key was accepted"


async def test_pause_resume_and_set_concurrency(cli: Cli, app_host, blob_service, container_factory, monkeypatch):
    monkeypatch.setenv("SHARD_SIZE", "2")
    monkeypatch.setenv("HOLD_POLL_MS", "100,400")
    source = container_factory()
    seed_tiny(blob_service, source, 30)
    code, out, err = await cli(
        "submit",
        *one_container(app_host.url, source),
        "--batch-id",
        "cli-ctl",
        "--max-concurrency",
        "1",
        "--rendition",
        "t:16",
    )
    assert code == 0, err
    code, out, err = await cli("pause", "cli-ctl", "--url", app_host.url)
    assert code == 0 and "pause requested" in out, err
    code, out, err = await cli("set-concurrency", "cli-ctl", "3", "--url", app_host.url)
    assert code == 0 and "at most 3 images at once" in out, err
    code, out, err = await cli("resume", "cli-ctl", "--url", app_host.url)
    assert code == 0 and "resume requested" in out, err
    code, out, err = await cli("watch", "cli-ctl", "--url", app_host.url, "--interval", "0.1")
    assert code == 0 and "cli-ctl: Succeeded" in out, (out, err)
    code, _, err = await cli("pause", "cli-ctl", "--url", app_host.url)
    assert code == 2 and "is not running" in err, err


def test_submit_options_map_to_every_field_of_the_api() -> None:
    args = build_parser().parse_args(
        [
            "submit",
            "--source-container",
            "photos",
            "--blob",
            "a.jpg",
            "--blob",
            "b/c.png",
            "--output-container",
            "out",
            "--output-prefix",
            "web/",
            "--rendition",
            "large:1600",
            "--rendition",
            "thumb:320x320:cover",
            "--rendition",
            "box:200x100:contain",
            "--format",
            "png",
            "--quality",
            "90",
            "--max-concurrency",
            "7",
            "--tolerated-failure-percent",
            "2.5",
            "--batch-id",
            "b-1",
            "--deadline-minutes",
            "90",
        ]
    )
    assert batch_request(args) == {
        "source": {"container": "photos", "blobs": ["a.jpg", "b/c.png"]},
        "output": {"container": "out", "prefix": "web/"},
        "renditions": [
            {"name": "large", "width": 1600},
            {"name": "thumb", "width": 320, "height": 320, "fit": "cover"},
            {"name": "box", "width": 200, "height": 100, "fit": "contain"},
        ],
        "format": "png",
        "quality": 90,
        "max_concurrency": 7,
        "tolerated_failure_percent": 2.5,
        "batch_id": "b-1",
        "deadline_minutes": 90,
    }
    minimal = build_parser().parse_args(
        ["submit", "--source-container", "p", "--prefix", "", "--output-container", "o"]
    )
    assert batch_request(minimal) == {"source": {"container": "p", "prefix": ""}, "output": {"container": "o"}}


async def test_approve_and_reject_a_proof_from_the_cli(cli: Cli, app_host, blob_service, container_factory):
    source = container_factory()
    seed_tiny(blob_service, source, 6)
    common = ("--url", app_host.url)
    submit = (
        "submit",
        *one_container(app_host.url, source),
        "--rendition",
        "t:16",
        "--max-concurrency",
        "2",
        "--review-sample",
        "2",
        "--review-timeout-minutes",
        "120",
    )

    async def awaiting(batch_id: str) -> None:
        for _ in range(600):
            status = await app_host.status(batch_id)
            if status and (status.get("customStatus") or {}).get("stage") == "awaiting_approval":
                return
            await asyncio.sleep(0.05)
        raise AssertionError(status)

    code, out, err = await cli(*submit, "--batch-id", "cli-ok-review")
    assert code == 0, err
    code, _, err = await cli("approve", "cli-ok-review", *common)
    assert code == 2 and "is not awaiting approval" in err, err  # still rendering its sample
    await awaiting("cli-ok-review")
    code, out, err = await cli("approve", "cli-ok-review", *common, "--reason", "fine")
    assert code == 0 and "approved; the rest of the batch runs" in out and "(reason: fine)" in out, (out, err)
    code, out, err = await cli("watch", "cli-ok-review", *common, "--interval", "0.1")
    assert code == 0 and "cli-ok-review: Succeeded - 6 processed" in out, out
    assert "review: approved by reviewer (fine)" in out

    code, out, err = await cli(*submit, "--batch-id", "cli-no-review")
    await awaiting("cli-no-review")
    code, out, err = await cli("reject", "cli-no-review", *common, "--reason", "too dark")
    assert code == 0 and "rejected; the run stops" in out, err
    code, out, err = await cli("watch", "cli-no-review", *common, "--interval", "0.1")
    # Same sources and outputs as the first batch: the sample is up to date (skipped).
    assert code == 1 and "cli-no-review: Rejected - 0 processed, 2 skipped, 0 failed, 4 not started of 6" in out, out
    code, _, err = await cli("reject", "cli-no-review", *common)
    assert code == 2 and "not awaiting approval" in err


def test_watch_shows_the_proof_sheet_while_awaiting_approval() -> None:
    from rich.console import Console

    from batchcli.watch import watch

    review = {
        "sample": 3,
        "proof": "out/web/_batches/b/runs/r/proof.html",
        "proof_url": "http://h/out/proof.html",
        "timeout_at": "2026-12-02T10:00:00+00:00",
        "on_timeout": "reject",
    }
    statuses = iter(
        [
            {
                "id": "b",
                "runtimeStatus": "Running",
                "batchStatus": "AwaitingApproval",
                "review": review,
                "progress": {"total": 9, "completed": 3},
            },
            {
                "id": "b",
                "runtimeStatus": "Running",
                "batchStatus": "AwaitingApproval",
                "review": review,
                "progress": {"total": 9, "completed": 3},
            },
            {"id": "b", "runtimeStatus": "Completed", "batchStatus": "Succeeded", "progress": {"total": 9, "done": 9}},
        ]
    )

    class Client:
        def get_batch(self, batch_id: str) -> dict:
            return next(statuses)

    buffer = io.StringIO()
    final = watch(Client(), "b", console=Console(file=buffer, width=200), sleep=lambda _: None)  # type: ignore[arg-type]
    shown = buffer.getvalue()
    assert final["batchStatus"] == "Succeeded"
    assert shown.count("proof sheet: http://h/out/proof.html") == 1, shown
    assert "imagebatch approve b" in shown and "then: reject" in shown


def test_review_options_map_to_the_review_field() -> None:
    args = build_parser().parse_args(
        [
            "submit",
            "--source-container",
            "p",
            "--prefix",
            "",
            "--output-container",
            "o",
            "--review-sample",
            "5",
            "--review-timeout-minutes",
            "90",
            "--review-on-timeout",
            "approve",
        ]
    )
    assert batch_request(args)["review"] == {"sample": 5, "timeout_minutes": 90, "on_timeout": "approve"}
    only = build_parser().parse_args(
        ["submit", "--source-container", "p", "--prefix", "", "--output-container", "o", "--review-sample", "2"]
    )
    assert batch_request(only)["review"] == {"sample": 2}
