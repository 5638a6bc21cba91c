"""Host settings from ``host.json`` and ``local.settings.json``, read the way ``func start`` does.

``local.settings.json`` ``Values`` become environment variables without overriding variables
that are already set (Core Tools behaviour), so CI can still override app settings.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    text = path.read_text(encoding="utf-8-sig")
    data = json.loads(text) if text.strip() else {}
    return data if isinstance(data, dict) else {}


@dataclass
class HostSettings:
    hub_name: str = "TestHubName"
    max_concurrent_activities: int = 10
    max_concurrent_orchestrations: int = 10
    local_http_port: int | None = None
    values: dict[str, str] = field(default_factory=dict)
    applied: list[str] = field(default_factory=list)   # env vars this load actually set

    @classmethod
    def load(cls, app_dir: str | os.PathLike[str], *, apply_env: bool = True) -> HostSettings:
        root = Path(app_dir)
        host = _read_json(root / "host.json")
        local = _read_json(root / "local.settings.json")
        durable = (host.get("extensions") or {}).get("durableTask") or {}
        settings = cls(
            hub_name=str(durable.get("hubName") or "TestHubName"),
            max_concurrent_activities=int(durable.get("maxConcurrentActivityFunctions") or 10),
            max_concurrent_orchestrations=int(durable.get("maxConcurrentOrchestratorFunctions") or 10),
        )
        port = (local.get("Host") or {}).get("LocalHttpPort")
        if port is not None:
            settings.local_http_port = int(port)
        values = local.get("Values") or {}
        settings.values = {str(k): "" if v is None else str(v) for k, v in values.items()}
        if apply_env:
            for key, value in settings.values.items():
                if key not in os.environ:
                    os.environ[key] = value
                    settings.applied.append(key)
        return settings
