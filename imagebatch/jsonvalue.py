"""Decoding JSON that may have been encoded twice (a fact of the Durable Python SDK).

Kept dependency-free so orchestrators can use it without importing anything heavy.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def json_object(raw: Any) -> dict[str, Any]:
    """A JSON object that may arrive encoded once or twice (``{}`` if it is none):
    the SDK's ``start_new`` and ``raise_event`` encode their data twice, so a
    status input or an event payload can be JSON text of JSON text, while curl
    and the management API encode once."""
    value = raw
    for _ in range(3):
        if not isinstance(value, str):
            break
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return dict(value) if isinstance(value, Mapping) else {}
