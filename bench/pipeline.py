"""Benchmark 2: pipeline overhead of running the batch as Durable Functions.

The same download -> render -> upload code (``activities.process_image``)
runs twice against the same Azurite, on fresh output containers:

* **baseline**: a plain ``ProcessPoolExecutor`` with N worker processes
  calling ``process_image`` for every image, N at a time;
* **dev host**: the real ``function_app.py`` on the local dev host with N
  worker processes, started over HTTP with ``max_concurrency = N`` and
  polled until it completes (listing, shards, retries, manifest included).

It prints images/s for both and the ratio (goal: the dev host reaches at
least 90 % of the baseline's throughput), medians over repeats.

    python -m bench.pipeline [--quick] [--images 40] [--size 4000x3000] [--workers 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import multiprocessing
import os
import statistics
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
from azure.storage.blob import BlobServiceClient

from devtools.sample_images import make_photo
from imagebatch.messages import ProcessImageInput
from imagebatch.specs import RenderSpec, SourceBlob
from storage.clients import close_async_clients
from tests.azurite import connection_string, running_azurite

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(os.environ.get("BENCH_RESULTS_DIR") or Path(__file__).resolve().parent / "results")
_worker_service: BlobServiceClient | None = None


def _worker_setup(conn: str) -> None:
    global _worker_service
    _worker_service = BlobServiceClient.from_connection_string(conn)


def _warm(_: int) -> int:
    """Import what the workers need before the clock starts (the dev host's
    workers import the app once at start too)."""
    import activities.process_image  # noqa: F401
    import imagebatch.imaging  # noqa: F401

    time.sleep(0.2)  # keep this worker busy so the next warm-up lands on the other one
    return os.getpid()


def _process_one(payload: dict[str, Any]) -> str:
    from activities.process_image import process_image
    from imagebatch.settings import AppSettings

    assert _worker_service is not None
    return process_image(ProcessImageInput.from_dict(payload), _worker_service, AppSettings())["status"]


def make_images(service: BlobServiceClient, container: str, count: int, size: tuple[int, int]) -> list[str]:
    service.create_container(container)
    names = []
    for i in range(count):
        buffer = io.BytesIO()
        make_photo(*size, seed=100 + i).save(buffer, "JPEG", quality=90)
        name = f"photos/p{i:04d}.jpg"
        service.get_blob_client(container, name).upload_blob(buffer.getvalue())
        names.append(name)
    return names


def run_baseline(conn: str, source: str, names: list[str], workers: int) -> float:
    output = f"base-{uuid.uuid4().hex[:12]}"
    BlobServiceClient.from_connection_string(conn).create_container(output)
    payloads = [ProcessImageInput(source, SourceBlob(n), output, "web/", RenderSpec()).to_dict() for n in names]
    # Spawned like the dev host's workers: bench.run may already have loaded libvips in this
    # process (bench.imaging), and a forked copy of its thread pool can deadlock.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_setup, initargs=(conn,)) as pool:
        list(pool.map(_warm, range(workers)))
        start = time.perf_counter()
        statuses = list(pool.map(_process_one, payloads))
        elapsed = time.perf_counter() - start
    assert statuses.count("processed") == len(names), statuses
    return len(names) / elapsed


async def run_devhost(source: str, count: int, workers: int, host: Any) -> float:
    output = f"host-{uuid.uuid4().hex[:12]}"
    request = {
        "source": {"container": source, "prefix": "photos/"},
        "output": {"container": output, "prefix": "web/"},
        "max_concurrency": workers,
    }
    async with aiohttp.ClientSession() as http:
        start = time.perf_counter()
        async with http.post(host.api_url("batches"), json=request) as response:
            assert response.status == 202, await response.text()
            started = await response.json()
            status_url, instance_id = started["statusQueryGetUri"], started["id"]
        # Wait for the end through the engine (event-driven) rather than polling HTTP at 20 Hz:
        # a real client polls from another machine, not from the host's own two cores.
        await host.engine.wait_for_completion(instance_id, timeout=3600)
        elapsed = time.perf_counter() - start
        async with http.get(status_url) as response:  # the status a client sees, over HTTP
            status = await response.json(content_type=None)
    assert status["runtimeStatus"] == "Completed", status.get("error")
    assert status["summary"]["counts"]["done"] == count, status["summary"]
    return count / elapsed


async def measure(conn: str, args: argparse.Namespace) -> dict[str, Any]:
    from durable_devhost.testing import DevHost

    service = BlobServiceClient.from_connection_string(conn)
    source = f"src-{uuid.uuid4().hex[:12]}"
    names = make_images(service, source, args.images, args.size)
    baseline, hosted = [], []
    async with DevHost(REPO, processes=args.workers) as host:
        await run_devhost(source, len(names), args.workers, host)  # warm-up: worker processes import the app
        for _ in range(args.repeats):
            baseline.append(run_baseline(conn, source, names, args.workers))
            hosted.append(await run_devhost(source, len(names), args.workers, host))
        await close_async_clients()
    return {"baseline_images_per_s": baseline, "devhost_images_per_s": hosted}


def parse_size(text: str) -> tuple[int, int]:
    width, height = text.lower().split("x")
    return int(width), int(height)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few small images (CI smoke test)")
    # 120 images: at ~14 images/s a 40-image batch lasted 3 s, and per-batch costs (listing,
    # manifest and report) then weighed like per-image ones; real batches are far longer.
    parser.add_argument("--images", type=int, default=120)
    parser.add_argument("--size", type=parse_size, default=(4000, 3000))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS / "pipeline.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.size, args.repeats = 6, (640, 480), 1

    with running_azurite() as endpoint:
        conn = connection_string(endpoint)
        os.environ["AzureWebJobsStorage"] = conn
        os.environ.setdefault("ACTIVITY_RETRY_FIRST_INTERVAL_MS", "200")
        result = asyncio.run(measure(conn, args))

    base = statistics.median(result["baseline_images_per_s"])
    hosted = statistics.median(result["devhost_images_per_s"])
    print(
        f"{args.images} images {args.size[0]}x{args.size[1]}, {args.workers} worker processes, "
        f"{args.repeats} repeat(s), medians:"
    )
    print(f"  baseline (plain process pool): {base:7.2f} images/s")
    print(f"  dev host (Durable batch):      {hosted:7.2f} images/s")
    print(f"ratio dev host / baseline throughput: {hosted / base:.2f} (goal >= 0.90)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {**result, "images": args.images, "size": args.size, "workers": args.workers, "ratio": hosted / base},
            indent=2,
        )
    )
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
