"""Index of an app's functions, built the way the Python worker indexes a v2 app
(azure-functions-python-worker azure_functions_worker/loader.py ``index_function_app``).

``app.get_functions()`` may be called only once per app object (a second call raises
"does not have a unique function name"), so the index calls it exactly once and keeps the result.
Lookups are case-insensitive, like the extension's ``FunctionName`` comparisons.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import azure.functions as func

Kind = Literal["orchestrator", "activity", "entity", "http", "timer", "other"]

_TRIGGER_KINDS: dict[str, Kind] = {
    "orchestrationTrigger": "orchestrator",
    "activityTrigger": "activity",
    "entityTrigger": "entity",
    "httpTrigger": "http",
    "timerTrigger": "timer",
}


@dataclass
class IndexedFunction:
    name: str
    kind: Kind
    trigger_param: str
    user_function: Callable[..., Any]
    is_async: bool
    bindings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def unsupported_bindings(self) -> list[dict[str, Any]]:
        """Bindings of an orchestrator/activity besides its trigger: the dev host cannot honour them
        (the Functions host would fill an input binding or write an output binding such as a blob or queue)."""
        if self.kind not in ("orchestrator", "activity", "entity"):
            return []
        return [b for b in self.bindings if b.get("name") != self.trigger_param]

    @property
    def wants_context(self) -> bool:
        """A parameter literally named ``context`` that is not a binding gets the worker's Context."""
        names = {b.get("name") for b in self.bindings}
        if "context" in names:
            return False
        try:
            params = inspect.signature(self.user_function).parameters
        except (TypeError, ValueError):
            return False
        return "context" in params


class FunctionIndex:
    def __init__(self, functions: dict[str, IndexedFunction], app_path: str | None = None) -> None:
        self.app_path = app_path
        self.functions = functions
        self._by_lower = {name.lower(): f for name, f in functions.items()}

    @classmethod
    def from_app(cls, app: Any, app_path: str | None = None) -> FunctionIndex:
        functions: dict[str, IndexedFunction] = {}
        for f in app.get_functions():  # once only: the SDK's name validation is stateful
            trigger = f.get_trigger()
            binding_type = trigger.get_binding_name() if trigger is not None else ""
            user_fn = f.get_user_function()
            bindings = json.loads(f.get_function_json()).get("bindings", [])
            functions[f.get_function_name()] = IndexedFunction(
                name=f.get_function_name(),
                kind=_TRIGGER_KINDS.get(binding_type, "other"),
                trigger_param=trigger.name if trigger is not None else "",
                user_function=user_fn,
                is_async=inspect.iscoroutinefunction(user_fn),
                bindings=bindings,
            )
        return cls(functions, app_path)

    @classmethod
    def load(cls, app_path: str) -> FunctionIndex:
        """Import ``app_path`` as module ``function_app`` (like the worker) and index its app."""
        path = os.path.abspath(app_path)
        module = import_app_module(path)
        registers = [v for v in vars(module).values() if isinstance(v, func.FunctionRegister)]
        if len(registers) != 1:
            raise ValueError(f"{path}: expected exactly one FunctionApp/DFApp at module level, found {len(registers)}")
        return cls.from_app(registers[0], path)

    def get(self, name: str) -> IndexedFunction | None:
        return self._by_lower.get(name.lower())

    def _of_kind(self, name: str, kind: Kind) -> IndexedFunction | None:
        f = self.get(name)
        return f if f is not None and f.kind == kind else None

    def orchestrator(self, name: str) -> IndexedFunction | None:
        return self._of_kind(name, "orchestrator")

    def activity(self, name: str) -> IndexedFunction | None:
        return self._of_kind(name, "activity")

    def entity(self, name: str) -> IndexedFunction | None:
        return self._of_kind(name, "entity")

    def names(self, kind: Kind) -> list[str]:
        return [n for n, f in self.functions.items() if f.kind == kind]


def import_app_module(path: str, module_name: str = "function_app") -> Any:
    """Import a file as ``function_app`` with its directory on ``sys.path`` (worker behaviour)."""
    directory = os.path.dirname(path)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # df_loads resolves custom classes through sys.modules
    spec.loader.exec_module(module)
    return module
