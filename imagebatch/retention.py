"""How long finished orchestration histories are kept (the ``purge_history`` timer).

Why the app purges at all: the Durable task hub keeps every instance's history
(parent, shards, and on the local host every continue-as-new generation) until
someone purges it, so a busy app's history and instance tables only grow.
Microsoft's guidance is to purge finished instances on a schedule; the manifest
and report in blob storage remain the batch's record.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

DEFAULT_RETENTION_DAYS = 7.0
# created_time_from is required by the purge API; nothing of this app is older.
OLDEST = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class HistoryRetention:
    """``HISTORY_RETENTION_DAYS``: a number of days (fractions allowed), ``0`` to
    purge every finished instance at the next run, ``off`` (or a negative number)
    to never purge."""

    days: float | None = DEFAULT_RETENTION_DAYS
    oldest: datetime = OLDEST

    @property
    def enabled(self) -> bool:
        return self.days is not None

    def cutoff(self, now: datetime) -> datetime:
        """Instances created before this moment (and finished) are purged."""
        return now - timedelta(days=self.days or 0.0)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> HistoryRetention:
        env = os.environ if env is None else env
        text = (env.get("HISTORY_RETENTION_DAYS") or "").strip().lower()
        if not text:
            return cls()
        if text in ("off", "never", "none"):
            return cls(days=None)
        try:
            days = float(text)
        except ValueError as error:
            raise ValueError(f"HISTORY_RETENTION_DAYS must be a number of days or 'off', got {text!r}") from error
        return cls(days=None if days < 0 else days)
