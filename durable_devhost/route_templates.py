"""ASP.NET Core route templates, as the Functions host matches HTTP trigger routes.

Routes are relative to ``routePrefix`` (``api`` by default): literals match
case-insensitively, ``{name}``, ``{name?}`` (optional, only useful at the end),
``{name=default}``, ``{*rest}`` (catch-all) and the inline constraints ``int long bool
guid alpha datetime decimal double float min max range length minlength maxlength
regex(...)``. ``{{``/``}}`` are literal braces. A value failing its constraint makes the
route not match (404), as in ASP.NET. More specific templates sort first
(:attr:`RouteTemplate.precedence`: literal segment > constrained parameter > parameter >
optional > catch-all).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote

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
