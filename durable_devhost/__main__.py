"""``python -m durable_devhost [APP_DIR_OR_FILE]``: run a Python v2 Durable app locally.

What ``func start`` + the Durable extension do, with no Azure and no Core Tools:
host.json / local.settings.json are read first (``Values`` become environment variables
before the app is imported, without overriding variables already set), the app is
indexed once, orchestration state lives in SQLite (``<app dir>/.devhost/state.sqlite``
by default, so a restart resumes in-flight instances), and the functions are printed
with their URLs like ``func start`` does.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from aiohttp import web

from .server import close_sdk_session, create_app, host_state, read_route_prefix, resolve_app, start_site


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m durable_devhost", description=__doc__.splitlines()[0])
    p.add_argument("app", nargs="?", default=".", help="app directory or function_app.py (default: .)")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    p.add_argument(
        "--port", type=int, default=None, help="port (default: local.settings.json Host.LocalHttpPort or 7071)"
    )
    state = p.add_mutually_exclusive_group()
    state.add_argument("--state", default=None, help="SQLite state file (default <app dir>/.devhost/state.sqlite)")
    state.add_argument("--in-memory", action="store_true", help="keep no state on disk")
    p.add_argument("--processes", type=int, default=0, help="run activities in N worker processes (0 = threads)")
    p.add_argument("--time-skipping", action="store_true", help="jump to the next timer whenever the host is idle")
    p.add_argument(
        "--function-key",
        action="append",
        default=None,
        help="require this function key (repeatable; also env DEVHOST_FUNCTION_KEY)",
    )
    p.add_argument("--master-key", default=None, help="master key when keys are on (also env DEVHOST_MASTER_KEY)")
    p.add_argument(
        "--fast-replay",
        action="store_true",
        help="cache the SDK's history timestamp parsing (faster replays than the real worker)",
    )
    p.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    return p.parse_args(argv)


def _keys(args: argparse.Namespace) -> dict | None:
    function_keys = list(args.function_key or [])
    if os.environ.get("DEVHOST_FUNCTION_KEY"):
        function_keys.append(os.environ["DEVHOST_FUNCTION_KEY"])
    master = args.master_key or os.environ.get("DEVHOST_MASTER_KEY")
    if not function_keys and not master:
        return None
    return {"function": function_keys, "master": master}


def banner(app: web.Application) -> str:
    """The function list ``func start`` prints."""
    state = host_state(app)
    lines = ["", "Functions:", ""]
    for name, methods, url in state.function_urls():
        lines.append(f"\t{name}: [{methods}] {url}")
    for f in state.index.functions.values():
        if f.kind != "http":
            trigger = next((b.get("type") for b in f.bindings if str(b.get("type", "")).endswith("Trigger")), f.kind)
            lines.append(f"\t{f.name}: {trigger}")
    lines.append("")
    lines.append(f"Durable management API: {state.urls.base_url}/  (task hub {state.urls.hub_name})")
    if state.keys.enabled:
        lines.append(f"Keys are required. Master key: {state.keys.master}")
    return "\n".join(lines)


async def serve(args: argparse.Namespace) -> int:
    from .clock import SkippableClock, SystemClock
    from .engine import Engine, EngineOptions
    from .functions import FunctionIndex
    from .settings import HostSettings
    from .store import SqliteStore

    app_dir, script = resolve_app(args.app)
    if not script.is_file():
        print(f"error: {script} not found", file=sys.stderr)
        return 2
    settings = HostSettings.load(app_dir)  # Values -> os.environ before the app is imported
    index = FunctionIndex.load(str(script))
    if args.in_memory:
        state_path = ":memory:"
    else:
        state_file = Path(args.state) if args.state else app_dir / ".devhost" / "state.sqlite"
        state_file.parent.mkdir(parents=True, exist_ok=True)
        state_path = str(state_file)
    store = SqliteStore(state_path)
    clock = SkippableClock(auto_skip=True) if args.time_skipping else SystemClock()
    options = EngineOptions(
        max_concurrent_activities=settings.max_concurrent_activities,
        max_concurrent_orchestrations=settings.max_concurrent_orchestrations,
        worker_processes=args.processes,
        hub_name=settings.hub_name,
        function_timeout=settings.function_timeout,
        fast_replay=args.fast_replay or os.environ.get("DEVHOST_FAST_REPLAY", "") not in ("", "0"),
    )
    engine = Engine(index, store, clock, options)
    port = args.port if args.port is not None else (settings.local_http_port or 7071)
    url_host = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host
    app = create_app(
        index,
        engine,
        settings,
        base_url=f"http://{url_host}:{port}",
        keys=_keys(args),
        route_prefix=read_route_prefix(app_dir),
    )
    await engine.start()
    try:
        site = await start_site(app, args.host, port)
    except OSError as e:
        await engine.stop()
        print(f"error: cannot listen on {args.host}:{port}: {e}", file=sys.stderr)
        return 1
    print(banner(app), flush=True)
    print(f"Host started (state: {state_path}). Press Ctrl+C to shut down.", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - non-POSIX
            signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop.set))
    await stop.wait()
    print("Shutting down...", flush=True)
    await close_sdk_session()
    await site.stop()
    await engine.stop()
    store.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="[%(asctime)s] %(message)s" if not args.verbose else "[%(asctime)s] %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        logging.getLogger("aiohttp").setLevel(logging.WARNING)
    return asyncio.run(serve(args))


if __name__ == "__main__":
    sys.exit(main())
