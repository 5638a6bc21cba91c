"""``imagebatch`` / ``python -m batchcli``: argument parsing and the commands.

Each command is a small function over already-parsed arguments; ``main``
turns every :class:`CliError` into lines on stderr and exit code 2, so a
typo never ends in a traceback. Exit codes: 0 success (or a Completed
batch), 1 a batch that ended Failed/Terminated, 2 usage or runtime error,
130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
import webbrowser
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from batchcli.api import DEFAULT_URL, ApiClient
from batchcli.download import download_report
from batchcli.errors import CliError
from batchcli.request import batch_request, parse_rendition
from batchcli.storage import CONNECTION_ENV, blob_service
from batchcli.upload import upload_directory
from batchcli.watch import exit_code, outcome_lines, watch

PROG = "imagebatch"


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit 2), like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _client(args: argparse.Namespace) -> ApiClient:
    return ApiClient(base_url=args.url, key=args.key or None)


# -- commands --------------------------------------------------------------------------


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def cmd_upload(args: argparse.Namespace) -> int:
    if not Path(args.dir).is_dir():
        raise CliError(f"not a directory: {args.dir}")
    service = blob_service(args.connection_string)
    console = Console(stderr=True)
    with Progress(
        TextColumn("[bold]upload"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
        console=console,
        redirect_stdout=False,
        redirect_stderr=False,
    ) as bar:
        task = bar.add_task("upload", total=None, counts="")
        tally = {"uploaded": 0, "skipped": 0, "failed": 0}

        def on_file(name: str, outcome: str, size: int) -> None:
            tally[outcome] += 1
            bar.update(task, advance=1, counts=" · ".join(f"{n} {k}" for k, n in tally.items()))

        result = upload_directory(
            service,
            Path(args.dir),
            args.container,
            args.prefix,
            workers=args.workers,
            on_start=lambda total: bar.update(task, total=total),
            on_file=on_file,
        )
    print(
        f"uploaded {len(result.uploaded)} file(s) ({_megabytes(result.bytes_sent)}), "
        f"skipped {len(result.skipped)} unchanged, to {args.container}/{(args.prefix or '').rstrip('/')}"
    )
    if result.failed:
        raise CliError(
            f"{len(result.failed)} file(s) failed to upload:", [f"  {name}: {reason}" for name, reason in result.failed]
        )
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    client = _client(args)
    started = client.start_batch(batch_request(args))
    batch_id = started["id"]
    print(f"batch {batch_id} started")
    print(f"status: {client.status_url(batch_id)}")
    if args.watch:
        return _watch_and_report(client, batch_id, args.interval)
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    return _watch_and_report(_client(args), args.id, args.interval)


def _watch_and_report(client: ApiClient, batch_id: str, interval: float) -> int:
    try:
        status = watch(client, batch_id, interval=interval)
    except KeyboardInterrupt:
        print(f"stopped watching; batch {batch_id} goes on (`{PROG} cancel {batch_id}` stops it)", file=sys.stderr)
        return 130
    for line in outcome_lines(status):
        print(line)
    return exit_code(status)


def cmd_cancel(args: argparse.Namespace) -> int:
    client = _client(args)
    client.cancel_batch(args.id)
    print(f"batch {args.id}: cancel requested; images in hand finish, nothing new starts")
    if not args.wait:
        return 0
    status = watch(client, args.id, interval=args.interval)
    for line in outcome_lines(status):
        print(line)
    return 0 if status.get("batchStatus") == "Cancelled" else exit_code(status)


def cmd_control(args: argparse.Namespace) -> int:
    client = _client(args)
    body = {"max_concurrency": args.max_concurrency} if args.command == "set-concurrency" else None
    answer = client.control_batch(args.id, args.command, body)
    controls = answer.get("controls") or {}
    what = {
        "pause": "pause requested; images in hand finish, nothing new starts until resumed",
        "resume": "resume requested; images start again",
        "set-concurrency": f"at most {controls.get('max_concurrency')} images at once from now on",
    }[args.command]
    print(f"batch {args.id}: {what}")
    return 0


def cmd_decide(args: argparse.Namespace) -> int:
    answer = _client(args).decide_batch(args.id, args.command, args.reason)
    recorded = answer.get("review") or {}
    what = {
        "approve": "approved; the rest of the batch runs (the sample is not rendered again)",
        "reject": "rejected; the run stops and its manifest says why",
    }[args.command]
    print(f"batch {args.id}: {what}" + (f" (reason: {recorded['reason']})" if recorded.get("reason") else ""))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else Path.cwd() / args.id
    downloaded = download_report(_client(args), blob_service(args.connection_string), args.id, out)
    print(f"manifest: {downloaded.manifest}")
    print(f"report: {downloaded.report}")
    if downloaded.web_url:
        print(f"online: {downloaded.web_url}")
    if args.open:
        target = downloaded.web_url or downloaded.report.resolve().as_uri()
        if not downloaded.web_url:
            print(
                "note: thumbnails show only when the report is opened from storage (container not public)",
                file=sys.stderr,
            )
        webbrowser.open(target)
    return 0


# -- parser ----------------------------------------------------------------------------


def build_parser() -> Parser:
    parser = Parser(prog=PROG, description="Client for the image-batch function app.")
    # Accepted before or after the command: the copies on the subcommands default to
    # SUPPRESS so they only override the top-level value when given.
    connection = Parser(add_help=False)
    connection.add_argument(
        "--connection-string",
        default=None,
        help=f"storage connection string (default: ${CONNECTION_ENV})",
    )
    common = Parser(add_help=False)
    defaults = {"--url": os.environ.get("IMAGEBATCH_URL", DEFAULT_URL), "--key": os.environ.get("IMAGEBATCH_KEY")}
    helps = {
        "--url": f"the function app's base URL (env IMAGEBATCH_URL, default {DEFAULT_URL})",
        "--key": "function key, sent as x-functions-key (env IMAGEBATCH_KEY)",
    }
    for option, default in defaults.items():
        parser.add_argument(option, default=default, help=helps[option])
        common.add_argument(option, default=argparse.SUPPRESS, help=helps[option])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser("upload", parents=[common, connection], help="upload a folder, skipping unchanged files")
    up.add_argument("dir", help="local folder (recursively; hidden files skipped)")
    up.add_argument("--container", required=True)
    up.add_argument("--prefix", default=None, help="folder in the container, e.g. 2024/")
    up.add_argument("--workers", type=int, default=8, help="parallel uploads (default 8)")
    up.set_defaults(func=cmd_upload)

    sub = commands.add_parser("submit", parents=[common], help="start a batch")
    sub.add_argument("--source-container", required=True)
    what = sub.add_mutually_exclusive_group(required=True)
    what.add_argument("--prefix", help='process every image under this prefix ("" = whole container)')
    what.add_argument("--blob", action="append", help="process this blob (repeatable)")
    sub.add_argument("--output-container", required=True)
    sub.add_argument("--output-prefix")
    sub.add_argument(
        "--rendition",
        action="append",
        type=parse_rendition,
        metavar="NAME:WIDTH[xHEIGHT][:cover]",
        help="an output size (repeatable; default large 1600, medium 800, thumb 320)",
    )
    sub.add_argument("--format", choices=["jpeg", "webp", "png"])
    sub.add_argument("--quality", type=int)
    sub.add_argument("--max-concurrency", type=int)
    sub.add_argument("--tolerated-failure-percent", type=float)
    sub.add_argument("--batch-id")
    sub.add_argument("--deadline-minutes", type=int, help="no new image starts after this many minutes")
    sub.add_argument(
        "--review-sample",
        type=int,
        metavar="N",
        help="proof first: render N sample images, then wait for `approve` or `reject`",
    )
    sub.add_argument("--review-timeout-minutes", type=int, metavar="T", help="time to decide (default a day)")
    sub.add_argument("--review-on-timeout", choices=["reject", "approve"], help="when nobody decides (default reject)")
    sub.add_argument("--watch", action="store_true", help="then follow it like `watch`")
    sub.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)
    sub.set_defaults(func=cmd_submit)

    wat = commands.add_parser(
        "watch", parents=[common], help="live progress until the batch ends (exit 1 if it failed)"
    )
    wat.add_argument("id")
    wat.add_argument("--interval", type=float, default=1.0, help="seconds between polls (default 1)")
    wat.set_defaults(func=cmd_watch)

    can = commands.add_parser(
        "cancel",
        parents=[common],
        help="cancel a running batch gracefully (its manifest lists what was not started)",
    )
    can.add_argument("id")
    can.add_argument("--wait", action="store_true", help="then follow it until it has stopped")
    can.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)
    can.set_defaults(func=cmd_cancel)

    for name, text in (("pause", "pause a running batch (images in hand finish)"), ("resume", "resume a paused batch")):
        ctl = commands.add_parser(name, parents=[common], help=text)
        ctl.add_argument("id")
        ctl.set_defaults(func=cmd_control)
    bound = commands.add_parser(
        "set-concurrency", parents=[common], help="change how many images a running batch processes at once"
    )
    bound.add_argument("id")
    bound.add_argument("max_concurrency", type=int, metavar="M", help="1-1000")
    bound.set_defaults(func=cmd_control)

    for name, text in (
        ("approve", "approve the proof sheet of a batch awaiting approval: the rest runs"),
        ("reject", "reject the proof sheet of a batch awaiting approval: the run stops"),
    ):
        decide = commands.add_parser(name, parents=[common], help=text)
        decide.add_argument("id")
        decide.add_argument("--reason", help="kept in the manifest")
        decide.set_defaults(func=cmd_decide)

    rep = commands.add_parser("report", parents=[common, connection], help="download manifest.json and index.html")
    rep.add_argument("id")
    rep.add_argument("--out", help="folder to write into (default ./<id>)")
    rep.add_argument("--open", action="store_true", help="open the report in a browser")
    rep.set_defaults(func=cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except CliError as error:
        for i, line in enumerate(error.lines()):
            print(f"{PROG}: error: {line}" if i == 0 else line, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
