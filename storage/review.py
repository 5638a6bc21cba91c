"""Storage side of a proof's review: the run's one decision, first writer wins.

``POST .../approve`` and ``.../reject`` record the decision here *before* they raise
the ``review-decision`` event; the orchestrator, when its timeout fires, records the
timeout's decision here too (``RecordReviewDecision``) and applies whatever this
returns. Creating the blob with ``If-None-Match: *`` (``overwrite=False``) makes the
first decision the only one: a second request, or a timeout racing a person, reads
the decision that won instead of replacing it, so the HTTP answer (``202`` or ``409``)
and what the run does always agree (docs/design.md, section 6c).
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import ContentSettings

from storage.clients import BlobService

_JSON = ContentSettings(content_type="application/json", cache_control="no-cache")


def record_decision(service: BlobService, container: str, blob: str, decision: dict[str, Any]) -> dict[str, Any]:
    """Record ``decision`` unless one is recorded already; returns the decision that stands.

    Idempotent: Durable may run the activity twice, and a second run returns the
    first run's decision (which is its own)."""
    client = service.get_blob_client(container, blob)
    try:
        try:
            client.upload_blob(json.dumps(decision), overwrite=False, content_settings=_JSON)
        except ResourceNotFoundError:  # the container is gone: create it and try once more
            with contextlib.suppress(ResourceExistsError):
                service.create_container(container)
            client.upload_blob(json.dumps(decision), overwrite=False, content_settings=_JSON)
        return dict(decision)
    except ResourceExistsError:
        existing = read_decision(service, container, blob)
        return existing if existing is not None else dict(decision)


def read_decision(service: BlobService, container: str, blob: str) -> dict[str, Any] | None:
    """The recorded decision, or None when there is none (yet)."""
    try:
        value = json.loads(service.get_blob_client(container, blob).download_blob().readall())
    except ResourceNotFoundError:
        return None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
