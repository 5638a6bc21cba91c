"""A 10,000-image batch end to end on the local dev host with Azurite.

Small generated JPEGs (the point is the orchestration at scale, not Pillow),
the real ``function_app.py`` started over HTTP, worker processes for the
activities. Prints the wall time, throughput, the largest history of any
instance, instance count, the manifest's image count, and the peak memory
(RSS) of the host process and of its worker processes.

    python -m bench.scale [--quick] [--images 10000] [--concurrency 10] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import resource
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp
from azure.storage.blob import BlobServiceClient
from PIL import Image

from storage.clients import close_async_clients
from tests.azurite import connection_string, running_azurite

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(os.environ.get("BENCH_RESULTS_DIR") or Path(__file__).resolve().parent / "results")


def tiny_jpegs(count: int) -> list[bytes]:
    """A handful of distinct small photos reused round-robin."""
    out = []
    for i in range(min(count, 16)):
        buffer = io.BytesIO()
        Image.new("RGB", (96, 64), (i * 15 % 256, 120, 255 - i * 15 % 256)).save(buffer, "JPEG", quality=85)
        out.append(buffer.getvalue())
    return out


def upload_all(service: BlobServiceClient, container: str, count: int) -> None:
    service.create_container(container)
    photos = tiny_jpegs(count)

    def put(i: int) -> None:
        service.get_blob_client(container, f"in/{i:06d}.jpg").upload_blob(photos[i % len(photos)])

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(count)))


def vm_hwm_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


async def run(args: argparse.Namespace, conn: str) -> dict:
    from durable_devhost.testing import DevHost

    service = BlobServiceClient.from_connection_string(conn)
    source, output = f"scale-in-{uuid.uuid4().hex[:8]}", f"scale-out-{uuid.uuid4().hex[:8]}"
    started_upload = time.perf_counter()
    upload_all(service, source, args.images)
    upload_s = time.perf_counter() - started_upload
    print(f"uploaded {args.images} images in {upload_s:.1f} s", flush=True)

    request = {
        "source": {"container": source, "prefix": "in/"},
        "output": {"container": output, "prefix": "web/"},
        "renditions": [{"name": "small", "width": 64}, {"name": "tiny", "width": 32}],
        "max_concurrency": args.concurrency,
    }
    async with DevHost(
        REPO,
        processes=args.workers,
        in_memory=False,
        state_path=Path(args.state_dir) / f"scale-{uuid.uuid4().hex[:8]}.sqlite",
    ) as host:
        worker_pids: set[int] = set()
        async with aiohttp.ClientSession() as http:
            start = time.perf_counter()
            async with http.post(host.api_url("batches"), json=request) as response:
                assert response.status == 202, await response.text()
                started = await response.json()
            last_print = 0.0
            while True:
                async with http.get(host.api_url(f"batches/{started['id']}")) as response:
                    status = await response.json()
                pool = getattr(host.engine, "_process_pool", None)
                if pool is not None:
                    worker_pids.update(getattr(pool, "_processes", {}) or {})
                if status["runtimeStatus"] not in ("Running", "Pending"):
                    break
                if time.perf_counter() - last_print > 10:
                    last_print = time.perf_counter()
                    p = status["progress"]
                    print(f"  {time.perf_counter() - start:6.0f} s: {p['completed']}/{p['total']} done", flush=True)
                await asyncio.sleep(0.5)
            wall = time.perf_counter() - start
            worker_peaks = [vm_hwm_kib(pid) for pid in worker_pids]
        instances = await host.engine.list_instances()
        largest = max(len(host.history(i["instanceId"])) for i in instances)
        # The largest message of each kind, and the Azure Storage lines it crosses (none expected).
        payloads = {}
        for kind, stat in host.payload_stats().items():
            crossed = f" EXCEEDS {', '.join(stat['exceeds'])}" if stat["exceeds"] else ""
            payloads[kind] = f"{stat['utf8_bytes']} B ({stat['function']}){crossed}"
        await close_async_clients()
    assert status["runtimeStatus"] == "Completed", status
    manifest_blob = status["manifest"].split("/", 1)[1]
    manifest = json.loads(service.get_blob_client(output, manifest_blob).download_blob().readall())
    return {
        "images": args.images,
        "concurrency": args.concurrency,
        "workers": args.workers,
        "wall_s": round(wall, 1),
        "images_per_s": round(args.images / wall, 1),
        "counts": status["progress"],
        "manifest_images": len(manifest["images"]),
        "instances": len(instances),
        "largest_history_events": largest,
        "largest_payloads": payloads,
        "host_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "worker_peak_rss_mib": [round(k / 1024, 1) for k in worker_peaks if k],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 images (CI smoke test)")
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--state-dir", default=str(REPO / ".devhost"))
    parser.add_argument("--out", type=Path, default=RESULTS / "scale.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.images = 200
    Path(args.state_dir).mkdir(parents=True, exist_ok=True)
    with running_azurite() as endpoint:
        conn = connection_string(endpoint)
        os.environ["AzureWebJobsStorage"] = conn
        result = asyncio.run(run(args, conn))
    for key, value in result.items():
        print(f"{key}: {value}")
    assert result["manifest_images"] == args.images
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
