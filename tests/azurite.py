"""Start (or find) a real Azurite blob service for the tests.

``.ci/run`` starts Azurite once and exports ``AZURITE_BLOB_ENDPOINT``; so does
the pytest-xdist controller for its workers (``tests/conftest.py``); plain ``pytest``
without it gets a private in-memory Azurite on a free port, started from ``node_modules``
(as does ``make test``'s slow tier, which empties the variable).

Two things about Azurite shape how the suite uses it:

* Its garbage collector stalls it. When it starts and every ten minutes after,
  ``BlobGCManager`` frees the data of deleted and overwritten blobs one extent at a time,
  each removal a scan of its extent table, without yielding to its event loop. Measured
  with Azurite 3.37 in memory: 40,000 extents of deleted containers kept it at 100 % CPU,
  answering no request, for over 14 minutes (then killed); 10,000 for 168 s. In one CI
  run that landed in the slow tier and ran a test into its 300 s timeout.
* What it keeps slows every later call: in two clean-clone CI runs, one deleting every
  test's containers and one deleting none, the fast tier took 63 s and 98 s, and the
  2,000-name payload test 21 s and 53 s.

So tests delete their containers (``container_factory``), the slow tier starts on an
Azurite of its own (its first sweep comes after the tier has ended), and the 10,000-blob
test runs on a private one (``tests/test_payload_sizes.py``), so a shared Azurite never
holds more than a few thousand deleted extents.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ACCOUNT = "devstoreaccount1"
# The Azurite well-known development key (public, documented by Microsoft).
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
REPO = Path(__file__).resolve().parent.parent


def connection_string(blob_endpoint: str, queue_endpoint: str | None = None, table_endpoint: str | None = None) -> str:
    extra = f"QueueEndpoint={queue_endpoint.rstrip('/')};" if queue_endpoint else ""
    extra += f"TableEndpoint={table_endpoint.rstrip('/')};" if table_endpoint else ""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint={blob_endpoint.rstrip('/')};{extra}"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"Azurite did not listen on 127.0.0.1:{port} within {timeout}s")


def azurite_command(port: int, *, queue_port: int | None = None, table_port: int | None = None) -> list[str]:
    """Blob only (all the app needs), or blob + queue + table when ports are
    given (what the real Durable extension needs under ``func start``)."""
    program = "azurite" if queue_port else "azurite-blob"
    local = REPO / "node_modules" / ".bin" / program
    binary = str(local) if local.exists() else shutil.which(program)
    if not binary:
        raise RuntimeError(f"{program} not found: run `npm ci` (or `make install`) first")
    services: list[str] = []
    if queue_port and table_port:
        services = [
            "--queueHost",
            "127.0.0.1",
            "--queuePort",
            str(queue_port),
            "--tableHost",
            "127.0.0.1",
            "--tablePort",
            str(table_port),
        ]
    return [
        binary,
        *services,
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--inMemoryPersistence",
        "--skipApiVersionCheck",
        "--loose",
        "--silent",
    ]


@contextmanager
def running_azurite() -> Iterator[str]:
    """Yield a blob endpoint URL: the shared one if exported, else a private one."""
    shared = os.environ.get("AZURITE_BLOB_ENDPOINT")
    if shared:
        yield shared
        return
    port = _free_port()
    process = subprocess.Popen(azurite_command(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port, 30)
        yield f"http://127.0.0.1:{port}/{ACCOUNT}"
    finally:
        # In-memory Azurite holds nothing worth a graceful stop, and it waits for
        # idle keep-alive connections before exiting: give it 2 s, then kill it.
        process.terminate()
        try:
            process.wait(2)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()  # reap it: an unreaped child is a ResourceWarning in whatever test runs next
