"""One ``BlobServiceClient`` per process, built the way Functions resolves a
connection for its own bindings.

Functions accepts either a connection string in the app setting ``<name>`` or
identity-based settings (``<name>__blobServiceUri``, ``<name>__serviceUri`` or
``<name>__accountName``, optionally ``<name>__clientId``). We mirror that so an
app that runs on ``UseDevelopmentStorage=true`` locally moves to a managed
identity in Azure by changing settings only.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Mapping

from azure.storage.blob import BlobServiceClient
from azure.storage.blob.aio import BlobServiceClient as AsyncBlobServiceClient

_lock = threading.Lock()
_clients: dict[str, BlobServiceClient] = {}


class StorageConfigurationError(RuntimeError):
    """The named connection has no usable settings."""


def _retry(env: Mapping[str, str], *, aio: bool = False) -> dict[str, object]:
    """The storage SDK's own retry, sized for a batch worker.

    The SDK default (``ExponentialRetry``: waits of about 15, 18 and 42 s)
    makes one activity attempt sleep over a minute in an outage before the
    orchestration's retry policy even sees the failure. Short SDK waits for
    brief blips, then the orchestration's backoff for longer trouble.
    Settings: ``STORAGE_RETRY_TOTAL`` (3), ``STORAGE_RETRY_INITIAL_BACKOFF``
    seconds (1), ``STORAGE_RETRY_INCREMENT_BASE`` (2): waits of about 1, 3, 5 s.
    """
    if aio:
        from azure.storage.blob.aio import ExponentialRetry
    else:
        from azure.storage.blob import ExponentialRetry  # type: ignore[assignment]

    return {
        "retry_policy": ExponentialRetry(
            initial_backoff=int(env.get("STORAGE_RETRY_INITIAL_BACKOFF", "1")),
            increment_base=int(env.get("STORAGE_RETRY_INCREMENT_BASE", "2")),
            retry_total=int(env.get("STORAGE_RETRY_TOTAL", "3")),
            random_jitter_range=1,
        )
    }


def _service_uri(name: str, env: Mapping[str, str]) -> str | None:
    for suffix in ("__blobServiceUri", "__serviceUri"):
        uri = env.get(f"{name}{suffix}")
        if uri:
            return uri
    account = env.get(f"{name}__accountName")
    if account:
        return f"https://{account}.blob.core.windows.net"
    return None


def create_blob_service_client(name: str, env: Mapping[str, str] | None = None) -> BlobServiceClient:
    """Build a client for connection ``name`` (see module docstring)."""
    env = os.environ if env is None else env
    connection_string = env.get(name)
    if connection_string:
        return BlobServiceClient.from_connection_string(connection_string, **_retry(env))
    uri = _service_uri(name, env)
    if uri:
        # Imported lazily: azure-identity is only needed for identity-based settings.
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential(managed_identity_client_id=env.get(f"{name}__clientId"))
        return BlobServiceClient(account_url=uri, credential=credential, **_retry(env))
    raise StorageConfigurationError(
        f"No storage settings for connection '{name}': set '{name}' to a connection string, "
        f"or '{name}__blobServiceUri' / '{name}__accountName' for a managed identity."
    )


def blob_service_client(name: str) -> BlobServiceClient:
    """The process-wide client for ``name``; created on first use and reused.

    Reuse matters: each client owns a connection pool, and creating one per
    activity call would pay TLS and credential setup every time.
    """
    with _lock:
        client = _clients.get(name)
        if client is None:
            client = create_blob_service_client(name)
            _clients[name] = client
        return client


def reset_clients() -> None:
    """Forget cached clients (tests that switch storage endpoints)."""
    with _lock:
        _clients.clear()
        _aio_clients.clear()


# --- asyncio clients -------------------------------------------------------------------------

_aio_clients: dict[tuple[str, int], tuple[asyncio.AbstractEventLoop, AsyncBlobServiceClient]] = {}


def create_async_blob_service_client(name: str, env: Mapping[str, str] | None = None) -> AsyncBlobServiceClient:
    """The asyncio twin of :func:`create_blob_service_client` (same settings)."""
    env = os.environ if env is None else env
    connection_string = env.get(name)
    if connection_string:
        return AsyncBlobServiceClient.from_connection_string(connection_string, **_retry(env, aio=True))
    uri = _service_uri(name, env)
    if uri:
        from azure.identity.aio import DefaultAzureCredential as AsyncDefaultAzureCredential

        credential = AsyncDefaultAzureCredential(managed_identity_client_id=env.get(f"{name}__clientId"))
        return AsyncBlobServiceClient(account_url=uri, credential=credential, **_retry(env, aio=True))
    raise StorageConfigurationError(f"No storage settings for connection '{name}'.")


def async_blob_service_client(name: str) -> AsyncBlobServiceClient:
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
            entry = (loop, create_async_blob_service_client(name))
            _aio_clients[(name, id(loop))] = entry
        return entry[1]


async def close_async_clients() -> None:
    """Close this loop's asyncio clients (a host shutting down cleanly)."""
    loop = asyncio.get_running_loop()
    with _lock:
        mine = [key for key, (owner, _) in _aio_clients.items() if owner is loop]
        clients = [_aio_clients.pop(key)[1] for key in mine]
    for client in clients:
        await client.close()
