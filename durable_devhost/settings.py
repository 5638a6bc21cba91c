"""Host settings from ``host.json`` and ``local.settings.json``, read the way ``func start`` does.

``local.settings.json`` ``Values`` become environment variables without overriding variables
that are already set (Core Tools behaviour), so CI can still override app settings.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("durable_devhost")

# host.json extensions.durableTask settings of orchestration versioning (Microsoft Learn, "Orchestration
# versioning in Durable Functions": defaultVersion, versionMatchStrategy, versionFailureStrategy). The dev host
# neither stamps versions on instances nor filters work by version.
VERSIONING_SETTINGS = ("defaultVersion", "versionMatchStrategy", "versionFailureStrategy")


def parse_timespan(text: str | None) -> float | None:
    """host.json ``functionTimeout`` (``[d.]hh:mm:ss[.fff]``) in seconds; None when unset or ``-1`` (unbounded)."""
    if text is None or str(text).strip() in ("", "-1"):
        return None
    value = str(text).strip()
    days = 0
    if "." in value.split(":")[0]:
        day_text, value = value.split(".", 1)
        days = int(day_text)
    hours, minutes, seconds = value.split(":")
    return days * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)


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
    applied: list[str] = field(default_factory=list)  # env vars this load actually set
    function_timeout: str | None = None  # host.json functionTimeout (None: not set)
    warnings: list[str] = field(default_factory=list)  # settings the dev host reads but cannot honour

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
        if host.get("functionTimeout") is not None:
            settings.function_timeout = str(host["functionTimeout"])
        versioning = [k for k in VERSIONING_SETTINGS if durable.get(k) is not None]
        if versioning:
            settings.warnings.append(
                "host.json extensions.durableTask." + ", ".join(versioning) + " set: orchestration versioning is "
                "ignored by the dev host (no version is stamped on instances and none is matched)"
            )
        for message in settings.warnings:
            log.warning("%s", message)
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
