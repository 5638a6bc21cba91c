"""Parse and validate the JSON body of ``POST /api/batches``.

The HTTP starter calls :func:`parse_batch_request` and either gets a
:class:`~imagebatch.specs.BatchRequest` to hand to the orchestrator, or a
:class:`RequestValidationError` whose :meth:`~RequestValidationError.to_json`
is the response body. Validation happens here, up front, because a bad value
found later (inside an activity, after fan-out) costs a whole batch of failed
work items instead of one 400.

Written with the standard library only (``json``, ``re``), not pydantic or a
JSON-Schema library: the deployed function package stays small and cold starts
stay fast, and hand-written checks give the short, field-addressed messages
the API promises. ``openapi.yaml`` describes the same rules for clients; a test
keeps its limits and enums in line with the constants below.

Every error is collected (not just the first) so a client can fix a request in
one round trip. Decisions worth knowing when calling the API:

* ``null`` for an optional field means "not given" (use the default);
  for a required field it is reported as missing.
* Integer fields accept only JSON integers: ``10.0``, ``true`` and ``"10"``
  are refused. ``tolerated_failure_percent`` accepts any finite number.
  ``NaN``/``Infinity`` literals are not JSON and are refused.
* Duplicate keys in one JSON object are refused (``json`` would silently keep
  the last one).
* ``fit: "cover"`` without a ``height`` is an error (there is no box to fill);
  ``fit: "contain"`` without a height is the default and is accepted.
* Duplicate names in ``source.blobs`` are errors, not silently de-duplicated:
  they usually reveal a client bug, and the batch's ``total`` should equal the
  list the client sent.
* Explicit blobs must have an image extension (:data:`naming.IMAGE_EXTENSIONS`)
  and must give valid output names (length, segment count).
* A non-empty ``output.prefix`` must end with ``/`` so that outputs form a
  folder and :func:`naming.is_own_output` cannot match unrelated names
  (``"web"`` would also match ``"website/a.jpg"``).
* Same source and output container: ``output.prefix`` must be non-empty,
  ``source.prefix`` must not start with it (the listing would contain only
  outputs) and no explicit blob may lie under it. An output prefix *inside*
  the listed source prefix (``source.prefix: ""``, ``output.prefix: "web/"``)
  is allowed: ListImages skips those names with :func:`naming.is_own_output`.
* A UTF-8 byte-order mark before the JSON is ignored (RFC 8259 allows it).
* A given Content-Type must be ``application/json`` or ``application/*+json``;
  a ``charset`` other than UTF-8 is refused. No Content-Type is accepted.
* The response lists at most :data:`MAX_REPORTED_ERRORS` errors; the message
  gives the full count.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from imagebatch import naming
from imagebatch.specs import (
    DEFAULT_QUALITY,
    DEFAULT_RENDITIONS,
    EXTENSIONS,
    FITS,
    FORMATS,
    MAX_WIDTH,
    MIN_WIDTH,
    REVIEW_ON_TIMEOUT,
    BatchRequest,
    RenderSpec,
    Rendition,
    ReviewSpec,
)

MAX_BODY_BYTES = 1024 * 1024
# Each rendition is one more encode per image; 10 covers every srcset we have
# seen while keeping one ProcessImage call well inside its time budget.
MAX_RENDITIONS = 10
# Bigger jobs should use a prefix: the explicit list travels in the orchestration
# input (and so in its history), and 10k names fit the 1 MiB body anyway.
MAX_EXPLICIT_BLOBS = 10_000

MIN_QUALITY = 1
MAX_QUALITY = 100
MIN_CONCURRENCY = 1
MAX_CONCURRENCY = 1000
DEFAULT_MAX_CONCURRENCY = 10
MIN_DEADLINE_MINUTES = 1
MAX_DEADLINE_MINUTES = 525600  # one year
# Proof before the batch: a sample a person can look through on one page.
MIN_REVIEW_SAMPLE = 1
MAX_REVIEW_SAMPLE = 100
MIN_REVIEW_TIMEOUT_MINUTES = 1
MAX_REVIEW_TIMEOUT_MINUTES = 43200  # 30 days
DEFAULT_REVIEW_TIMEOUT_MINUTES = 1440
DEFAULT_REVIEW_ON_TIMEOUT = "reject"
MAX_REASON_LENGTH = 1000
MIN_TOLERATED_FAILURE_PERCENT = 0
MAX_TOLERATED_FAILURE_PERCENT = 100
DEFAULT_FORMAT = "jpeg"
MAX_RENDITION_NAME_LENGTH = 32
RENDITION_NAME_PATTERN = r"[a-z0-9_-]{1,32}"
# A response listing 10k bad blob names helps nobody; the count is kept.
MAX_REPORTED_ERRORS = 100

_RENDITION_NAME = re.compile(RENDITION_NAME_PATTERN)
_BODY = "body"
_CONTENT_TYPE = "content-type"
ERROR_CODES = {400: "invalid_request", 409: "conflict", 413: "payload_too_large"}

TOP_LEVEL_FIELDS = (
    "source",
    "output",
    "renditions",
    "format",
    "quality",
    "max_concurrency",
    "tolerated_failure_percent",
    "batch_id",
    "deadline_minutes",
    "review",
)
REVIEW_FIELDS = ("sample", "timeout_minutes", "on_timeout")
REVIEW_DECISION_FIELDS = ("reason",)
SOURCE_FIELDS = ("container", "prefix", "blobs")
OUTPUT_FIELDS = ("container", "prefix")
RENDITION_FIELDS = ("name", "width", "height", "fit")


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

    ``status`` is 400, or 413 when the body is over :data:`MAX_BODY_BYTES`.
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


# --- entry point -----------------------------------------------------------


def _json_body(body: bytes, content_type: str | None) -> Any:
    """The checks every JSON body of the API gets before its fields are read.

    The size is checked before anything else so an oversized body is never
    decoded; a wrong content type is reported on its own, since checking the
    fields of a body the client did not mean as JSON would only add noise.
    """
    if len(body) > MAX_BODY_BYTES:
        raise RequestValidationError(
            [FieldError(_BODY, f"must be at most {MAX_BODY_BYTES} bytes, got {len(body)}")],
            status=413,
            message=f"request body is larger than {MAX_BODY_BYTES} bytes",
        )
    ct_error = _content_type_error(content_type)
    if ct_error:
        raise RequestValidationError([FieldError(_CONTENT_TYPE, ct_error)])
    return _decode_json(body)


def parse_batch_request(body: bytes, content_type: str | None = None) -> BatchRequest:
    """Validate a ``POST /api/batches`` body; raise :class:`RequestValidationError`."""
    data = _json_body(body, content_type)
    errors = _Errors()
    request = _build_request(data, errors)
    if errors.items or request is None:
        raise RequestValidationError(errors.items)
    return request


CONTROL_UPDATE_FIELDS = ("max_concurrency",)


def parse_control_update(body: bytes, content_type: str | None = None) -> int:
    """Validate a ``PATCH /api/batches/{id}`` body (``{"max_concurrency": M}``);
    returns M or raises :class:`RequestValidationError` (same shapes as a start)."""
    data = _json_body(body, content_type)
    errors = _Errors()
    _unknown_keys(data, CONTROL_UPDATE_FIELDS, "", errors)
    value = _required(data, "max_concurrency", "", errors)
    concurrency = (
        None if value is None else _integer(value, "max_concurrency", MIN_CONCURRENCY, MAX_CONCURRENCY, errors)
    )
    if errors.items or concurrency is None:
        raise RequestValidationError(errors.items)
    return concurrency


def parse_review_decision(body: bytes, content_type: str | None = None) -> str | None:
    """Validate a ``POST /api/batches/{id}/approve`` or ``/reject`` body: empty, or
    ``{"reason": "..."}``; returns the reason (None when not given)."""
    if not body.strip():
        return None
    data = _json_body(body, content_type)
    errors = _Errors()
    _unknown_keys(data, REVIEW_DECISION_FIELDS, "", errors)
    reason = data.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON_LENGTH):
        errors.add("reason", f"must be a string of at most {MAX_REASON_LENGTH} characters, got {_got(reason)}")
    if errors.items:
        raise RequestValidationError(errors.items)
    return reason


# --- body decoding -----------------------------------------------------------


def _content_type_error(content_type: str | None) -> str | None:
    """Accept ``application/json`` and ``application/<anything>+json``, with an
    optional ``charset`` that must be UTF-8 (the only encoding JSON allows)."""
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


def _decode_json(body: bytes) -> dict[str, Any]:
    """UTF-8 (optional BOM) -> JSON -> must be an object; errors are field ``body``."""

    def fail(message: str) -> RequestValidationError:
        return RequestValidationError([FieldError(_BODY, message)])

    try:
        text = bytes(body).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise fail(f"must be UTF-8, invalid byte at offset {exc.start}") from None
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except _DuplicateKeyError as exc:
        raise fail(f"must not repeat a key in one object, got {_printable(str(exc)[:60])!r} twice") from None
    except json.JSONDecodeError as exc:
        raise fail(f"must be valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise fail("must be valid JSON: nested too deeply") from None
    except ValueError as exc:  # NaN/Infinity, integers over the int-digits limit
        raise fail(f"must be valid JSON: {str(exc)[:80]}") from None
    if not isinstance(data, dict):
        raise fail(f"must be a JSON object, got {_got(data)}")
    return data


# --- error collection and small field checkers ----------------------------------


class _Errors:
    def __init__(self) -> None:
        self.items: list[FieldError] = []

    def add(self, field: str, message: str) -> None:
        self.items.append(FieldError(field, message))

    def count(self) -> int:
        return len(self.items)


def _got(value: object) -> str:
    """How a received value is shown in a message: JSON-like, truncated."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    text = _printable(json.dumps(value, ensure_ascii=False))
    if len(text) <= 40:
        return text
    return text[:36] + ('..."' if text.startswith('"') else "...")


def _printable(text: str) -> str:
    """Echoed client text must survive UTF-8 encoding of the response: JSON
    strings may carry lone surrogates (``"\\ud800"``), which are escaped."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _unknown_keys(obj: dict[str, Any], allowed: Sequence[str], path: str, errors: _Errors) -> None:
    for key in obj:
        if key not in allowed:
            shown = _printable(key if len(key) <= 60 else key[:57] + "...")
            errors.add(_join(path, shown), "unknown field")


def _object(value: object, path: str, errors: _Errors) -> dict[str, Any] | None:
    if isinstance(value, dict):
        return value
    errors.add(path, f"must be an object, got {_got(value)}")
    return None


def _integer(value: object, path: str, low: int, high: int, errors: _Errors) -> int | None:
    """A JSON integer in [low, high]; ``bool`` and floats (even ``10.0``) are refused."""
    if type(value) is int and low <= value <= high:
        return value
    errors.add(path, f"must be an integer between {low} and {high}, got {_got(value)}")
    return None


def _number(value: object, path: str, low: float, high: float, errors: _Errors) -> float | None:
    """Any finite JSON number in [low, high]; ``1e400`` parses as inf and fails the range."""
    if isinstance(value, int | float) and not isinstance(value, bool) and low <= value <= high:
        return float(value)
    errors.add(path, f"must be a number between {low} and {high}, got {_got(value)}")
    return None


def _choice(value: object, path: str, choices: Sequence[str], errors: _Errors) -> str | None:
    if isinstance(value, str) and value in choices:
        return value
    allowed = ", ".join(f'"{c}"' for c in choices)
    errors.add(path, f"must be one of {allowed}, got {_got(value)}")
    return None


def _named(value: object, path: str, check: Callable[[str], str | None], errors: _Errors) -> str | None:
    """Run a :mod:`naming` checker; wrong types are reported with what was received."""
    if not isinstance(value, str):
        errors.add(path, f"must be a string, got {_got(value)}")
        return None
    message = check(value)
    if message:
        errors.add(path, f"{message}, got {_got(value)}" if ", got " not in message else message)
        return None
    return value


# --- sections -------------------------------------------------------------------


@dataclass
class _Source:
    container: str | None
    prefix: str | None
    blobs: tuple[str, ...] | None


def _source(value: object, errors: _Errors) -> _Source | None:
    obj = _object(value, "source", errors)
    if obj is None:
        return None
    _unknown_keys(obj, SOURCE_FIELDS, "source", errors)
    container = _required(obj, "container", "source", errors)
    if container is not None:
        container = _named(container, "source.container", naming.container_name_error, errors)
    prefix_value, blobs_value = obj.get("prefix"), obj.get("blobs")
    if (prefix_value is None) == (blobs_value is None):
        got = "neither" if prefix_value is None else "both"
        errors.add("source", f"must have exactly one of 'prefix' and 'blobs', got {got}")
    prefix = None
    if prefix_value is not None:
        prefix = _named(prefix_value, "source.prefix", naming.prefix_error, errors)
    blobs = None if blobs_value is None else _blobs(blobs_value, errors)
    return _Source(container, prefix, blobs)


def _required(obj: dict[str, Any], key: str, path: str, errors: _Errors) -> Any:
    """The value, or ``None`` after reporting it missing (absent or ``null``)."""
    value = obj.get(key)
    if value is None:
        errors.add(_join(path, key), "is required")
    return value


def _default(obj: dict[str, Any], key: str, default: Any) -> Any:
    """An optional field: absent or ``null`` means the default; ``""``/``0`` do not."""
    value = obj.get(key)
    return default if value is None else value


def _blobs(value: object, errors: _Errors) -> tuple[str, ...] | None:
    path = "source.blobs"
    if not isinstance(value, list):
        errors.add(path, f"must be an array of blob names, got {_got(value)}")
        return None
    before = errors.count()
    if not 1 <= len(value) <= MAX_EXPLICIT_BLOBS:
        errors.add(path, f"must have 1 to {MAX_EXPLICIT_BLOBS} items, got {len(value)}")
    first_index: dict[str, int] = {}
    for index, item in enumerate(value):
        item_path = f"{path}[{index}]"
        name = _named(item, item_path, naming.blob_name_error, errors)
        if name is None:
            continue
        if not naming.is_image_name(name):
            extensions = " ".join(sorted(naming.IMAGE_EXTENSIONS))
            errors.add(item_path, f"must have an image extension ({extensions}), got {_got(name)}")
        elif name in first_index:
            errors.add(item_path, f"duplicate of {path}[{first_index[name]}]")
        else:
            first_index[name] = index
    return tuple(value) if errors.count() == before else None


@dataclass
class _Output:
    container: str | None
    prefix: str | None


def _output(value: object, errors: _Errors) -> _Output | None:
    obj = _object(value, "output", errors)
    if obj is None:
        return None
    _unknown_keys(obj, OUTPUT_FIELDS, "output", errors)
    container = _required(obj, "container", "output", errors)
    if container is not None:
        container = _named(container, "output.container", naming.container_name_error, errors)
    prefix = _named(_default(obj, "prefix", ""), "output.prefix", naming.prefix_error, errors)
    if prefix and not prefix.endswith("/"):
        errors.add("output.prefix", f"must end with '/', got {_got(prefix)}")
        prefix = None
    return _Output(container, prefix)


def _renditions(value: object, errors: _Errors) -> tuple[Rendition, ...] | None:
    if value is None:
        return DEFAULT_RENDITIONS
    if not isinstance(value, list):
        errors.add("renditions", f"must be an array of renditions, got {_got(value)}")
        return None
    before = errors.count()
    if not 1 <= len(value) <= MAX_RENDITIONS:
        errors.add("renditions", f"must have 1 to {MAX_RENDITIONS} items, got {len(value)}")
    result: list[Rendition] = []
    first_index: dict[str, int] = {}
    for index, item in enumerate(value):
        rendition = _rendition(item, f"renditions[{index}]", errors)
        if rendition is not None:
            result.append(rendition)
        name = item.get("name") if isinstance(item, dict) else None
        if isinstance(name, str) and _RENDITION_NAME.fullmatch(name):
            first = first_index.setdefault(name, index)
            if first != index:
                errors.add(f"renditions[{index}].name", f"duplicate of renditions[{first}].name")
    return tuple(result) if errors.count() == before else None


def _rendition(value: object, path: str, errors: _Errors) -> Rendition | None:
    obj = _object(value, path, errors)
    if obj is None:
        return None
    before = errors.count()
    _unknown_keys(obj, RENDITION_FIELDS, path, errors)
    name = _required(obj, "name", path, errors)
    if name is not None and not (isinstance(name, str) and _RENDITION_NAME.fullmatch(name)):
        errors.add(
            f"{path}.name",
            f"must be 1 to {MAX_RENDITION_NAME_LENGTH} characters of a-z 0-9 _ -, got {_got(name)}",
        )
    width = _required(obj, "width", path, errors)
    width = None if width is None else _integer(width, f"{path}.width", MIN_WIDTH, MAX_WIDTH, errors)
    height = obj.get("height")
    if height is not None:
        height = _integer(height, f"{path}.height", MIN_WIDTH, MAX_WIDTH, errors)
    fit = _choice(_default(obj, "fit", "contain"), f"{path}.fit", FITS, errors)
    if fit == "cover" and obj.get("height") is None:
        errors.add(f"{path}.fit", '"cover" needs a height (there is no box to fill)')
    if errors.count() != before:
        return None
    return Rendition(name=name, width=width, height=height, fit=fit)  # type: ignore[arg-type]


# --- the whole request ------------------------------------------------------------


def _build_request(data: dict[str, Any], errors: _Errors) -> BatchRequest | None:
    _unknown_keys(data, TOP_LEVEL_FIELDS, "", errors)
    source_value = _required(data, "source", "", errors)
    source = None if source_value is None else _source(source_value, errors)
    output_value = _required(data, "output", "", errors)
    output = None if output_value is None else _output(output_value, errors)
    renditions = _renditions(data.get("renditions"), errors)
    fmt = _choice(_default(data, "format", DEFAULT_FORMAT), "format", FORMATS, errors)
    quality = _optional_int(data, "quality", MIN_QUALITY, MAX_QUALITY, DEFAULT_QUALITY, errors)
    concurrency = _optional_int(
        data, "max_concurrency", MIN_CONCURRENCY, MAX_CONCURRENCY, DEFAULT_MAX_CONCURRENCY, errors
    )
    tolerated = _optional_number(
        data,
        "tolerated_failure_percent",
        MIN_TOLERATED_FAILURE_PERCENT,
        MAX_TOLERATED_FAILURE_PERCENT,
        0.0,
        errors,
    )
    deadline = data.get("deadline_minutes")
    if deadline is not None:
        deadline = _integer(deadline, "deadline_minutes", MIN_DEADLINE_MINUTES, MAX_DEADLINE_MINUTES, errors)
    review = None if data.get("review") is None else _review(data["review"], errors)
    batch_id = data.get("batch_id")
    if batch_id is not None:
        batch_id = _named(batch_id, "batch_id", naming.instance_id_error, errors)
    if source and output:
        _check_overlap(source, output, errors)
        if renditions and fmt:
            _check_output_names(source, output, renditions, EXTENSIONS[fmt], errors)
    if errors.items or not (source and output and source.container and output.container):
        return None
    return BatchRequest(
        source_container=source.container,
        source_prefix=source.prefix,
        source_blobs=source.blobs,
        output_container=output.container,
        output_prefix=output.prefix or "",
        spec=RenderSpec(renditions=renditions, format=fmt, quality=quality),  # type: ignore[arg-type]
        max_concurrency=concurrency,  # type: ignore[arg-type]
        tolerated_failure_percent=tolerated,  # type: ignore[arg-type]
        batch_id=batch_id,
        deadline_minutes=deadline,
        review=review,
    )


def _review(value: object, errors: _Errors) -> ReviewSpec | None:
    """``{"sample": N, "timeout_minutes": T, "on_timeout": "reject" | "approve"}``;
    ``sample`` is required, the others default (a day, reject)."""
    obj = _object(value, "review", errors)
    if obj is None:
        return None
    count = len(errors.items)
    _unknown_keys(obj, REVIEW_FIELDS, "review", errors)
    sample = _required(obj, "sample", "review", errors)
    if sample is not None:
        sample = _integer(sample, "review.sample", MIN_REVIEW_SAMPLE, MAX_REVIEW_SAMPLE, errors)
    timeout = _default(obj, "timeout_minutes", DEFAULT_REVIEW_TIMEOUT_MINUTES)
    timeout = _integer(
        timeout, "review.timeout_minutes", MIN_REVIEW_TIMEOUT_MINUTES, MAX_REVIEW_TIMEOUT_MINUTES, errors
    )
    on_timeout = _choice(
        _default(obj, "on_timeout", DEFAULT_REVIEW_ON_TIMEOUT), "review.on_timeout", REVIEW_ON_TIMEOUT, errors
    )
    if len(errors.items) > count or sample is None or timeout is None or on_timeout is None:
        return None
    return ReviewSpec(sample=sample, timeout_minutes=timeout, on_timeout=on_timeout)


def _optional_int(data: dict[str, Any], key: str, low: int, high: int, default: int, errors: _Errors) -> int | None:
    value = data.get(key)
    return default if value is None else _integer(value, key, low, high, errors)


def _optional_number(
    data: dict[str, Any], key: str, low: float, high: float, default: float, errors: _Errors
) -> float | None:
    value = data.get(key)
    return default if value is None else _number(value, key, low, high, errors)


def _check_overlap(source: _Source, output: _Output, errors: _Errors) -> None:
    """Keep outputs from being read back as inputs when both live in one container.

    Outputs are every name under ``output.prefix``. Listing under
    ``source.prefix`` sees them only if one prefix starts with the other: when
    the source prefix is inside the output area every listed name is an output
    (refused); when the output area is inside the listed range ListImages
    filters it with :func:`naming.is_own_output` (allowed). An empty output
    prefix would make the whole container "output", so it is refused.
    """
    if source.container is None or source.container != output.container or output.prefix is None:
        return
    if output.prefix == "":
        errors.add("output.prefix", "must not be empty when output.container is the source container")
        return
    if source.prefix is not None and source.prefix.startswith(output.prefix):
        errors.add(
            "source.prefix",
            f"must not start with output.prefix {output.prefix!r} in the same container (it would list the outputs)",
        )
    for index, name in enumerate(source.blobs or ()):
        if naming.is_own_output(name, output.prefix):
            errors.add(f"source.blobs[{index}]", f"must not be under output.prefix {output.prefix!r}")


def _check_output_names(
    source: _Source, output: _Output, renditions: Sequence[Rendition], extension: str, errors: _Errors
) -> None:
    """Explicit blobs must yield valid output names; the longest rendition name
    gives the longest output name, and all renditions have the same depth."""
    if not source.blobs or output.prefix is None:
        return
    longest = max((r.name for r in renditions), key=len)
    for index, name in enumerate(source.blobs):
        message = naming.blob_name_error(
            naming.output_blob_name(output.prefix, name, longest, extension, naming.VERSION_PLACEHOLDER)
        )
        if message:
            errors.add(f"source.blobs[{index}]", f"gives an invalid output name: {message}")
