"""The error side of request validation: what a refused request answers.

Every 400/409/413 of the API has one JSON shape,
``{"error", "message", "errors": [{"field", "message"}]}``, built by
:meth:`RequestValidationError.to_json`. Validation collects every problem in an
:class:`Errors` list (not just the first) so a client can fix a request in one
round trip; the response lists at most :data:`MAX_REPORTED_ERRORS` of them and
the message gives the full count.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

# A response listing 10k bad blob names helps nobody; the count is kept.
MAX_REPORTED_ERRORS = 100
ERROR_CODES = {400: "invalid_request", 409: "conflict", 413: "payload_too_large"}
BODY = "body"
CONTENT_TYPE = "content-type"


@dataclass(frozen=True)
class FieldError:
    """One problem with one field; ``field`` is a JSON path such as
    ``"renditions[1].width"``, ``"source.container"``, ``"body"`` or
    ``"content-type"``."""

    field: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class RequestValidationError(Exception):
    """The request cannot be accepted; carries the HTTP status and all errors.

    ``status`` is 400, or 413 when the body is over the size limit.
    409 is also supported (see :meth:`conflict`) so the HTTP starter can
    answer a duplicate ``batch_id`` with the same body shape.
    """

    def __init__(self, errors: Iterable[FieldError], *, status: int = 400, message: str | None = None):
        self.status = status
        self.errors: tuple[FieldError, ...] = tuple(errors)
        self.message = message or _summary(self.errors)
        super().__init__(self.message)

    @property
    def code(self) -> str:
        """The machine-readable ``error`` value of the response body."""
        return ERROR_CODES.get(self.status, "invalid_request")

    def to_json(self) -> dict[str, Any]:
        """The response body: ``{"error", "message", "errors": [{"field", "message"}]}``."""
        shown = self.errors[:MAX_REPORTED_ERRORS]
        message = self.message
        if len(shown) < len(self.errors):
            message += f" (first {len(shown)} of {len(self.errors)} errors listed)"
        return {"error": self.code, "message": message, "errors": [e.to_dict() for e in shown]}

    @classmethod
    def conflict(cls, batch_id: str) -> RequestValidationError:
        """409 for a ``batch_id`` whose instance is still pending/running."""
        error = FieldError("batch_id", f"a batch with id {batch_id!r} is already running")
        return cls([error], status=409, message=f"batch {batch_id!r} is already running")


def _summary(errors: Sequence[FieldError]) -> str:
    if not errors:
        return "invalid request"
    first = errors[0]
    text = f"invalid request: {first.field}: {first.message}" if first.field else first.message
    if len(errors) > 1:
        text += f" (and {len(errors) - 1} more)"
    return text


class Errors:
    """The problems found so far, in the order they were found (document order)."""

    def __init__(self) -> None:
        self.items: list[FieldError] = []

    def add(self, field: str, message: str) -> None:
        self.items.append(FieldError(field, message))

    def count(self) -> int:
        return len(self.items)


def got(value: object) -> str:
    """How a received value is shown in a message: JSON-like, truncated."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    text = printable(json.dumps(value, ensure_ascii=False))
    if len(text) <= 40:
        return text
    return text[:36] + ('..."' if text.startswith('"') else "...")


def printable(text: str) -> str:
    """Echoed client text must survive UTF-8 encoding of the response: JSON
    strings may carry lone surrogates (``"\\ud800"``), which are escaped."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text
