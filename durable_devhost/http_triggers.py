"""HTTP-triggered functions: route templates, request building, invocation, response.

Copies what the Functions host (ASP.NET Core routing) and the Python worker do for an
``httpTrigger`` function:

* Routes are ASP.NET Core route templates relative to ``routePrefix`` (``api`` by
  default): literals match case-insensitively, ``{name}``, ``{name?}`` (optional, only
  useful at the end), ``{name=default}``, ``{*rest}`` (catch-all) and the inline
  constraints ``int long bool guid alpha datetime decimal double float min max range
  length minlength maxlength regex(...)``. ``{{``/``}}`` are literal braces. A value
  failing its constraint makes the route not match (404), as in ASP.NET.
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
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import azure.functions as func
from multidict import MultiMapping

log = logging.getLogger("durable_devhost.http")

# ---------------------------------------------------------------------------
# route templates
# ---------------------------------------------------------------------------

_GUID = re.compile(r"^[({]?[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}[)}]?$")
_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _int_in(value: str, bits: int) -> bool:
    if not _INT.match(value):
        return False
    n = int(value)
    return -(2 ** (bits - 1)) <= n < 2 ** (bits - 1)


def _is_datetime(value: str) -> bool:
    from datetime import datetime

    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _constraint(spec: str) -> Callable[[str], bool]:
    """One inline constraint (``Microsoft.AspNetCore.Routing.Constraints``)."""
    m = re.fullmatch(r"(\w+)(?:\((.*)\))?", spec, flags=re.S)
    if not m:
        raise ValueError(f"invalid route constraint {spec!r}")
    name, arg = m.group(1).lower(), m.group(2)
    args = [a.strip() for a in arg.split(",")] if arg is not None and name != "regex" else []
    simple: dict[str, Callable[[str], bool]] = {
        "int": lambda v: _int_in(v, 32),
        "long": lambda v: _int_in(v, 64),
        "bool": lambda v: v.lower() in ("true", "false"),
        "guid": lambda v: bool(_GUID.match(v)),
        "alpha": lambda v: bool(re.fullmatch(r"[a-zA-Z]+", v)),
        "datetime": _is_datetime,
        "decimal": lambda v: bool(_FLOAT.match(v)),
        "double": lambda v: bool(_FLOAT.match(v)),
        "float": lambda v: bool(_FLOAT.match(v)),
    }
    if name in simple:
        return simple[name]
    if name == "regex":
        # RegexRouteConstraint: CultureInvariant | IgnoreCase, IsMatch (not anchored).
        rx = re.compile(arg or "", re.IGNORECASE)
        return lambda v: bool(rx.search(v))
    if name in ("min", "max"):
        bound = int(args[0])
        if name == "min":
            return lambda v: _int_in(v, 64) and int(v) >= bound
        return lambda v: _int_in(v, 64) and int(v) <= bound
    if name == "range":
        lo, hi = int(args[0]), int(args[1])
        return lambda v: _int_in(v, 64) and lo <= int(v) <= hi
    if name == "length":
        if len(args) == 1:
            n = int(args[0])
            return lambda v: len(v) == n
        lo, hi = int(args[0]), int(args[1])
        return lambda v: lo <= len(v) <= hi
    if name == "minlength":
        n = int(args[0])
        return lambda v: len(v) >= n
    if name == "maxlength":
        n = int(args[0])
        return lambda v: len(v) <= n
    raise ValueError(f"unsupported route constraint {spec!r}")


@dataclass
class _Param:
    name: str
    optional: bool = False
    catch_all: bool = False
    default: str | None = None
    constraints: list[Callable[[str], bool]] = field(default_factory=list)


def _split_constraints(body: str) -> list[str]:
    """Split ``name:int:regex(a:b)`` on ``:`` outside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in body:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == ":" and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


def _parse_param(body: str) -> _Param:
    """``*name``, ``name?``, ``name=default``, ``name:c1:c2(arg)`` (ASP.NET Core syntax)."""
    catch_all = body.startswith("*")
    body = body.lstrip("*")
    optional = body.endswith("?")
    if optional:
        body = body[:-1]
    parts = _split_constraints(body)
    default = None
    last = parts[-1]
    if "=" in last and (len(parts) == 1 or last.rfind("=") > last.rfind(")")):
        parts[-1], default = last.rsplit("=", 1) if len(parts) > 1 else last.split("=", 1)
    return _Param(
        name=parts[0].strip(),
        optional=optional or catch_all,
        catch_all=catch_all,
        default=default,
        constraints=[_constraint(s) for s in parts[1:] if s],
    )


def _tokenize(segment: str) -> list[str | _Param]:
    """A segment -> literal strings and parameters; ``{{``/``}}`` are literal braces."""
    out: list[str | _Param] = []
    lit, i = "", 0
    while i < len(segment):
        ch = segment[i]
        if ch == "{" and segment[i : i + 2] == "{{":
            lit += "{"
            i += 2
        elif ch == "}" and segment[i : i + 2] == "}}":
            lit += "}"
            i += 2
        elif ch == "{":
            j, body = i + 1, ""
            while j < len(segment):
                if segment[j] in "{}" and segment[j : j + 2] in ("{{", "}}"):
                    body += segment[j]
                    j += 2
                elif segment[j] == "}":
                    break
                else:
                    body += segment[j]
                    j += 1
            if j >= len(segment):
                raise ValueError(f"unterminated parameter in route segment {segment!r}")
            if lit:
                out.append(lit)
                lit = ""
            out.append(_parse_param(body))
            i = j + 1
        else:
            lit += ch
            i += 1
    if lit:
        out.append(lit)
    return out


class RouteTemplate:
    """A compiled ASP.NET Core route template (relative, no route prefix)."""

    def __init__(self, template: str) -> None:
        self.template = template.strip("/")
        self.params: list[_Param] = []
        pattern = ""
        rank: list[int] = []
        segments = self.template.split("/") if self.template else []
        for idx, seg in enumerate(segments):
            tokens = _tokenize(seg)
            sep = "/" if idx else ""
            if len(tokens) == 1 and isinstance(tokens[0], _Param):
                p = tokens[0]
                self.params.append(p)
                group = f"(?P<p{len(self.params) - 1}>{'.*' if p.catch_all else '[^/]+'})"
                if p.optional or p.default is not None:
                    pattern += f"(?:{sep}{group})?"
                else:
                    pattern += sep + group
                rank.append(5 if p.catch_all else 4 if p.optional else 2 if p.constraints else 3)
                continue
            part = ""
            for t in tokens:
                if isinstance(t, str):
                    part += re.escape(t)
                else:
                    self.params.append(t)
                    group = f"(?P<p{len(self.params) - 1}>{'.*' if t.catch_all else '[^/]+?'})"
                    part += f"(?:{group})?" if t.optional else group
            pattern += sep + part
            rank.append(1 if all(isinstance(t, str) for t in tokens) else 2)
        self._regex = re.compile(f"^{pattern}/?$", re.IGNORECASE)
        # Lower sorts first: literal segments before parameters, longer templates first.
        self.precedence = (tuple(rank), -len(segments))

    def match(self, path: str) -> dict[str, str] | None:
        """Route values for ``path`` (relative to the prefix), or None."""
        m = self._regex.match(path.strip("/") if path != "/" else "")
        if not m:
            return None
        values: dict[str, str] = {}
        for i, p in enumerate(self.params):
            raw = m.group(f"p{i}")
            if raw is None or raw == "":
                if p.default is not None:
                    values[p.name] = p.default
                elif not p.optional:
                    return None
                continue
            value = unquote(raw)
            if not all(check(value) for check in p.constraints):
                return None
            values[p.name] = value
        return values

    def display(self, route_prefix: str) -> str:
        """The template as ``func start`` prints it (``api/orchestrators/{functionName}``)."""
        prefix = route_prefix.strip("/")
        return f"{prefix}/{self.template}" if prefix else self.template


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
        'unable to encode outgoing TypedData: unsupported type "http" '
        f'for Python type "{type(value).__name__}"'
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
        bname = b.get("name")
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
