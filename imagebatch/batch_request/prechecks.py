"""The checks every JSON body of the API gets before its fields are read.

In this order: size (an oversized body is never decoded: 413), Content-Type
(a body the client did not mean as JSON is reported on its own, since checking
its fields would only add noise), UTF-8 with an optional byte-order mark (RFC
8259 allows it), JSON without duplicate keys (``json`` would silently keep the
last one) and without ``NaN``/``Infinity`` (not JSON), and a top-level object.
Every failure is one error on the field ``body`` or ``content-type``.
"""

from __future__ import annotations

import json
from typing import Any

from imagebatch.batch_request.errors import BODY, CONTENT_TYPE, FieldError, RequestValidationError, got, printable

MAX_BODY_BYTES = 1024 * 1024


def json_body(body: bytes, content_type: str | None) -> dict[str, Any]:
    """The decoded JSON object, or :class:`RequestValidationError` (413 or 400)."""
    if len(body) > MAX_BODY_BYTES:
        raise RequestValidationError(
            [FieldError(BODY, f"must be at most {MAX_BODY_BYTES} bytes, got {len(body)}")],
            status=413,
            message=f"request body is larger than {MAX_BODY_BYTES} bytes",
        )
    ct_error = content_type_error(content_type)
    if ct_error:
        raise RequestValidationError([FieldError(CONTENT_TYPE, ct_error)])
    return decode_json(body)


def content_type_error(content_type: str | None) -> str | None:
    """Accept ``application/json`` and ``application/<anything>+json``, with an
    optional ``charset`` that must be UTF-8 (the only encoding JSON allows).
    No Content-Type at all is accepted."""
    if content_type is None or not content_type.strip():
        return None
    media, *params = content_type.split(";")
    media = media.strip().lower()
    if not (media == "application/json" or (media.startswith("application/") and media.endswith("+json"))):
        return f"must be application/json (or application/*+json), got {content_type.strip()[:60]!r}"
    for param in params:
        key, _, value = param.partition("=")
        charset = value.strip().strip('"').lower()
        if key.strip().lower() == "charset" and charset not in ("utf-8", "utf8"):
            return f"charset must be utf-8, got {charset[:30]!r}"
    return None


class _DuplicateKeyError(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(key)
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def decode_json(body: bytes) -> dict[str, Any]:
    """UTF-8 (optional BOM) -> JSON -> must be an object; errors are field ``body``."""

    def fail(message: str) -> RequestValidationError:
        return RequestValidationError([FieldError(BODY, message)])

    try:
        text = bytes(body).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise fail(f"must be UTF-8, invalid byte at offset {exc.start}") from None
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except _DuplicateKeyError as exc:
        raise fail(f"must not repeat a key in one object, got {printable(str(exc)[:60])!r} twice") from None
    except json.JSONDecodeError as exc:
        raise fail(f"must be valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise fail("must be valid JSON: nested too deeply") from None
    except ValueError as exc:  # NaN/Infinity, integers over the int-digits limit
        raise fail(f"must be valid JSON: {str(exc)[:80]}") from None
    if not isinstance(data, dict):
        raise fail(f"must be a JSON object, got {got(data)}")
    return data
