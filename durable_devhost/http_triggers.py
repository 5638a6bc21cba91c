"""HTTP-triggered functions: trigger description, request building, invocation, response.

Copies what the Functions host (ASP.NET Core routing) and the Python worker do for an
``httpTrigger`` function:

* Routes are ASP.NET Core route templates (:mod:`.route_templates`).
* More specific templates win (literal segment > constrained parameter > parameter >
  optional > catch-all), then registration order. A method outside ``methods`` also
  means "no match", so the host answers 404.
* The request becomes a real ``func.HttpRequest`` (query/headers with repeated keys
  joined by ``,`` like ``StringValues.ToString()``); route values are URL-decoded.
* The return value is encoded like ``azure.functions.http.HttpResponseConverter``: a
  ``func.HttpResponse`` keeps status, headers and body (``content-type`` defaults to
  ``mimetype; charset=...`` for ``text/*``), a ``str`` becomes a 200 ``text/plain`` body,
  anything else makes the worker raise ``TypeError: unable to encode outgoing TypedData``
  so the invocation fails and the host answers 500 with an empty body.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import azure.functions as func
from multidict import MultiMapping

from .route_templates import RouteTemplate

__all__ = ["AUTH_LEVELS", "HttpTrigger", "RouteTemplate", "build_request", "invoke_http_function", "sort_triggers"]

log = logging.getLogger("durable_devhost.http")

# ---------------------------------------------------------------------------
# trigger description
# ---------------------------------------------------------------------------

AUTH_LEVELS = ("anonymous", "function", "admin")


@dataclass
class HttpTrigger:
    """What the host needs to serve one HTTP-triggered function."""

    name: str
    route: RouteTemplate
    methods: frozenset[str] | None  # None = any method
    auth_level: str  # anonymous | function | admin
    trigger_param: str
    user_function: Callable[..., Any]
    is_async: bool
    bindings: list[dict]

    @classmethod
    def from_function(
        cls, name: str, trigger_param: str, user_function: Callable[..., Any], is_async: bool, bindings: list[dict]
    ) -> HttpTrigger:
        trig = next(b for b in bindings if b.get("type") == "httpTrigger")
        methods = trig.get("methods")
        level = str(trig.get("authLevel") or "function").lower()
        if level not in AUTH_LEVELS:
            level = "function"
        return cls(
            name=name,
            route=RouteTemplate(trig.get("route") or name),
            methods=frozenset(str(m).upper() for m in methods) if methods else None,
            auth_level=level,
            trigger_param=trigger_param,
            user_function=user_function,
            is_async=is_async,
            bindings=bindings,
        )

    def allows(self, method: str) -> bool:
        return self.methods is None or method.upper() in self.methods

    @property
    def durable_client_bindings(self) -> list[dict]:
        return [b for b in self.bindings if b.get("type") == "durableClient"]


def sort_triggers(triggers: list[HttpTrigger]) -> list[HttpTrigger]:
    """Most specific route first (stable for equal precedence)."""
    return sorted(triggers, key=lambda t: t.route.precedence)


# ---------------------------------------------------------------------------
# invocation
# ---------------------------------------------------------------------------


@dataclass
class InvocationContext:
    """Stand-in for ``azure.functions.Context`` (what the worker passes as ``context``).

    The Durable client middleware only reads ``invocation_id``; the rest is there for
    user code that logs it.
    """

    invocation_id: str
    function_name: str
    function_directory: str = ""
    trace_context: Any = None
    retry_context: Any = None
    thread_local_storage: Any = None


class OutBinding:
    """Stand-in for ``func.Out[T]`` for output bindings the dev host does not implement."""

    def __init__(self) -> None:
        self._value: Any = None

    def set(self, val: Any) -> None:
        self._value = val

    def get(self) -> Any:
        return self._value


@dataclass
class HttpResult:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _join(values: MultiMapping[str] | Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    getall = getattr(values, "getall", None)
    for key in dict.fromkeys(values.keys()):
        vals = getall(key) if getall else [values[key]]
        out[key] = ",".join(vals)
    return out


def build_request(
    method: str, url: str, headers: MultiMapping[str], query: MultiMapping[str], route_params: dict, body: bytes
) -> func.HttpRequest:
    """A real ``func.HttpRequest`` as the worker builds it from the host's RpcHttp."""
    return func.HttpRequest(
        method=method.upper(),
        url=url,
        headers=_join(headers),
        params=_join(query),
        route_params=dict(route_params),
        body=body,
    )


def encode_response(value: Any) -> HttpResult:
    """Encode a return value like ``HttpResponseConverter.encode`` + the host."""
    if isinstance(value, func.HttpResponse):
        headers = value.headers
        if "content-type" not in headers:
            mt = value.mimetype or "text/plain"
            headers["content-type"] = f"{mt}; charset={value.charset}" if mt.startswith("text/") else mt
        body = value.get_body() or b""
        # werkzeug Headers: items() keeps repeated names (several Set-Cookie).
        pairs = [(str(k), str(v)) for k, v in headers.items()]
        return HttpResult(int(value.status_code), pairs, body)
    if isinstance(value, str):
        return HttpResult(200, [("Content-Type", "text/plain; charset=utf-8")], value.encode("utf-8"))
    raise TypeError(
        f'unable to encode outgoing TypedData: unsupported type "http" for Python type "{type(value).__name__}"'
    )


async def invoke_http_function(
    trigger: HttpTrigger,
    request: func.HttpRequest,
    client_binding: Callable[[dict], str],
    *,
    invocation_id: str | None = None,
) -> HttpResult:
    """Invoke the user function as the worker does and encode its HTTP response.

    ``client_binding(binding_dict)`` returns the Durable client JSON for a
    ``durableClient`` binding. Sync functions run in the default thread pool (the
    worker runs them in its sync executor); async ones on the event loop.
    """
    invocation_id = invocation_id or str(uuid.uuid4())
    kwargs: dict[str, Any] = {}
    outs: dict[str, OutBinding] = {}
    binding_names = set()
    for b in trigger.bindings:
        bname = str(b.get("name"))  # every binding the worker indexes has a name
        binding_names.add(bname)
        if bname == "$return":
            continue
        btype, direction = b.get("type"), str(b.get("direction", "IN")).upper()
        if btype == "httpTrigger":
            kwargs[bname] = request
        elif btype == "durableClient":
            kwargs[bname] = client_binding(b)
        elif direction == "OUT":
            outs[bname] = kwargs[bname] = OutBinding()
        else:
            kwargs[bname] = None  # unsupported input binding; warned about at start-up
    params: Mapping[str, inspect.Parameter]
    try:
        params = inspect.signature(trigger.user_function).parameters
    except (TypeError, ValueError):
        params = {}
    if "context" in params and "context" not in binding_names:
        kwargs["context"] = InvocationContext(invocation_id=invocation_id, function_name=trigger.name)

    fn = trigger.user_function
    if trigger.is_async or inspect.iscoroutinefunction(fn):
        result = await fn(**kwargs)
    else:
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        result = await loop.run_in_executor(None, functools.partial(ctx.run, fn, **kwargs))
        if inspect.isawaitable(result):
            result = await result

    http_outs = [
        b["name"]
        for b in trigger.bindings
        if b.get("type") == "http" and str(b.get("direction", "")).upper() == "OUT" and b.get("name") != "$return"
    ]
    if http_outs and result is None:
        result = outs[http_outs[0]].get()
    return encode_response(result)
