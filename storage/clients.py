"""Storage clients: one factory for the sync and the asyncio client, built the way
Functions resolves a connection for its own bindings, and cached per worker.

Functions accepts either a connection string in the app setting ``<name>`` or
identity-based settings (``<name>__blobServiceUri``, ``<name>__serviceUri`` or
``<name>__accountName``, optionally ``<name>__clientId``). We mirror that so an
app that runs on ``UseDevelopmentStorage=true`` locally moves to a managed
identity in Azure by changing settings only.

Code outside ``storage/`` holds a client only as an opaque handle typed
:data:`BlobService` / :data:`AsyncBlobService` and passes it back to the
functions of this package; it never calls the SDK itself.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias, overload
from urllib.parse import quote

from azure.storage.blob import BlobServiceClient
from azure.storage.blob.aio import BlobServiceClient as AsyncBlobServiceClient

BlobService: TypeAlias = BlobServiceClient
"""A handle on one storage account (sync); pass it to the functions of ``storage``."""
AsyncBlobService: TypeAlias = AsyncBlobServiceClient
"""A handle on one storage account (asyncio); pass it to the ``async`` functions of ``storage``."""

_lock = threading.Lock()
_clients: dict[str, BlobServiceClient] = {}
_aio_clients: dict[tuple[str, int], tuple[asyncio.AbstractEventLoop, AsyncBlobServiceClient]] = {}


class StorageConfigurationError(RuntimeError):
    """The named connection has no usable settings."""


@dataclass(frozen=True)
class ConnectionSettings:
    """What the settings of one connection say: a connection string, or an account
    URL for a managed identity (with its client id, if a user-assigned one), and the
    SDK's retry sizes."""

    connection_string: str | None
    account_url: str | None
    client_id: str | None
    retry_total: int
    initial_backoff: int
    increment_base: int


def _service_uri(name: str, env: Mapping[str, str]) -> str | None:
    for suffix in ("__blobServiceUri", "__serviceUri"):
        uri = env.get(f"{name}{suffix}")
        if uri:
            return uri
    account = env.get(f"{name}__accountName")
    if account:
        return f"https://{account}.blob.core.windows.net"
    return None


def connection_settings(name: str, env: Mapping[str, str] | None = None) -> ConnectionSettings:
    """The one place that reads a connection's settings (see the module docstring).

    The SDK's own retry is sized for a batch worker: its default
    (``ExponentialRetry``: waits of about 15, 18 and 42 s) makes one activity
    attempt sleep over a minute in an outage before the orchestration's retry
    policy even sees the failure. Short SDK waits for brief blips, then the
    orchestration's backoff for longer trouble. Settings: ``STORAGE_RETRY_TOTAL``
    (3), ``STORAGE_RETRY_INITIAL_BACKOFF`` seconds (1), ``STORAGE_RETRY_INCREMENT_BASE``
    (2): waits of about 1, 3, 5 s.
    """
    env = os.environ if env is None else env
    connection_string = env.get(name) or None
    account_url = None if connection_string else _service_uri(name, env)
    if not connection_string and not account_url:
        raise StorageConfigurationError(
            f"No storage settings for connection '{name}': set '{name}' to a connection string, "
            f"or '{name}__blobServiceUri' / '{name}__accountName' for a managed identity."
        )
    return ConnectionSettings(
        connection_string=connection_string,
        account_url=account_url,
        client_id=env.get(f"{name}__clientId"),
        retry_total=int(env.get("STORAGE_RETRY_TOTAL", "3")),
        initial_backoff=int(env.get("STORAGE_RETRY_INITIAL_BACKOFF", "1")),
        increment_base=int(env.get("STORAGE_RETRY_INCREMENT_BASE", "2")),
    )


def _sdk(aio: bool) -> tuple[Any, Any]:
    """The client class and its retry policy class, sync or asyncio."""
    if aio:
        from azure.storage.blob.aio import ExponentialRetry as AsyncExponentialRetry

        return AsyncBlobServiceClient, AsyncExponentialRetry
    from azure.storage.blob import ExponentialRetry

    return BlobServiceClient, ExponentialRetry


def _credential(client_id: str | None, *, aio: bool) -> Any:
    # Imported lazily: azure-identity is only needed for identity-based settings.
    if aio:
        from azure.identity.aio import DefaultAzureCredential as AsyncDefaultAzureCredential

        return AsyncDefaultAzureCredential(managed_identity_client_id=client_id)
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(managed_identity_client_id=client_id)


@overload
def create_client(name: str, env: Mapping[str, str] | None = None, *, aio: Literal[False] = False) -> BlobService: ...
@overload
def create_client(name: str, env: Mapping[str, str] | None, *, aio: Literal[True]) -> AsyncBlobService: ...
@overload
def create_client(name: str, *, aio: Literal[True]) -> AsyncBlobService: ...
def create_client(name: str, env: Mapping[str, str] | None = None, *, aio: bool = False) -> Any:
    """A new client for connection ``name``: the sync one, or with ``aio=True`` the
    asyncio one (same settings, same retry). :func:`blob_service_client` and
    :func:`async_blob_service_client` hand out the cached ones."""
    settings = connection_settings(name, env)
    client_class, retry_class = _sdk(aio)
    retry = retry_class(
        initial_backoff=settings.initial_backoff,
        increment_base=settings.increment_base,
        retry_total=settings.retry_total,
        random_jitter_range=1,
    )
    if settings.connection_string:
        return client_class.from_connection_string(settings.connection_string, retry_policy=retry)
    credential = _credential(settings.client_id, aio=aio)
    return client_class(account_url=settings.account_url, credential=credential, retry_policy=retry)


def blob_service_client(name: str) -> BlobService:
    """The process-wide client for ``name``; created on first use and reused.

    Reuse matters: each client owns a connection pool, and creating one per
    activity call would pay TLS and credential setup every time.
    """
    with _lock:
        client = _clients.get(name)
        if client is None:
            client = create_client(name)
            _clients[name] = client
        return client


def async_blob_service_client(name: str) -> AsyncBlobService:
    """One asyncio client per connection and event loop, reused.

    The Functions Python worker runs ``async def`` functions on one long-lived
    loop per process, so in Azure this is one client per process; a loop that
    has closed (tests, dev host restarts) gets a fresh client.
    """
    loop = asyncio.get_running_loop()
    with _lock:
        for key, (owner, _) in list(_aio_clients.items()):
            if owner.is_closed():
                del _aio_clients[key]
        entry = _aio_clients.get((name, id(loop)))
        if entry is None or entry[0] is not loop:
            entry = (loop, create_client(name, aio=True))
            _aio_clients[(name, id(loop))] = entry
        return entry[1]


def interactive_client(name: str) -> BlobService:
    """A new client for calls a person waits on over HTTP: one quick SDK retry at most
    (the batch's own clients wait out longer trouble; a caller can simply ask again)."""
    return create_client(name, {**os.environ, "STORAGE_RETRY_TOTAL": "1"})


def blob_url(service: BlobService, path: str) -> str:
    """Where a browser finds ``container/blob`` of this account (it needs read access)."""
    return str(service.url).rstrip("/") + "/" + quote(path)


def reset_clients() -> None:
    """Forget cached clients (tests that switch storage endpoints)."""
    with _lock:
        _clients.clear()
        _aio_clients.clear()


async def close_async_clients() -> None:
    """Close this loop's asyncio clients (a host shutting down cleanly)."""
    loop = asyncio.get_running_loop()
    with _lock:
        mine = [key for key, (owner, _) in _aio_clients.items() if owner is loop]
        clients = [_aio_clients.pop(key)[1] for key in mine]
    for client in clients:
        await client.close()
