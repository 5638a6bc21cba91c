"""The dev host's aiohttp application: what ``func start`` + the Durable extension serve.

* ``/<routePrefix>/<route>``: HTTP-triggered functions (:mod:`.http_triggers`);
  ``routePrefix`` comes from host.json ``extensions.http.routePrefix`` (default ``api``).
* ``/runtime/webhooks/durabletask/...``: the extension's public management API, and
  ``/durabletask/...``: the same API at the ``rpcBaseUrl`` the Python SDK calls
  (:mod:`.management_api`). Like the extension's ``LocalHttpListener``, the RPC root only
  answers loopback callers.
* ``/admin/host/status``: a small health endpoint in the spirit of the host's admin API.

Keys: ``func start`` does not check keys, so neither does this host by default. When
keys are configured (``keys={"function": [...], "master": "..."}``), the host's rules
apply: ``function`` routes need ``?code=`` or ``x-functions-key`` matching a function,
host or master key, ``admin`` routes the master key, ``anonymous`` routes nothing; a
missing or wrong key gets 401 with an empty body. The public webhook root then needs
the extension's system key (handed out in every management URL as ``code=``) or the
master key, as in Azure.

This module holds the application factory, the routes that belong to no other module (admin,
host status) and the site runner; keys (:mod:`.host_keys`), HTTP triggers, the management API
and timer triggers are their own modules.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .client_binding import RPC_PATH, WEBHOOK_PATH, ClientUrls
from .host_keys import HostKeys, presented_key
from .http_triggers import HttpTrigger, build_request, invoke_http_function, sort_triggers
from .management_api import ManagementApi
from .timer_triggers import TimerScheduler, timer_functions

if TYPE_CHECKING:
    from .engine import Engine
    from .functions import FunctionIndex
    from .settings import HostSettings

log = logging.getLogger("durable_devhost")

DEFAULT_ROUTE_PREFIX = "api"


# ---------------------------------------------------------------------------
# settings helpers
# ---------------------------------------------------------------------------


def read_route_prefix(app_dir: str | Path) -> str:
    """host.json ``extensions.http.routePrefix`` (``""`` allowed), default ``api``."""
    path = Path(app_dir) / "host.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig") or "{}")
    except (OSError, ValueError):
        return DEFAULT_ROUTE_PREFIX
    prefix = ((data.get("extensions") or {}).get("http") or {}).get("routePrefix")
    return DEFAULT_ROUTE_PREFIX if prefix is None else str(prefix).strip("/")


def resolve_app(target: str) -> tuple[Path, Path]:
    """``(app_dir, script)``: a directory means its ``function_app.py`` (or
    ``PYTHON_SCRIPT_FILE_NAME``, as the worker reads it)."""
    path = Path(target).resolve()
    if path.is_dir():
        script = path / os.environ.get("PYTHON_SCRIPT_FILE_NAME", "function_app.py")
        return path, script
    return path.parent, path


def http_triggers(index: FunctionIndex) -> list[HttpTrigger]:
    """Every HTTP-triggered function of a FunctionIndex, most specific route first."""
    triggers = []
    for f in index.functions.values():
        if f.kind != "http":
            continue
        triggers.append(HttpTrigger.from_function(f.name, f.trigger_param, f.user_function, f.is_async, f.bindings))
        for b in f.bindings:
            if b.get("type") not in ("httpTrigger", "http", "durableClient"):
                log.warning(
                    "function %s: binding %s (%s) is not supported by the dev host; it gets None",
                    f.name,
                    b.get("name"),
                    b.get("type"),
                )
    return sort_triggers(triggers)


# ---------------------------------------------------------------------------
# the application
# ---------------------------------------------------------------------------


@dataclass
class HostState:
    """Everything the request handlers share (kept on the aiohttp app)."""

    index: FunctionIndex
    engine: Engine | None
    settings: HostSettings | None
    urls: ClientUrls
    keys: HostKeys
    route_prefix: str
    triggers: list[HttpTrigger]
    management: ManagementApi
    timers: TimerScheduler | None = None
    started: float = field(default_factory=time.time)

    def client_binding(self, binding: dict) -> str:
        """The Durable client JSON for a ``durableClient`` binding of any function."""
        return self.urls.binding_json(task_hub=binding.get("taskHub"), connection=binding.get("connectionName"))

    def function_urls(self) -> list[tuple[str, str, str]]:
        """``(name, methods, url)`` for the start-up banner, like ``func start`` prints."""
        rows = []
        for t in self.triggers:
            methods = ",".join(sorted(t.methods)) if t.methods else "GET,POST,PUT,DELETE,HEAD,PATCH,OPTIONS"
            rows.append((t.name, methods, f"{self.urls.origin}/{t.route.display(self.route_prefix)}"))
        return rows


STATE_KEY = web.AppKey("durable_devhost_state", HostState)


def host_state(app: web.Application) -> HostState:
    return app[STATE_KEY]


def create_app(
    index: FunctionIndex,
    engine: Engine | None,
    settings: HostSettings | None,
    *,
    base_url: str,
    keys: Mapping[str, Any] | HostKeys | None = None,
    route_prefix: str | None = None,
) -> web.Application:
    """Build the aiohttp app. ``base_url`` is this host's origin (``http://127.0.0.1:7071``);
    :func:`start_site` fixes it up when the port was 0."""
    host_keys = HostKeys.from_config(keys)
    prefix = route_prefix if route_prefix is not None else getattr(settings, "route_prefix", DEFAULT_ROUTE_PREFIX)
    urls = ClientUrls(
        origin=base_url.rstrip("/"),
        hub_name=getattr(settings, "hub_name", None) or "TestHubName",
        system_key=host_keys.system,
    )
    state = HostState(
        index=index,
        engine=engine,
        settings=settings,
        urls=urls,
        keys=host_keys,
        route_prefix=(prefix or "").strip("/"),
        triggers=http_triggers(index),
        management=ManagementApi(engine, urls),
    )
    if engine is not None:
        state.timers = TimerScheduler(timer_functions(index), engine.clock.now, state.client_binding)
    app = web.Application(client_max_size=100 * 1024 * 1024)  # the host's default request limit
    app[STATE_KEY] = state
    app.on_cleanup.append(_stop_timers)
    app.router.add_route("GET", "/admin/host/status", _host_status)
    app.router.add_route("POST", "/admin/functions/{name}", _run_function)
    for root in (WEBHOOK_PATH, RPC_PATH):
        app.router.add_route("*", root + "/{tail:[\\s\\S]*}", _management)
    # One catch-all, registered last: the route prefix is matched (case-insensitively, like
    # ASP.NET routing) on the raw path, so an encoded "/" (%2F) stays inside one route value.
    app.router.add_route("*", "/{tail:[\\s\\S]*}", _http_trigger)
    return app


async def _stop_timers(app: web.Application) -> None:
    timers = host_state(app).timers
    if timers is not None:
        await timers.stop()


async def _run_function(request: web.Request) -> web.Response:
    """``POST /admin/functions/{name}``: run a non-HTTP function now (the host's
    manual-run API; master key when keys are on). Here: timer functions."""
    state = host_state(request.app)
    if state.keys.enabled and not state.keys.allows("admin", presented_key(request)):
        return web.Response(status=401)
    timers = state.timers
    name = request.match_info["name"]
    if timers is None or name.lower() not in timers.timers:
        return web.Response(status=404)
    task = asyncio.create_task(timers.run_now(name))
    _background.add(task)
    task.add_done_callback(_background.discard)
    return web.Response(status=202)


_background: set[asyncio.Task[None]] = set()


async def _host_status(request: web.Request) -> web.Response:
    state = host_state(request.app)
    if not state.keys.allows("admin", presented_key(request)):
        return web.Response(status=401)
    return web.json_response(
        {
            "id": "durable-devhost",
            "state": "Running",
            "processUptime": int((time.time() - state.started) * 1000),
            "taskHubName": state.urls.hub_name,
            "functions": sorted(state.index.functions),
        }
    )


def _is_loopback(request: web.Request) -> bool:
    peer = request.remote or ""
    try:
        return ipaddress.ip_address(peer.split("%")[0]).is_loopback
    except ValueError:
        return peer in ("", "localhost")


async def _management(request: web.Request) -> web.Response:
    state = host_state(request.app)
    if request.path.startswith(RPC_PATH + "/"):
        if not _is_loopback(request):
            return web.Response(status=404)
    elif not state.keys.allows("system", presented_key(request)):
        return web.Response(status=401)
    return await state.management.handle(request)


async def _http_trigger(request: web.Request) -> web.StreamResponse:
    state = host_state(request.app)
    raw = request.rel_url.raw_path
    if state.route_prefix:
        head = "/" + state.route_prefix.lower()
        if not (raw.lower() == head or raw.lower().startswith(head + "/")):
            return web.Response(status=404)
        raw = raw[len(head) :]
    path = "/" + raw.strip("/")
    for trigger in state.triggers:
        values = trigger.route.match(path)
        if values is None or not trigger.allows(request.method):
            continue
        if not state.keys.allows(trigger.auth_level, presented_key(request)):
            return web.Response(status=401)
        return await _run_trigger(state, trigger, request, values)
    return web.Response(status=404)


async def _run_trigger(
    state: HostState, trigger: HttpTrigger, request: web.Request, route_values: dict[str, str]
) -> web.StreamResponse:
    invocation_id = str(uuid.uuid4())
    body = await request.read()
    func_request = build_request(request.method, str(request.url), request.headers, request.query, route_values, body)

    client_binding = state.client_binding
    log.debug(
        "Executing 'Functions.%s' (Reason='This function was programmatically called via the host APIs.', Id=%s)",
        trigger.name,
        invocation_id,
    )
    started = time.perf_counter()
    try:
        result = await invoke_http_function(trigger, func_request, client_binding, invocation_id=invocation_id)
    except Exception:
        ms = int((time.perf_counter() - started) * 1000)
        log.exception("Executed 'Functions.%s' (Failed, Id=%s, Duration=%dms)", trigger.name, invocation_id, ms)
        return web.Response(status=500)
    ms = int((time.perf_counter() - started) * 1000)
    log.info("Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%dms)", trigger.name, invocation_id, ms)
    response = web.Response(status=result.status, body=result.body)
    for name, value in result.headers:
        if name.lower() == "content-length":
            continue
        response.headers.add(name, value)
    return response


def reset_sdk_session() -> None:
    """Forget the SDK's module-global aiohttp session and lock (tied to one event loop).

    ``azure.durable_functions.models.utils.http_utils`` caches a ``ClientSession``; a new
    loop (each async test) must not reuse the old one
    (azure-functions-durable-python azure/durable_functions/models/utils/http_utils.py).
    """
    from azure.durable_functions.models.utils import http_utils

    http_utils._client_session = None
    http_utils._session_lock = asyncio.Lock()


async def close_sdk_session() -> None:
    """Close the SDK's session if this loop created it, then reset the globals."""
    from azure.durable_functions.models.utils import http_utils

    session = http_utils._client_session
    if session is not None and not session.closed:
        with contextlib.suppress(Exception):
            await session.close()
    reset_sdk_session()


# ---------------------------------------------------------------------------
# running it
# ---------------------------------------------------------------------------


@dataclass
class RunningSite:
    """A started server; ``url`` is the real origin (port resolved)."""

    runner: web.AppRunner
    site: web.TCPSite
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{_url_host(self.host)}:{self.port}"

    async def stop(self) -> None:
        await self.runner.cleanup()


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


async def start_site(app: web.Application, host: str = "127.0.0.1", port: int = 7071) -> RunningSite:
    """Start serving ``app``; with ``port=0`` pick a free port and fix the client URLs."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    sockets = getattr(site._server, "sockets", None)  # an asyncio.Server once started
    actual = sockets[0].getsockname()[1] if sockets else port
    running = RunningSite(runner, site, host, actual)
    if STATE_KEY in app:
        state = app[STATE_KEY]
        if port == 0:
            state.urls.origin = running.url
        if state.timers is not None:
            state.timers.start()  # after the URLs are final: client bindings point here
    return running
