"""How the extension's ``HttpApiHandler`` reads requests and writes responses, .NET details included.

Case-insensitive query names (``GetQueryNameValuePairs``), ``bool.TryParse`` booleans,
runtime-status lists, instance-id rules (``DurableClient.StartNewAsync``), the JSON and
error bodies (``CreateResponse`` / ``CreateErrorResponse``) and the list continuation token:
the vocabulary :mod:`.management_api` speaks.
"""

from __future__ import annotations

import base64
import json
import re
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from .runtime_status import ACTIVE_STATUSES, TERMINAL_STATUSES

RUNNING_STATES = ACTIVE_STATUSES
FINISHED_STATES = TERMINAL_STATUSES
RUNTIME_STATUSES = RUNNING_STATES + FINISHED_STATES
_INVALID_ID_CHARS = re.compile(r"[/\\?#\x00-\x1f\x7f-\x9f]")
MAX_INSTANCE_ID_LENGTH = 256
DEFAULT_PAGE_SIZE = 100


# ---------------------------------------------------------------------------
# .NET-style parsing helpers
# ---------------------------------------------------------------------------


class Query:
    """Case-insensitive query access (``GetQueryNameValuePairs`` uses OrdinalIgnoreCase)."""

    def __init__(self, query: Mapping[str, str]) -> None:
        self._values: dict[str, list[str]] = {}
        getall = getattr(query, "getall", None)
        for key in dict.fromkeys(query):
            self._values.setdefault(key.lower(), []).extend(getall(key) if getall else [query[key]])

    def get(self, name: str) -> str | None:
        vals = self._values.get(name.lower())
        return ",".join(vals) if vals else None

    def get_all(self, name: str) -> list[str]:
        return list(self._values.get(name.lower(), []))

    def bool(self, name: str) -> bool | None:
        """``bool.TryParse``: case-insensitive ``true``/``false``, anything else -> None."""
        value = (self.get(name) or "").strip().lower()
        return {"true": True, "false": False}.get(value)

    def int(self, name: str) -> int | None:
        try:
            return int((self.get(name) or "").strip())
        except ValueError:
            return None

    def seconds(self, name: str) -> float | None:
        try:
            return float((self.get(name) or "").strip())
        except ValueError:
            return None

    def datetime(self, name: str) -> datetime | None:
        return parse_datetime(self.get(name))

    def statuses(self, name: str) -> list[str]:
        """``TryGetIEnumerableQueryParameterValue``: comma lists, unknown names dropped."""
        lookup = {s.lower(): s for s in RUNTIME_STATUSES}
        out: list[str] = []
        for raw in self.get_all(name):
            for part in raw.split(","):
                status = lookup.get(part.strip().lower())
                if status and status not in out:
                    out.append(status)
        return out


def parse_datetime(value: str | None) -> datetime | None:
    """Lenient ISO-8601 parse (the SDK sends ``%Y-%m-%dT%H:%M:%S.%fZ``); naive = UTC."""
    if not value:
        return None
    text = value.strip().replace(" ", "+") if "T" in value else value.strip()
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)  # .NET allows 7 fractional digits
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def compact_json(text: str) -> str:
    """Re-serialise JSON the way Newtonsoft writes it (no spaces, non-ASCII kept)."""
    return json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)


def json_response(status: int, value: Any, headers: Mapping[str, str] | None = None) -> web.Response:
    """``CreateResponse<T>``: Newtonsoft-serialised body, ``application/json; charset=utf-8``."""
    return web.Response(
        status=status,
        body=json.dumps(value, ensure_ascii=False).encode("utf-8"),
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


def error_response(
    status: int, message: str, exc: BaseException | None = None, exc_type: str | None = None
) -> web.Response:
    """``CreateErrorResponse``: ``{"Message"}`` or with ``ExceptionMessage/Type/StackTrace``."""
    body: dict[str, Any] = {"Message": message}
    if exc is not None:
        body["ExceptionMessage"] = str(exc)
        body["ExceptionType"] = exc_type or f"{type(exc).__module__}.{type(exc).__qualname__}"
        body["StackTrace"] = "".join(traceback.format_tb(exc.__traceback__)) or None
    return json_response(status, body)


def empty(status: int, headers: Mapping[str, str] | None = None) -> web.Response:
    """``CreateResponse(statusCode)``: no content at all (the SDK reads it as ``None``)."""
    return web.Response(status=status, headers=headers)


class ArgumentError(ValueError):
    """Maps to the handler's ``catch (ArgumentException)`` -> 400."""


def validate_instance_id(instance_id: str) -> None:
    """``DurableClient.StartNewAsync`` checks (the argument order of the .NET
    ``ArgumentException`` there is swapped, so its message is the parameter name)."""
    if instance_id.startswith("@"):
        raise ArgumentError("instanceId (Parameter 'Orchestration instance ids must not start with @.')")
    if _INVALID_ID_CHARS.search(instance_id):
        raise ArgumentError(
            "instanceId (Parameter 'Orchestration instance ids must not contain /, \\, #, ?, or control characters.')"
        )
    if len(instance_id) > MAX_INSTANCE_ID_LENGTH:
        raise ArgumentError(f"Instance ID lengths must not exceed {MAX_INSTANCE_ID_LENGTH} characters.")


def encode_token(offset: int) -> str:
    """The ``x-ms-continuation-token`` of a list page (opaque to clients)."""
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        return max(0, int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]))
    except (ValueError, KeyError, TypeError):
        return 0
