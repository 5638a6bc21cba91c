"""Helpers for testing Durable apps against the dev host.

In-process (fast, one event loop, free port)::

    async with DevHost("path/to/app_dir", time_skipping=True) as host:
        resp = await session.post(f"{host.url}/api/orchestrators/my_orchestrator")
        status = await host.wait(instance_id, timeout=30)

Out of process (for crash tests: SIGKILL and restart on the same state file)::

    with SubprocessDevHost(app_dir, state_path=tmp_path / "state.sqlite") as host:
        ...
        host.kill()
        host.restart()

(:class:`SubprocessDevHost` lives in :mod:`.subprocess_host` and is re-exported here.)

Fixtures: put ``pytest_plugins = ["durable_devhost.testing"]`` in a conftest (or import
``devhost_factory`` / ``subprocess_devhost_factory`` into it).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from .server import (
    HostKeys,
    RunningSite,
    close_sdk_session,
    create_app,
    host_state,
    read_route_prefix,
    reset_sdk_session,
    resolve_app,
    start_site,
)
from .subprocess_host import SubprocessDevHost, free_port

__all__ = ["DevHost", "SubprocessDevHost", "free_port"]


class DevHost:
    """The dev host in this process, on ``127.0.0.1`` and a free port.

    ``app_or_path``: an app directory, a ``function_app.py`` path, a ``FunctionApp`` /
    ``DFApp`` object, or a ready ``FunctionIndex``. For a directory/file, host.json and
    local.settings.json are read (Values -> env) before the app is imported.
    ``time_skipping=True`` makes the clock jump to the next due timer whenever nothing
    else can run; :meth:`skip` works either way. ``activity_overrides`` replaces named
    activities' code (same parameter names) for one test, instead of redeclaring the app;
    in-process activities only (``processes=0``).
    """

    def __init__(
        self,
        app_or_path: Any,
        *,
        time_skipping: bool = False,
        keys: dict | None = None,
        in_memory: bool = True,
        state_path: str | os.PathLike[str] | None = None,
        processes: int = 0,
        route_prefix: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        fast_replay: bool | None = None,
        activity_overrides: Mapping[str, Callable[..., Any]] | None = None,
    ) -> None:
        if activity_overrides and processes:
            raise ValueError("activity_overrides need processes=0: worker processes import the app themselves")
        self.activity_overrides = dict(activity_overrides or {})
        self.app_or_path = app_or_path
        self.time_skipping = time_skipping
        self.keys = keys
        self.in_memory = in_memory and state_path is None
        self.state_path = state_path
        self.processes = processes
        self.route_prefix = route_prefix
        self._host = host
        self._port = port
        # None: the environment decides (DEVHOST_FAST_REPLAY=1), so a whole suite can opt in
        self.fast_replay = (
            os.environ.get("DEVHOST_FAST_REPLAY", "") not in ("", "0") if fast_replay is None else fast_replay
        )
        self.engine: Any = None
        self.index: Any = None
        self.settings: Any = None
        self.app: Any = None
        self.store: Any = None
        self._site: RunningSite | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def _load(self) -> None:
        from .functions import FunctionIndex
        from .settings import HostSettings

        target = self.app_or_path
        prefix = self.route_prefix
        if isinstance(target, FunctionIndex):
            self.index, self.settings = target, HostSettings()
        elif isinstance(target, (str, os.PathLike)):
            app_dir, script = resolve_app(str(target))
            self.settings = HostSettings.load(app_dir)
            self.index = FunctionIndex.load(str(script))
            prefix = prefix if prefix is not None else read_route_prefix(app_dir)
        else:
            self.index, self.settings = FunctionIndex.from_app(target), HostSettings()
        self.route_prefix = prefix if prefix is not None else "api"
        for name, replacement in self.activity_overrides.items():
            activity = self.index.activity(name)
            if activity is None:
                raise ValueError(f"no activity named {name!r} to override")
            activity.user_function = replacement
            activity.is_async = inspect.iscoroutinefunction(replacement)

    async def __aenter__(self) -> DevHost:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        from .clock import SkippableClock
        from .engine import Engine, EngineOptions
        from .store import SqliteStore

        reset_sdk_session()
        self._load()
        self.store = SqliteStore(":memory:" if self.in_memory else str(self.state_path))
        options = EngineOptions(
            max_concurrent_activities=self.settings.max_concurrent_activities,
            max_concurrent_orchestrations=self.settings.max_concurrent_orchestrations,
            worker_processes=self.processes,
            hub_name=self.settings.hub_name,
            fast_replay=self.fast_replay,
            function_timeout=getattr(self.settings, "function_timeout", None),
        )
        self.engine = Engine(self.index, self.store, SkippableClock(auto_skip=self.time_skipping), options)
        self.app = create_app(
            self.index,
            self.engine,
            self.settings,
            base_url=f"http://{self._host}:{self._port}",
            keys=self.keys,
            route_prefix=self.route_prefix,
        )
        await self.engine.start()
        self._site = await start_site(self.app, self._host, self._port)

    async def stop(self) -> None:
        await close_sdk_session()
        if self._site is not None:
            await self._site.stop()
            self._site = None
        if self.engine is not None:
            await self.engine.stop()
        if self.store is not None:
            with contextlib.suppress(Exception):
                self.store.close()

    # -- conveniences ------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        assert self._site is not None, "host not started"
        return self._site.url

    def api_url(self, route: str) -> str:
        """URL of an HTTP trigger route (``api_url("orchestrators/x")``)."""
        prefix = f"/{self.route_prefix}" if self.route_prefix else ""
        return f"{self.url}{prefix}/{route.lstrip('/')}"

    @property
    def keys_in_use(self) -> HostKeys:
        """The effective keys (generated master/system keys included when keys are on)."""
        return host_state(self.app).keys

    def client_binding(self) -> str:
        """The JSON a ``durableClient`` parameter receives (for ``DurableOrchestrationClient``)."""
        return host_state(self.app).urls.binding_json()

    def client(self) -> Any:
        """A real ``DurableOrchestrationClient`` bound to this host."""
        import azure.durable_functions as df

        return df.DurableOrchestrationClient(self.client_binding())

    async def run_timer(self, name: str) -> None:
        """Invoke the timer-triggered function ``name`` now and wait for it (its schedule
        keeps running; ``POST /admin/functions/{name}`` does the same over HTTP)."""
        timers = host_state(self.app).timers
        assert timers is not None, "host not started"
        await timers.run_now(name)

    async def start_orchestration(
        self, name: str, input: Any = None, instance_id: str | None = None, *, raw: bool = False
    ) -> str:
        """Start an instance on the engine.

        By default the input is encoded the way ``DurableOrchestrationClient.start_new``
        sends it (``df_dumps`` then JSON again, see docs/devhost.md, "The double encoding is kept"), so ``get_input()``
        returns the value for any JSON type and the status ``input`` is the JSON text.
        ``raw=True`` encodes it once, like ``curl -d`` to the start API: only JSON objects
        survive ``get_input()`` then (the SDK re-serialises dict tokens only).
        """
        if input is None:
            input_json = None
        elif raw:
            input_json = json.dumps(input)
        else:
            from azure.durable_functions.models.utils.df_serialization import df_dumps

            input_json = json.dumps(df_dumps(input))
        return await self.engine.start_orchestration(name, input_json, instance_id=instance_id)

    async def wait(self, instance_id: str, timeout: float = 30.0) -> dict:
        """Wait until the instance finishes; returns the status payload dict."""
        return await self.engine.wait_for_completion(instance_id, timeout)

    async def wait_idle(self, timeout: float = 5.0) -> None:
        """Return once no episode or activity is queued or running (timers do not count)."""
        await self.engine.wait_idle(timeout)

    async def status(self, instance_id: str, **flags: bool) -> dict | None:
        return await self.engine.get_status(instance_id, **flags)

    def history(self, instance_id: str, *, all_executions: bool = False) -> list[dict]:
        """``all_executions`` adds the events of executions that continued as new."""
        return self.engine.history(instance_id, all_executions=all_executions)

    async def raise_event(self, instance_id: str, event_name: str, data: Any = None) -> None:
        """Raise an event with ``data`` JSON-encoded once (what ``curl -d`` to
        ``sendEventPostUri`` does; the Python SDK's ``raise_event`` double-encodes)."""
        await self.engine.raise_event(instance_id, event_name, None if data is None else json.dumps(data))

    def payload_stats(self) -> dict:
        """The largest payload of each kind and the Azure Storage limits it crosses (``Engine.payload_stats``)."""
        return self.engine.payload_stats()

    async def skip(self, delta: timedelta) -> None:
        """Move the host clock forward (fires the timers that become due)."""
        await self.engine.advance_time(delta)


# ---------------------------------------------------------------------------
# pytest fixtures (only when pytest / pytest-asyncio are installed)
# ---------------------------------------------------------------------------

try:  # pragma: no cover - exercised through the test suite
    import pytest
    import pytest_asyncio
except ImportError:  # pragma: no cover
    pass
else:

    @pytest_asyncio.fixture
    async def devhost_factory() -> AsyncIterator[Callable[..., Awaitable[DevHost]]]:
        """``host = await devhost_factory(app_dir, time_skipping=True)``; stopped after the test."""
        hosts: list[DevHost] = []

        async def make(app_or_path: Any, **kwargs: Any) -> DevHost:
            host = DevHost(app_or_path, **kwargs)
            await host.start()
            hosts.append(host)
            return host

        yield make
        for host in reversed(hosts):
            await host.stop()

    @pytest.fixture
    def subprocess_devhost_factory(tmp_path: Path) -> Iterator[Callable[..., SubprocessDevHost]]:
        """``host = subprocess_devhost_factory(app_dir)``: state and log under ``tmp_path``."""
        hosts: list[SubprocessDevHost] = []

        def make(app_dir: Any, **kwargs: Any) -> SubprocessDevHost:
            kwargs.setdefault("state_path", tmp_path / f"state{len(hosts)}.sqlite")
            kwargs.setdefault("log_path", tmp_path / f"devhost{len(hosts)}.log")
            host = SubprocessDevHost(app_dir, **kwargs)
            host.start()
            hosts.append(host)
            return host

        yield make
        for host in reversed(hosts):
            host.stop()
