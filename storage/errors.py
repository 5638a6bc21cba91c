"""Sort storage exceptions into the two kinds the orchestration treats
differently.

Transient errors (5xx, 408, 429, timeouts, connection resets) are re-raised so
the Durable retry policy runs the activity again with backoff. Permanent ones
(the blob is gone) become a recorded per-image failure and are never retried.

Code outside ``storage/`` catches storage errors by the names below, never by
the SDK's classes: :data:`NotFoundError` (the blob or its container does not
exist) and :data:`StorageResponseError` (storage answered with an error status;
:func:`is_transient` tells whether to try again). They *are* the SDK's classes,
so what is caught, and how it is classified, is exactly what the SDK raises.
"""

from __future__ import annotations

from typing import TypeAlias

from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

NotFoundError: TypeAlias = ResourceNotFoundError
"""The blob (or its container) does not exist."""
StorageResponseError: TypeAlias = HttpResponseError
"""Storage answered with an error status (``status_code``); a subclass of it is :data:`NotFoundError`."""

TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def is_transient(error: BaseException) -> bool:
    """True when trying again later may succeed."""
    if isinstance(error, ServiceRequestError | ServiceResponseError | TimeoutError | ConnectionError):
        return True
    if isinstance(error, HttpResponseError):
        return error.status_code is None or error.status_code in TRANSIENT_STATUS
    return isinstance(error, AzureError) and not isinstance(error, HttpResponseError)


def describe(error: BaseException) -> str:
    """A one-line description without the SDK's multi-line response dump."""
    if isinstance(error, HttpResponseError):
        code = getattr(error, "error_code", None) or ""
        reason = error.reason or next(iter(str(error).splitlines()), "")
        return " ".join(part for part in ("storage returned", str(error.status_code), code, reason.strip()) if part)
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return f"{type(error).__name__}: {text}"


def permanent_error(error: BaseException) -> dict[str, str] | None:
    """``{"kind", "message"}`` for a storage error that retrying cannot fix (404, 403,
    409, 412, ...), else None: such errors are *returned*, so the Durable retry policy
    never spends its attempts (and the user's minutes) on them; transient ones are raised."""
    if isinstance(error, ResourceNotFoundError):
        return {"kind": "blob_gone", "message": describe(error)}
    if isinstance(error, HttpResponseError) and not is_transient(error):
        return {"kind": "storage_error", "message": describe(error)}
    return None
