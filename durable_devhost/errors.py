"""Exceptions raised by the engine's management API.

They mirror the HTTP outcomes of the extension's ``HttpApiHandler`` (azure-functions-durable-extension
src/WebJobs.Extensions.DurableTask/HttpApiHandler.cs): the server maps
UnknownFunctionError -> 400, InstanceExistsError -> 500 (the extension's generic catch of
DTFx's ``OrchestrationAlreadyExistsException``, see :mod:`.management_api`), InstanceNotFoundError
-> 404 and InstanceGoneError -> 410.
"""

from __future__ import annotations


class DevHostError(Exception):
    """Base class of every dev-host error."""


class UnknownFunctionError(DevHostError):
    """The named orchestrator does not exist (message worded exactly as the extension's)."""


class InstanceExistsError(DevHostError):
    """An instance with that id is still Running / Pending / Suspended."""


class InstanceNotFoundError(DevHostError):
    """No instance with that id exists."""


class InstanceGoneError(DevHostError):
    """The instance already finished (Completed, Failed, Terminated, Canceled)."""
