"""Sort storage exceptions into the two kinds the orchestration treats
differently.

Transient errors (5xx, 408, 429, timeouts, connection resets) are re-raised so
the Durable retry policy runs the activity again with backoff. Permanent ones
(the blob is gone) become a recorded per-image failure and are never retried.
"""

from __future__ import annotations

from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

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
