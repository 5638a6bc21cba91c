"""`make demo`: a demo batch on Azurite through the local dev host.

Starts Azurite (in memory) and the app (the local dev host, or `func start`
with --func when Core Tools are installed), makes sample photos offline,
uploads them, starts a batch, shows progress live, prints the summary and
shuts everything down -- also on Ctrl-C. Every run starts from fresh state,
so a second run needs no cleanup.

``--review`` shows the proof-before-the-batch step: the batch renders a sample
first and waits for approval; the demo prints the proof sheet's URL and then
approves it automatically after a few seconds (``--review-wait`` waits for you
instead: approve or reject from another shell with ``imagebatch approve ID``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from azure.storage.blob import BlobServiceClient

from batchcli.api import ApiClient
from batchcli.download import download_report
from batchcli.watch import outcome_lines, watch
from devtools.sample_images import sample_set
from tests.azurite import azurite_command, connection_string

REPO = Path(__file__).resolve().parent.parent
SOURCE_CONTAINER = "demo-photos"
OUTPUT_CONTAINER = "demo-renditions"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise SystemExit(f"demo: {what} did not come up within {timeout:.0f}s")


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def process(
    command: list[str], *, env: dict[str, str] | None = None, log: Path | None = None, grace: float = 10
) -> Iterator[None]:
    """Run ``command`` for the duration of the block; SIGTERM, then SIGKILL after ``grace`` s."""
    out = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
        if not isinstance(out, int):
            out.close()


def review_step(client: ApiClient, batch_id: str, base: str, *, wait: bool) -> None:
    """Wait for the proof sheet, print where it is, then approve (or let the user decide)."""
    while True:
        status = client.get_batch(batch_id)
        if status.get("batchStatus") == "AwaitingApproval" or status.get("runtimeStatus") not in ("Running", "Pending"):
            break
        time.sleep(0.3)
    review = status.get("review") or {}
    if status.get("batchStatus") != "AwaitingApproval":
        print(f"The batch did not reach its approval step (it is {status.get('batchStatus')}).")
        return
    print(f"Sample of {review.get('sample')} rendered. Proof sheet (open it in a browser): {review.get('proof_url')}")
    if wait:
        print(
            f"Waiting for your decision until {review.get('timeout_at')}:\n"
            f"  IMAGEBATCH_URL={base} imagebatch approve {batch_id}\n"
            f"  IMAGEBATCH_URL={base} imagebatch reject {batch_id} --reason '...'"
        )
        while client.get_batch(batch_id).get("batchStatus") == "AwaitingApproval":
            time.sleep(1)
        return
    print("Approving it automatically in 5 s (make demo ARGS=--review-wait to decide yourself) ...")
    time.sleep(5)
    client.decide_batch(batch_id, "approve", "approved by the demo")
    print("Approved: the rest of the batch runs; the sample is not rendered again.")
    while client.get_batch(batch_id).get("batchStatus") == "AwaitingApproval":
        time.sleep(0.2)  # until the run has applied it


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--func", action="store_true", help="use `func start` (Azure Functions Core Tools)")
    parser.add_argument("--max-concurrency", type=int, default=4)
    parser.add_argument("--keep-running", action="store_true", help="keep Azurite and the app up to explore")
    parser.add_argument(
        "--review",
        action="store_true",
        help="render a sample first, print the proof sheet, then approve it automatically",
    )
    parser.add_argument(
        "--review-wait",
        action="store_true",
        help="with --review: wait for you to approve or reject (imagebatch approve|reject ID)",
    )
    args = parser.parse_args()

    run_dir = REPO / ".devhost" / "demo"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    blob_port, app_port = free_port(), free_port()
    # The dev host needs only blobs; the real Durable extension (func start) also
    # keeps its task hub in queues and tables.
    queue_port, table_port = (free_port(), free_port()) if args.func else (None, None)
    conn = connection_string(
        f"http://127.0.0.1:{blob_port}/devstoreaccount1",
        f"http://127.0.0.1:{queue_port}/devstoreaccount1" if queue_port else None,
        f"http://127.0.0.1:{table_port}/devstoreaccount1" if table_port else None,
    )
    env = {**os.environ, "AzureWebJobsStorage": conn, "PYTHONUNBUFFERED": "1"}

    with ExitStack() as stack:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
        print(f"Starting Azurite on 127.0.0.1:{blob_port} (in memory)")
        command = azurite_command(blob_port, queue_port=queue_port, table_port=table_port)
        stack.enter_context(process(command, log=run_dir / "azurite.log", grace=2))
        wait_until(lambda: port_open(blob_port), 30, "Azurite")

        if args.func:
            if not shutil.which("func"):
                raise SystemExit("demo: --func needs Azure Functions Core Tools (`func`) on PATH")
            command = ["func", "start", "--port", str(app_port)]
        else:
            command = [
                sys.executable,
                "-m",
                "durable_devhost",
                str(REPO),
                "--port",
                str(app_port),
                "--state",
                str(run_dir / "state.sqlite"),
            ]
        print(f"Starting the app: {' '.join(command)}  (log: {run_dir / 'app.log'})")
        stack.enter_context(process(command, env=env, log=run_dir / "app.log"))
        base = f"http://127.0.0.1:{app_port}"
        wait_until(lambda: port_open(app_port), 60, "the app")

        service = BlobServiceClient.from_connection_string(conn)
        # Public only on this throwaway Azurite: the proof sheet (--review) shows each source.
        reviewing = args.review or args.review_wait
        service.create_container(SOURCE_CONTAINER, public_access="container" if reviewing else None)
        # Anonymous read on the outputs, so the report's thumbnails open in a browser.
        service.create_container(OUTPUT_CONTAINER, public_access="container")
        samples = sample_set()
        for name, data in samples:
            service.get_blob_client(SOURCE_CONTAINER, f"samples/{name}").upload_blob(data, overwrite=True)
        print(f"Uploaded {len(samples)} sample photos to {SOURCE_CONTAINER}/samples/")

        client = ApiClient(base_url=base)
        request = {
            "source": {"container": SOURCE_CONTAINER, "prefix": "samples/"},
            "output": {"container": OUTPUT_CONTAINER, "prefix": "web/"},
            "format": "webp",
            "max_concurrency": args.max_concurrency,
            "tolerated_failure_percent": 20,
        }
        if args.review or args.review_wait:
            request["review"] = {"sample": 4, "timeout_minutes": 60, "on_timeout": "reject"}
        started = client.start_batch(request)
        batch_id = started["id"]
        print(f"Batch {batch_id} started; status: {base}/api/batches/{batch_id}")
        if "review" in request:
            review_step(client, batch_id, base, wait=args.review_wait)
        status = watch(client, batch_id, interval=0.5)
        for line in outcome_lines(status):
            print(line)
        downloaded = download_report(client, service, batch_id, REPO / "demo-output")
        print(f"Report and manifest downloaded to {downloaded.report.parent}/")
        if args.keep_running:
            print(f"Open the report: {downloaded.web_url}")
        else:
            print("To browse the report with its thumbnails, run `make demo ARGS=--keep-running`.")
        print(
            f"Renditions: {len(list(service.get_container_client(OUTPUT_CONTAINER).list_blobs()))} blobs in "
            f"{OUTPUT_CONTAINER}; host log: {run_dir / 'app.log'}"
        )
        if args.keep_running:
            print("Everything keeps running until Ctrl-C.")
            while True:
                time.sleep(3600)
        return 0 if status["runtimeStatus"] == "Completed" else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ndemo: interrupted; everything it started was stopped")
        sys.exit(130)
