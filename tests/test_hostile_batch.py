"""Hostile inputs as one real batch, and what each costs.

``devtools.sample_images.hostile_corpus()`` (empty files, HTML named .jpg,
truncations, corruptions, decompression bombs, zTXt bombs, 300-frame GIFs,
CMYK, 16-bit, bogus EXIF, ...) is uploaded and run as a single batch through
the dev host: each file must end as its *own* result with the expected kind
and a message, and the batch must go on to the end.

Then each file is rendered alone in a forked child of a clean worker process
(no threads, so forking is safe) to measure wall time and peak resident
memory per input, with a hard address-space cap and a kill timer: a file that
hangs or balloons would show as a timeout or a MemoryError, not as a stuck CI.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.sample_images import hostile_corpus
from tests.batchkit import (
    batch_request,
    close_app_storage_clients,
    keyed_host,
    keyed_session,
    poll,
    read_manifest,
    start_batch,
)

REPO = Path(__file__).resolve().parent.parent
CORPUS = hostile_corpus()
# Bounds asserted per input (measured on 2 cores: every input under ~1 s and
# ~7 MB over the worker's baseline; the bounds leave a wide margin for slow CI).
MAX_SECONDS_PER_IMAGE = 5.0
MAX_EXTRA_RSS_MB = 200
CHILD_ADDRESS_SPACE_MB = 2048  # RLIMIT_AS of each child: a runaway allocation fails instead of swapping
CHILD_TIMEOUT_S = 30

WORKER = r"""
import json, os, resource, select, signal, sys, time
from imagebatch.imaging import ImageProcessingError, render_image
from devtools.sample_images import hostile_corpus
from imagebatch.specs import RenderSpec, Rendition

spec = RenderSpec(renditions=(Rendition("small", 32), Rendition("tiny", 16, 16, "cover")), format="jpeg")
cap_mb, timeout = int(sys.argv[1]), float(sys.argv[2])
for name, data, expected in hostile_corpus():
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        resource.setrlimit(resource.RLIMIT_AS, (cap_mb << 20, cap_mb << 20))
        base_kb = int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
        start = time.perf_counter()
        try:
            render_image(data, spec)
            kind = "ok"
        except ImageProcessingError as error:
            kind = error.kind
        except BaseException as error:
            kind = "CRASH " + type(error).__name__ + ": " + str(error)[:200]
        elapsed = time.perf_counter() - start
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        os.write(write_fd, json.dumps({"kind": kind, "seconds": elapsed, "extra_kb": peak_kb - base_kb}).encode())
        os._exit(0)
    os.close(write_fd)
    ready, _, _ = select.select([read_fd], [], [], timeout)
    if ready:
        out = json.loads(os.read(read_fd, 65536) or b'{"kind": "CRASH no report"}')
    else:
        os.kill(pid, signal.SIGKILL)
        out = {"kind": "HANG", "seconds": timeout, "extra_kb": 0}
    os.waitpid(pid, 0)
    os.close(read_fd)
    out.update(name=name, expected=expected)
    print(json.dumps(out), flush=True)
"""


@pytest.mark.usefixtures(close_app_storage_clients.__name__)
async def test_hostile_corpus_as_one_batch(azurite_connection_string, blob_service, container_factory):
    source, output = container_factory(), container_factory(create=False)
    for name, data, _ in CORPUS:
        blob_service.get_blob_client(source, f"in/{name}").upload_blob(data)
    request = batch_request(source, output, max_concurrency=4, tolerated_failure_percent=100)
    async with keyed_host() as host, keyed_session() as http:
        started = await start_batch(http, host.api_url("batches"), request)
        status = await poll(http, started["statusQueryGetUri"], timeout=120)
    assert status["runtimeStatus"] == "Completed", status["summary"]
    manifest = read_manifest(blob_service, status["summary"]["manifest"])
    results = {image["name"]: image for image in manifest["images"]}
    assert len(results) == len(CORPUS), "one result per input, none lost, none merged"
    wrong = []
    for name, _, expected in CORPUS:
        result = results[f"in/{name}"]
        got = "ok" if result["status"] == "processed" else result.get("kind")
        if got != expected or (expected != "ok" and not result.get("message")):
            wrong.append((name, expected, got, result.get("message")))
        if expected == "ok" and len(result["outputs"]) != 2:
            wrong.append((name, "2 outputs", result["outputs"], None))
    slowest = max(manifest["images"], key=lambda i: i.get("duration_ms", 0))
    print(
        f"\n[hostile batch] {len(CORPUS)} inputs, {manifest['counts']}; "
        f"slowest in the batch: {slowest['name']} {slowest.get('duration_ms')} ms"
    )
    assert wrong == []


@pytest.mark.timeout(180)
def test_each_hostile_input_is_bounded_in_time_and_memory() -> None:
    completed = subprocess.run(
        [sys.executable, "-c", WORKER, str(CHILD_ADDRESS_SPACE_MB), str(CHILD_TIMEOUT_S)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    rows = [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == len(CORPUS)
    worst_time = max(rows, key=lambda r: r["seconds"])
    worst_memory = max(rows, key=lambda r: r["extra_kb"])
    print(
        f"\n[hostile inputs] {len(rows)} inputs; slowest {worst_time['name']} {worst_time['seconds'] * 1000:.0f} ms; "
        f"largest peak {worst_memory['name']} +{worst_memory['extra_kb'] / 1024:.1f} MB RSS over the worker baseline"
    )
    for row in sorted(rows, key=lambda r: -r["extra_kb"])[:5]:
        print(f"    {row['name']}: {row['kind']}, {row['seconds'] * 1000:.0f} ms, +{row['extra_kb'] / 1024:.1f} MB")
    problems = [r for r in rows if r["kind"] != r["expected"]]
    assert problems == [], problems
    assert worst_time["seconds"] < MAX_SECONDS_PER_IMAGE, worst_time
    assert worst_memory["extra_kb"] < MAX_EXTRA_RSS_MB * 1024, worst_memory
