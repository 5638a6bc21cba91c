"""Four near-limit images at once through the local dev host, over the app's HTTP API:
the host process's peak memory stays within ``IMAGE_MEMORY_BUDGET_MB`` plus a
stated overhead, and all four are processed.

``bench.memory`` measures one ``render_image`` per fresh process; this checks
what a worker actually sees: host.json's ``maxConcurrentActivityFunctions`` (4)
activity threads downloading, decoding and uploading at the same time in one
process (``DevHost(processes=0)``: the activities run in this test's process),
admitted by the per-process budget (``imagebatch.memory_budget``).

The budget is set to 256 MB, below what the four estimates add up to (~330 MB),
so admission has to hold some images back. **Overhead** allowed on top of the
budget: :data:`OVERHEAD_MB`, for the four source files held in memory
(~20 MB), the encoded renditions, the blob SDK's and the dev host's buffers,
libvips's per-thread state and what glibc keeps in its arenas after frees
(measured: see the assertion message; docs/benchmarks.md has the figures).
The peak is the kernel's ``VmHWM`` of this process, reset right before the
batch starts (``/proc/self/clear_refs``), minus the resident size just before.

The inputs (the ``bench.memory`` shapes: WebP 16383x6000 and ~99 MP PNG, TIFF
and JPEG, written by libvips; 3-8 MB each) are built once into the benchmark
cache (~12 s) and reused. The test takes ~15-40 s on 2 cores after that.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest

from tests.batchkit import close_app_storage_clients, keyed_host, keyed_session, poll, read_manifest, start_batch

REPO = Path(__file__).resolve().parent.parent
BUDGET_MB = int(os.environ.get("TEST_MEMORY_HOST_BUDGET_MB", "256"))
OVERHEAD_MB = 128
_CAP = (11_500, 8_600)  # 98.9 MP, just under the 100 MP default pixel cap

pytestmark = [pytest.mark.usefixtures(close_app_storage_clients.__name__), pytest.mark.timeout(240)]


def _inputs() -> dict[str, bytes]:
    from bench.common import cache_dir
    from bench.memory import _rgb

    folder = cache_dir() / "memory-host"
    folder.mkdir(parents=True, exist_ok=True)
    writers = {
        "webp-16383x6000.webp": lambda p: _rgb(16_383, 6_000).webpsave(p, Q=80, effort=0),
        "png-rgb-99mp.png": lambda p: _rgb(*_CAP).pngsave(p, compression=6, filter="sub"),
        "tiff-deflate-99mp.tif": lambda p: _rgb(*_CAP).tiffsave(p, compression="deflate"),
        "jpeg-99mp.jpg": lambda p: _rgb(*_CAP).jpegsave(p, Q=85),
    }
    out = {}
    for name, write in writers.items():
        path = folder / name
        if not path.exists():
            partial = folder / f"partial-{os.getpid()}-{name}"
            write(str(partial))
            partial.replace(path)
        out[name] = path.read_bytes()
    return out


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/self/status")


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc peak RSS reset")
async def test_four_near_limit_images_stay_within_the_memory_budget(monkeypatch, blob_service, container_factory):
    inputs = _inputs()
    monkeypatch.setenv("IMAGE_MEMORY_BUDGET_MB", str(BUDGET_MB))
    source, output = container_factory(), container_factory()
    for name, data in inputs.items():
        blob_service.get_blob_client(source, f"in/{name}").upload_blob(data, overwrite=True)
    request = {
        "source": {"container": source, "prefix": "in/"},
        "output": {"container": output, "prefix": "web/"},
        "renditions": [
            {"name": "large", "width": 1600},
            {"name": "medium", "width": 800},
            {"name": "thumb", "width": 320},
        ],
        "format": "jpeg",
        "quality": 82,
        "max_concurrency": 4,
        "tolerated_failure_percent": 0,
    }
    async with keyed_host(processes=0) as host, keyed_session() as http:
        assert host.settings is not None
        del inputs
        gc.collect()
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # VmHWM := VmRSS from here on
        before = _status_kib("VmRSS")
        started = await start_batch(http, host.api_url("batches"), request)
        final = await poll(http, started["statusQueryGetUri"], timeout=200)
        peak = _status_kib("VmHWM")
    assert final["batchStatus"] == "Succeeded", final
    manifest = read_manifest(blob_service, final["manifest"])
    assert manifest["counts"]["done"] == 4, manifest["counts"]
    assert {i["status"] for i in manifest["images"]} == {"processed"}, manifest["images"]
    growth_mb = (peak - before) / 1024
    print(f"host peak RSS {peak / 1024:.0f} MiB: {growth_mb:.0f} MiB above {before / 1024:.0f} MiB before the batch")
    assert growth_mb <= BUDGET_MB + OVERHEAD_MB, (
        f"peak RSS grew {growth_mb:.0f} MiB during the batch (from {before / 1024:.0f} to {peak / 1024:.0f} MiB), "
        f"more than the {BUDGET_MB} MiB budget + {OVERHEAD_MB} MiB overhead"
    )
