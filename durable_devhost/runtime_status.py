"""An orchestration instance's runtime status, one name for every place that stores or compares it.

A ``StrEnum``: each member *is* its string, so what the SQLite store holds, what the HTTP API
returns (``runtimeStatus``) and what the SDK parses stay the same text as before the enum existed
(``"Running"``, ``"Completed"``...). Members are in DTFx's ``OrchestrationStatus`` value order
(durabletask src/DurableTask.Core/OrchestrationStatus.cs: Running = 0 ... Suspended = 7), so
``ORDERED[n]`` names the integer the history's ``ExecutionCompleted.OrchestrationStatus`` holds.
"""

from __future__ import annotations

from enum import StrEnum


class RuntimeStatus(StrEnum):
    RUNNING = "Running"
    COMPLETED = "Completed"
    CONTINUED_AS_NEW = "ContinuedAsNew"
    FAILED = "Failed"
    CANCELED = "Canceled"
    TERMINATED = "Terminated"
    PENDING = "Pending"
    SUSPENDED = "Suspended"


ORDERED: tuple[RuntimeStatus, ...] = tuple(RuntimeStatus)
TERMINAL_STATUSES: tuple[RuntimeStatus, ...] = (
    RuntimeStatus.COMPLETED,
    RuntimeStatus.FAILED,
    RuntimeStatus.TERMINATED,
    RuntimeStatus.CANCELED,
)
ACTIVE_STATUSES: tuple[RuntimeStatus, ...] = (
    RuntimeStatus.RUNNING,
    RuntimeStatus.PENDING,
    RuntimeStatus.SUSPENDED,
    RuntimeStatus.CONTINUED_AS_NEW,
)
