"""The one exception the CLI shows to people.

Anything the user can cause (bad URL, unknown batch, invalid request, storage
unreachable) becomes a :class:`CliError`; ``main`` prints its lines to stderr
and exits 2. Tracebacks are for bugs, not for typos.
"""

from __future__ import annotations


class CliError(Exception):
    """A user-facing failure: one line, or one line per problem (field errors)."""

    def __init__(self, message: str, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []

    def lines(self) -> list[str]:
        return [self.message, *self.details]
