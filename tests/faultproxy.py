"""A fault-injecting HTTP/1.1 proxy for Azure Storage traffic in tests.

Why our own: the point of the reliability tests is to see what the *app*
does when storage misbehaves -- the Azure SDK's own retries, then the
orchestrator's Durable-level retries -- so the faults have to happen on the
wire, between a real SDK and a real Azurite, not in a mocked client.

The proxy listens on ``127.0.0.1`` (free port) and forwards to one upstream
(Azurite). It parses request and response boundaries (``Content-Length`` or
chunked), so keep-alive connections -- which the SDK reuses -- keep working
and each *request* gets its own fate:

* ``"503"`` / ``"500"``: answered by the proxy with a well-formed Azure error
  (``x-ms-error-code: ServerBusy`` / ``InternalError`` and an XML body); the
  request never reaches storage; the connection stays open.
* ``"reset"``: the client connection is reset (RST) before the request is
  forwarded.
* ``"reset_after"``: the request *is* forwarded and storage acts on it, then
  the client connection is reset instead of delivering the response (the
  nastiest case for idempotency: the upload happened, the client thinks it
  failed).
* ``"delay"``: forwarded after ``delay_seconds``.

Which request fails is decided by hashing ``(seed, method, path, n)`` where
``n`` counts earlier requests for the same method and path: runs are
reproducible whatever the thread interleaving, and a retry of a failed request
gets an independent draw. :meth:`FaultProxy.outage` / :meth:`FaultProxy.down`
fail *every* request for a while instead.

The storage SDK sends a fresh ``x-ms-client-request-id`` on each attempt, so
retries are counted on the wire instead: a request for the same method and
path as a request that was just failed is a retry
(:attr:`ProxyStats.retries`). Nearly all of them are the SDK's own (it
retries within tens of milliseconds here); a Durable-level re-run of
``ProcessImage`` mostly starts with other calls (``HEAD`` of the outputs) and
is counted from the orchestration history by the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import struct
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

FAULT_KINDS = ("503", "500", "reset", "reset_after", "delay")
_ERRORS = {
    "503": (503, "Server Busy", "ServerBusy", "The server is currently unable to receive requests. Please retry."),
    "500": (500, "Internal Server Error", "InternalError", "The server encountered an internal error."),
}
_MAX_HEAD = 64 * 1024


@dataclass
class ProxyStats:
    """What the proxy saw and did; read a consistent copy with :meth:`FaultProxy.snapshot`."""

    requests: int = 0
    forwarded: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    connections: int = 0

    @property
    def faults_total(self) -> int:
        return sum(self.faults.values())

    def describe(self) -> str:
        kinds = ", ".join(f"{k}={v}" for k, v in sorted(self.faults.items())) or "none"
        return (
            f"{self.requests} requests ({self.forwarded} forwarded) on {self.connections} connections; "
            f"{self.faults_total} faults ({kinds}); {self.retries} retries of failed requests seen"
        )


@dataclass
class _Message:
    head: bytes
    body: bytes
    method: str = ""
    path: str = ""
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def raw(self) -> bytes:
        return self.head + self.body

    @property
    def wants_close(self) -> bool:
        return self.headers.get("connection", "").lower() == "close"


def _parse_headers(head: bytes) -> tuple[str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return lines[0], headers


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    """Read a chunked body and return it *raw* (still chunked), to forward as is."""
    out = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        out += size_line
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while True:  # trailers, up to the empty line
                line = await reader.readuntil(b"\r\n")
                out += line
                if line == b"\r\n":
                    return bytes(out)
        out += await reader.readexactly(size + 2)


async def _read_message(reader: asyncio.StreamReader, *, request_method: str | None = None) -> _Message | None:
    """One request (``request_method is None``) or the response to ``request_method``;
    ``None`` on a clean EOF before the first byte."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as error:
        if not error.partial:
            return None
        raise
    start, headers = _parse_headers(head)
    message = _Message(head=head, body=b"", headers=headers)
    if request_method is None:
        parts = start.split(" ")
        message.method, target = parts[0], parts[1] if len(parts) > 1 else "/"
        message.path = urlsplit(target).path
    else:
        message.status = int(start.split(" ")[1])
    no_body = request_method == "HEAD" or message.status in (204, 304) or 100 <= message.status < 200
    if no_body:
        return message
    if "chunked" in headers.get("transfer-encoding", "").lower():
        message.body = await _read_chunked(reader)
    elif "content-length" in headers:
        message.body = await reader.readexactly(int(headers["content-length"]))
    elif request_method is not None:  # a response delimited by connection close
        message.body = await reader.read()
        message.headers["connection"] = "close"
    return message


def _fault_response(kind: str) -> bytes:
    status, reason, code, text = _ERRORS[kind]
    request_id = str(uuid.uuid4())
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        f"<Error><Code>{code}</Code><Message>{text}\nRequestId:{request_id}\n"
        f"Time:{time.strftime('%Y-%m-%dT%H:%M:%S.0000000Z', time.gmtime())}</Message></Error>"
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Content-Type: application/xml\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"x-ms-error-code: {code}\r\n"
        f"x-ms-request-id: {request_id}\r\n"
        "x-ms-version: 2025-11-05\r\n"
        "Server: faultproxy\r\n"
        "\r\n"
    ).encode()
    return head + body


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0) so the client sees ``connection reset by peer``."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultProxy:
    """Proxy ``127.0.0.1:<free port>`` -> ``upstream`` (``http://host:port[/account]``).

    ``fail_rate`` of requests fail with a kind drawn from ``kinds``; the proxy
    runs its own event loop in a daemon thread, so it works the same whether
    the app under test is in this process (threads, another loop) or in a
    subprocess. Use as a context manager.
    """

    def __init__(
        self,
        upstream: str,
        *,
        seed: int = 0,
        fail_rate: float = 0.0,
        kinds: Sequence[str] = ("503", "reset"),
        delay_seconds: float = 0.2,
        outage_kind: str = "503",
    ) -> None:
        parts = urlsplit(upstream)
        if parts.hostname not in ("127.0.0.1", "localhost"):
            raise ValueError("the fault proxy only forwards to loopback")
        unknown = set(kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}")
        self.upstream_host = "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.upstream_path = parts.path.rstrip("/")
        self.seed = seed
        self.fail_rate = fail_rate
        self.kinds = tuple(kinds)
        self.delay_seconds = delay_seconds
        self.outage_kind = outage_kind
        self.outage_match: str | None = None
        self.port = 0
        self._outage_until = 0.0  # monotonic; float("inf") while an outage() block runs
        self._lock = threading.Lock()
        self._stats = ProxyStats()
        self._seen_paths: Counter[str] = Counter()
        self._last_failed: dict[str, bool] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> FaultProxy:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._handle, "127.0.0.1", 0, limit=_MAX_HEAD)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="faultproxy", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fault proxy did not start")
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            # End the relays (their ``finally`` aborts the upstream connections) and let the
            # aborted transports close, so none is left for the garbage collector to warn about.
            relays = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for relay in relays:
                relay.cancel()
            await asyncio.gather(*relays, return_exceptions=True)
            for _ in range(3):
                await asyncio.sleep(0)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        if not loop.is_running():
            # Unclosed, the loop (and its self-pipe) would warn when the garbage collector finds it:
            # in whichever test runs then, which fails if that test turns warnings into errors.
            loop.close()
        self._loop = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses --------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """The proxy's URL with the upstream path (``http://127.0.0.1:<port>/devstoreaccount1``)."""
        return f"http://127.0.0.1:{self.port}{self.upstream_path}"

    def connection_string(self, original: str) -> str:
        """``original`` with its ``BlobEndpoint`` pointed at the proxy."""
        parts = [p for p in original.split(";") if p and not p.startswith("BlobEndpoint=")]
        return ";".join([*parts, f"BlobEndpoint={self.endpoint}"]) + ";"

    # -- control ------------------------------------------------------------------------

    @contextlib.contextmanager
    def outage(self, kind: str | None = None, *, path_contains: str | None = None) -> Iterator[None]:
        """Every request fails (with ``kind``, default ``outage_kind``) inside the
        block; only those whose path contains ``path_contains`` if given (one
        container down, say, while the rest of the account works)."""
        previous = self.outage_kind, self.outage_match
        self.outage_kind, self.outage_match = kind or previous[0], path_contains
        self._outage_until = float("inf")
        try:
            yield
        finally:
            self._outage_until = 0.0
            self.outage_kind, self.outage_match = previous

    def down(self, seconds: float, kind: str | None = None, *, path_contains: str | None = None) -> None:
        """Every request (matching ``path_contains``) fails for the next ``seconds``."""
        if kind:
            self.outage_kind = kind
        self.outage_match = path_contains
        self._outage_until = time.monotonic() + seconds

    @property
    def is_down(self) -> bool:
        return time.monotonic() < self._outage_until

    def snapshot(self) -> ProxyStats:
        with self._lock:
            s = self._stats
            return ProxyStats(s.requests, s.forwarded, Counter(s.faults), s.retries, s.connections)

    def reset_stats(self) -> None:
        with self._lock:
            self._stats = ProxyStats()

    # -- decisions ----------------------------------------------------------------------

    def _draw(self, key: str, salt: str) -> float:
        digest = hashlib.sha256(f"{self.seed}|{salt}|{key}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def _decide(self, request: _Message) -> str | None:
        with self._lock:
            self._stats.requests += 1
            base = f"{request.method} {request.path}"
            if self._last_failed.get(base):
                self._stats.retries += 1
            key = f"{base}#{self._seen_paths[base]}"
            self._seen_paths[base] += 1
            if self.is_down and (self.outage_match is None or self.outage_match in request.path):
                fault: str | None = self.outage_kind
            elif self.fail_rate and self._draw(key, "fail") < self.fail_rate:
                fault = self.kinds[int(self._draw(key, "kind") * len(self.kinds)) % len(self.kinds)]
            else:
                fault = None
            if fault:
                self._stats.faults[fault] += 1
            self._last_failed[base] = fault not in (None, "delay")
            if fault not in ("503", "500", "reset"):
                self._stats.forwarded += 1
            return fault

    # -- the relay ------------------------------------------------------------------------

    async def _handle(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        with self._lock:
            self._stats.connections += 1
        self._writers.add(cwriter)
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            while True:
                request = await _read_message(creader)
                if request is None:
                    return
                fault = self._decide(request)
                if fault == "reset":
                    _reset(cwriter)
                    return
                if fault in _ERRORS:
                    cwriter.write(_fault_response(fault))
                    await cwriter.drain()
                    continue
                if fault == "delay":
                    await asyncio.sleep(self.delay_seconds)
                upstream, response = await self._forward(upstream, request)
                if fault == "reset_after":
                    _reset(cwriter)
                    return
                cwriter.write(response.raw)
                await cwriter.drain()
                if response.wants_close or request.wants_close:
                    return
        except (asyncio.IncompleteReadError, ConnectionError, ValueError, asyncio.LimitOverrunError):
            return
        finally:
            self._writers.discard(cwriter)
            if upstream is not None:
                upstream[1].transport.abort()
            if not cwriter.transport.is_closing():
                cwriter.close()

    async def _forward(
        self, upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None, request: _Message
    ) -> tuple[tuple[asyncio.StreamReader, asyncio.StreamWriter], _Message]:
        """Send ``request`` upstream and read its response, reconnecting once if the
        upstream closed an idle keep-alive connection (Node's 5 s keep-alive timeout)."""
        for attempt in (1, 2):
            if upstream is None or upstream[0].at_eof() or upstream[1].transport.is_closing():
                upstream = await asyncio.open_connection(self.upstream_host, self.upstream_port, limit=_MAX_HEAD)
            reader, writer = upstream
            try:
                writer.write(request.raw)
                await writer.drain()
                response = await _read_message(reader, request_method=request.method)
            except (ConnectionError, asyncio.IncompleteReadError):
                response = None
            if response is not None:
                if response.wants_close:
                    writer.transport.abort()
                    return (reader, writer), response
                return upstream, response
            writer.transport.abort()
            upstream = None
            if attempt == 2:
                raise ConnectionResetError("upstream closed the connection twice")
        raise AssertionError("unreachable")


def fast_sdk_retry(retry_total: int = 3, backoff_seconds: float = 0.05, *, aio: bool = False) -> dict[str, object]:
    """``BlobServiceClient`` keyword arguments for the SDK's retry with test-sized waits
    (``aio=True``: for ``azure.storage.blob.aio.BlobServiceClient``).

    The storage SDK's default (``ExponentialRetry``: 3 retries after ~15 s,
    ~18 s and ~42 s, +-3 s jitter) would turn a few hundred injected faults into
    an hour of sleeping; the *number* of SDK retries stays the default 3.
    """
    if aio:
        from azure.storage.blob.aio import LinearRetry
    else:
        from azure.storage.blob import LinearRetry  # type: ignore[assignment]

    return {
        "retry_policy": LinearRetry(
            backoff=backoff_seconds,  # type: ignore[arg-type]  # seconds; floats work
            retry_total=retry_total,
            random_jitter_range=backoff_seconds / 2,  # type: ignore[arg-type]
        )
    }
