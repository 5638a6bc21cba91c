"""Parse and validate the JSON bodies of the API's requests.

The HTTP layer calls :func:`parse_batch_request` (``POST /api/batches``) and
either gets a :class:`~imagebatch.specs.BatchRequest` to hand to the
orchestrator, or a :class:`RequestValidationError` whose
:meth:`~RequestValidationError.to_json` is the response body;
:func:`parse_control_update` and :func:`parse_review_decision` do the same for
``PATCH /api/batches/{id}`` and ``.../approve`` / ``.../reject``. Validation
happens here, up front, because a bad value found later (inside an activity,
after fan-out) costs a whole batch of failed work items instead of one 400.

Where things are:

* :mod:`.prechecks`: size (413), Content-Type, UTF-8/BOM, duplicate keys,
  ``NaN``/``Infinity``, "must be an object";
* :mod:`.rules`: **the** declaration of the bodies (types, ranges, enums,
  patterns, required and unknown fields, defaults), which ``openapi.yaml``'s
  request schemas are generated from (``python -m scripts.openapi``);
* :mod:`.crossfield`: the rules over several fields; :mod:`.schema`: the
  declaration's building blocks; :mod:`.errors`: the 400 shape.

Decisions worth knowing when calling the API:

* Every error is collected (not just the first), each with a JSON path
  (``renditions[1].width``), in document order (an object's unknown fields
  first); the response lists at most :data:`MAX_REPORTED_ERRORS` of them and
  the message gives the full count.
* ``null`` for an optional field means "not given" (use the default);
  for a required field it is reported as missing.
* Integer fields accept only JSON integers: ``10.0``, ``true`` and ``"10"``
  are refused. ``tolerated_failure_percent`` accepts any finite number.
* ``fit: "cover"`` without a ``height`` is an error (there is no box to fill).
* Duplicate names in ``source.blobs`` are errors, not silently de-duplicated:
  they usually reveal a client bug, and the batch's ``total`` should equal the
  list the client sent. Explicit blobs must have an image extension and must
  give valid output names (length, segment count).
* A non-empty ``output.prefix`` must end with ``/``. Same source and output
  container: ``output.prefix`` must be non-empty, ``source.prefix`` must not
  start with it and no explicit blob may lie under it; an output prefix
  *inside* the listed source prefix is allowed (ListImages skips those names).
"""

from __future__ import annotations

from typing import Any

from imagebatch.batch_request.errors import ERROR_CODES, MAX_REPORTED_ERRORS, Errors, FieldError, RequestValidationError
from imagebatch.batch_request.prechecks import MAX_BODY_BYTES, json_body
from imagebatch.batch_request.rules import (
    BATCH_REQUEST,
    CONTROL_UPDATE,
    DEFAULT_FORMAT,
    DEFAULT_MAX_CONCURRENCY,
    MAX_CONCURRENCY,
    MAX_EXPLICIT_BLOBS,
    MAX_REASON_LENGTH,
    MAX_RENDITIONS,
    MIN_CONCURRENCY,
    RENDITION_NAME_PATTERN,
    REVIEW_DECISION,
)
from imagebatch.batch_request.schema import Object
from imagebatch.specs import BatchRequest, RenderSpec, Rendition, ReviewSpec

__all__ = [
    "DEFAULT_FORMAT",
    "DEFAULT_MAX_CONCURRENCY",
    "ERROR_CODES",
    "MAX_BODY_BYTES",
    "MAX_CONCURRENCY",
    "MAX_EXPLICIT_BLOBS",
    "MAX_REASON_LENGTH",
    "MAX_RENDITIONS",
    "MAX_REPORTED_ERRORS",
    "MIN_CONCURRENCY",
    "RENDITION_NAME_PATTERN",
    "FieldError",
    "RequestValidationError",
    "parse_batch_request",
    "parse_control_update",
    "parse_review_decision",
]


def _validate(root: Object, body: bytes, content_type: str | None) -> dict[str, Any]:
    """The pre-checks, then every rule of ``root``; all errors raised together."""
    data = json_body(body, content_type)
    errors = Errors()
    accepted: dict[str, Any] = root.validate(data, "", errors)
    if errors.items:
        raise RequestValidationError(errors.items)
    return accepted


def parse_batch_request(body: bytes, content_type: str | None = None) -> BatchRequest:
    """Validate a ``POST /api/batches`` body; raise :class:`RequestValidationError`."""
    fields = _validate(BATCH_REQUEST, body, content_type)
    source, output, review = fields["source"], fields["output"], fields["review"]
    return BatchRequest(
        source_container=source["container"],
        source_prefix=source["prefix"],
        source_blobs=source["blobs"],
        output_container=output["container"],
        output_prefix=output["prefix"],
        spec=RenderSpec(
            renditions=tuple(Rendition(**r) for r in fields["renditions"]),
            format=fields["format"],
            quality=fields["quality"],
        ),
        max_concurrency=fields["max_concurrency"],
        tolerated_failure_percent=fields["tolerated_failure_percent"],
        batch_id=fields["batch_id"],
        deadline_minutes=fields["deadline_minutes"],
        review=None if review is None else ReviewSpec(**review),
    )


def parse_control_update(body: bytes, content_type: str | None = None) -> int:
    """Validate a ``PATCH /api/batches/{id}`` body (``{"max_concurrency": M}``);
    returns M or raises :class:`RequestValidationError` (same shapes as a start)."""
    concurrency: int = _validate(CONTROL_UPDATE, body, content_type)["max_concurrency"]
    return concurrency


def parse_review_decision(body: bytes, content_type: str | None = None) -> str | None:
    """Validate a ``POST /api/batches/{id}/approve`` or ``/reject`` body: empty, or
    ``{"reason": "..."}``; returns the reason (None when not given)."""
    if not body.strip():
        return None
    reason: str | None = _validate(REVIEW_DECISION, body, content_type)["reason"]
    return reason
