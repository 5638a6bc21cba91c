"""durable_devhost: a local stand-in for the Azure Functions host + Durable Functions extension.

Runs Python v2 Durable apps (``df.DFApp``) with no Azure and no Core Tools.  See docs/devhost.md
(usage, and "How it is built" for the modules).
"""

from .clock import Clock, SkippableClock, SystemClock
from .engine import Engine, EngineOptions
from .errors import (
    DevHostError,
    InstanceExistsError,
    InstanceGoneError,
    InstanceNotFoundError,
    UnknownFunctionError,
)
from .functions import FunctionIndex, IndexedFunction
from .settings import HostSettings
from .store import SqliteStore, Store

__all__ = [
    "Clock",
    "DevHostError",
    "Engine",
    "EngineOptions",
    "FunctionIndex",
    "HostSettings",
    "IndexedFunction",
    "InstanceExistsError",
    "InstanceGoneError",
    "InstanceNotFoundError",
    "SkippableClock",
    "SqliteStore",
    "Store",
    "SystemClock",
    "UnknownFunctionError",
]
