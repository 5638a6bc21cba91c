"""Blob Storage access for ``upload`` and ``report``.

A connection string, like the app's own ``AzureWebJobsStorage`` setting, is
the one credential that works unchanged for Azurite and for a real account.
Retries are kept short: a person at a terminal would rather see "cannot
reach" in seconds than watch the SDK back off for a minute.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError, ServiceRequestError
from azure.storage.blob import BlobServiceClient, ExponentialRetry

from batchcli.errors import CliError

CONNECTION_ENV = "AzureWebJobsStorage"
T = TypeVar("T")


def blob_service(connection_string: str | None) -> BlobServiceClient:
    conn = connection_string or os.environ.get(CONNECTION_ENV)
    if not conn:
        raise CliError(f"no storage connection: pass --connection-string or set {CONNECTION_ENV}")
    try:
        return BlobServiceClient.from_connection_string(
            conn,
            # The SDK uses the backoff as seconds (a float works); its annotation says int.
            retry_policy=ExponentialRetry(initial_backoff=0.5, increment_base=2, retry_total=2),  # type: ignore[arg-type]
            connection_timeout=5,
            read_timeout=60,
        )
    except ValueError as error:
        raise CliError(f"invalid connection string: {error}") from None


def storage_call(what: str, call: Callable[[], T]) -> T:
    """Run one storage operation, turning SDK exceptions into a one-line error."""
    try:
        return call()
    except ServiceRequestError as error:
        raise CliError(f"cannot reach blob storage while trying to {what}: {_first_line(error)}") from None
    except ClientAuthenticationError:
        raise CliError(f"blob storage refused the credentials while trying to {what}") from None
    except HttpResponseError as error:
        code = getattr(error, "error_code", None) or error.status_code
        raise CliError(f"cannot {what}: {code}") from None
    except AzureError as error:
        raise CliError(f"cannot {what}: {_first_line(error)}") from None


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
