"""The host's keys (function, host, master, system) and which one a request presents.

``func start`` checks no keys, so an empty :class:`HostKeys` turns auth off; configured keys follow
the host's rules (see :mod:`.server`, which applies them to each route).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class HostKeys:
    """Function/host/master/system keys. Empty = auth off (``func start`` behaviour)."""

    function: list[str] = field(default_factory=list)
    host: list[str] = field(default_factory=list)
    master: str | None = None
    system: str | None = None

    @classmethod
    def from_config(cls, keys: Mapping[str, Any] | HostKeys | None) -> HostKeys:
        if isinstance(keys, HostKeys):
            return keys
        if not keys:
            return cls()

        def as_list(v: Any) -> list[str]:
            if v is None:
                return []
            return [v] if isinstance(v, str) else [str(x) for x in v]

        made = cls(
            function=as_list(keys.get("function")),
            host=as_list(keys.get("host")),
            master=keys.get("master"),
            system=keys.get("system"),
        )
        if made.enabled:
            made.master = made.master or secrets.token_urlsafe(24)
            made.system = made.system or secrets.token_urlsafe(24)
        return made

    @property
    def enabled(self) -> bool:
        return bool(self.function or self.host or self.master or self.system)

    @staticmethod
    def _matches(given: str | None, candidates: Iterable[str | None]) -> bool:
        if not given:
            return False
        return any(c and hmac.compare_digest(given.encode(), c.encode()) for c in candidates)

    def allows(self, level: str, given: str | None) -> bool:
        """May a caller presenting ``given`` call something at ``level``?"""
        if not self.enabled or level == "anonymous":
            return True
        if level == "admin":
            return self._matches(given, [self.master])
        if level == "system":
            return self._matches(given, [self.system, self.master])
        return self._matches(given, [*self.function, *self.host, self.master])


def presented_key(request: web.Request) -> str | None:
    """The ``x-functions-key`` header if present, else ``code`` from the query: "header takes
    precedence" (Azure/azure-functions-host, ``AuthorizationLevelAttribute.GetAuthorizationResultAsync``),
    so a right header with a wrong ``?code=`` is accepted and a wrong header is not rescued by the query."""
    if "x-functions-key" in request.headers:
        return request.headers["x-functions-key"]
    return request.query.get("code")
