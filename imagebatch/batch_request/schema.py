"""A small declarative schema: each node both validates a JSON value and
describes itself as an OpenAPI 3.0.3 schema.

The request rules are declared once, with these nodes, in
:mod:`imagebatch.batch_request.rules`; the server validates with them and
``openapi.yaml``'s request schemas are generated from them
(``python -m scripts.openapi``). Why not pydantic, msgspec or a JSON-Schema
library: docs/design.md, section 9 (measured in docs/benchmarks.md).

What a node promises when validating:

* every problem is added to the :class:`~imagebatch.batch_request.errors.Errors`
  list with its JSON path (``renditions[1].width``), in document order, and
  validation goes on (all errors at once);
* the result is the accepted value (integers stay ``int``, numbers become
  ``float``, arrays become tuples, objects become dicts with every declared
  field, ``None`` for absent or invalid ones), or :data:`INVALID`;
* ``null`` for an optional field means "not given" (its default, if any, is
  validated and used); for a required field it is reported as missing;
* messages read ``"must ..., got <the value received>"``.

Rules a schema cannot express (one field against another) are plain functions
attached to an :class:`Object` as ``rules``; a :class:`String` may carry
``checks`` (the :mod:`imagebatch.naming` rules, shared with ListImages) that run
before its declared length and pattern, so the server gives their precise
messages while the pattern documents the same rule for clients.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from imagebatch.batch_request.errors import Errors, got, printable


class _Invalid:
    def __repr__(self) -> str:
        return "INVALID"


INVALID: Any = _Invalid()
"""What a node returns for a value it refused (its errors are already added)."""

Check = Callable[[str], "str | None"]
"""A naming-style rule: ``None`` when fine, else a message such as ``"must not contain '..'"``."""
Components = dict[str, dict[str, Any]]


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


@dataclass(frozen=True)
class Int:
    """A JSON integer in [low, high]; ``bool`` and floats (even ``10.0``) are refused."""

    low: int
    high: int

    def validate(self, value: object, path: str, errors: Errors) -> Any:
        if type(value) is int and self.low <= value <= self.high:
            return value
        errors.add(path, f"must be an integer between {self.low} and {self.high}, got {got(value)}")
        return INVALID

    def schema(self, components: Components) -> dict[str, Any]:
        return {"type": "integer", "minimum": self.low, "maximum": self.high}


@dataclass(frozen=True)
class Number:
    """Any finite JSON number in [low, high], as a float; ``1e400`` parses as inf and fails the range."""

    low: int
    high: int

    def validate(self, value: object, path: str, errors: Errors) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool) and self.low <= value <= self.high:
            return float(value)
        errors.add(path, f"must be a number between {self.low} and {self.high}, got {got(value)}")
        return INVALID

    def schema(self, components: Components) -> dict[str, Any]:
        return {"type": "number", "minimum": self.low, "maximum": self.high}


@dataclass(frozen=True)
class Enum:
    """One of a few strings."""

    choices: tuple[str, ...]

    def validate(self, value: object, path: str, errors: Errors) -> Any:
        if isinstance(value, str) and value in self.choices:
            return value
        allowed = ", ".join(f'"{c}"' for c in self.choices)
        errors.add(path, f"must be one of {allowed}, got {got(value)}")
        return INVALID

    def schema(self, components: Components) -> dict[str, Any]:
        return {"type": "string", "enum": list(self.choices)}


@dataclass(frozen=True)
class String:
    """A string: ``checks`` first (each may give its own message), then the
    declared length and ``pattern`` (anchored, ECMA-262 compatible, matched in
    full). ``message`` replaces the generic message for every failure but the
    ``checks``'. A ``name`` makes it a shared component (``$ref``)."""

    min_length: int = 0
    max_length: int | None = None
    pattern: str | None = None
    checks: tuple[Check, ...] = ()
    message: str | None = None
    name: str | None = None
    doc: str | None = None

    @cached_property
    def _regex(self) -> re.Pattern[str] | None:
        return None if self.pattern is None else re.compile(self.pattern)

    def validate(self, value: object, path: str, errors: Errors) -> Any:
        if not isinstance(value, str):
            errors.add(path, f"{self.message or 'must be a string'}, got {got(value)}")
            return INVALID
        for check in self.checks:
            message = check(value)
            if message:
                errors.add(path, message if ", got " in message else f"{message}, got {got(value)}")
                return INVALID
        too_long = self.max_length is not None and len(value) > self.max_length
        if len(value) < self.min_length or too_long or (self._regex and not self._regex.fullmatch(value)):
            errors.add(path, f"{self.message or self._describe()}, got {got(value)}")
            return INVALID
        return value

    def _describe(self) -> str:
        return f"must be {self.min_length} to {self.max_length} characters matching {self.pattern}"

    def schema(self, components: Components) -> dict[str, Any]:
        node: dict[str, Any] = {"type": "string"}
        if self.min_length:
            node["minLength"] = self.min_length
        if self.max_length is not None:
            node["maxLength"] = self.max_length
        if self.pattern is not None:
            node["pattern"] = self.pattern
        if self.doc:
            node["description"] = self.doc
        if self.name is None:
            return node
        components[self.name] = node
        return _ref(self.name)


@dataclass(frozen=True)
class Array:
    """A JSON array of ``min_items`` to ``max_items`` ``items``, as a tuple.

    ``unique`` (scalar items): a valid item equal to an earlier one is an error at
    the later item; ``unique_key``: the same for object items' field of that name (when
    that field is valid). ``noun`` names the items in the type error."""

    items: Node
    min_items: int
    max_items: int
    noun: str
    unique: bool = False
    unique_key: str | None = None

    def validate(self, value: object, path: str, errors: Errors) -> Any:
        if not isinstance(value, list):
            errors.add(path, f"must be an array of {self.noun}, got {got(value)}")
            return INVALID
        before = errors.count()
        if not self.min_items <= len(value) <= self.max_items:
            errors.add(path, f"must have {self.min_items} to {self.max_items} items, got {len(value)}")
        result: list[Any] = []
        first_index: dict[Any, int] = {}
        for index, item in enumerate(value):
            item_path = f"{path}[{index}]"
            accepted = self.items.validate(item, item_path, errors)
            result.append(accepted)
            if self.unique and accepted is not INVALID:
                first = first_index.setdefault(accepted, index)
                if first != index:
                    errors.add(item_path, f"duplicate of {path}[{first}]")
            elif self.unique_key is not None:
                key = self._valid_key(item)
                first = index if key is None else first_index.setdefault(key, index)
                if first != index:
                    errors.add(join(item_path, self.unique_key), f"duplicate of {path}[{first}].{self.unique_key}")
        return tuple(result) if errors.count() == before else INVALID

    def _valid_key(self, item: object) -> Any:
        if not isinstance(item, dict) or not isinstance(self.items, Object) or self.unique_key is None:
            return None
        raw = item.get(self.unique_key)
        if raw is None:
            return None
        accepted = self.items.get(self.unique_key).node.validate(raw, "", Errors())
        return None if accepted is INVALID else accepted

    def schema(self, components: Components) -> dict[str, Any]:
        node: dict[str, Any] = {"type": "array", "minItems": self.min_items, "maxItems": self.max_items}
        if self.unique:
            node["uniqueItems"] = True
        node["items"] = self.items.schema(components)
        return node


ObjectRule = Callable[[dict[str, Any], dict[str, Any], str, Errors], None]
"""A rule over several fields: (the object received, the accepted fields, its path, errors)."""


@dataclass(frozen=True)
class Field:
    """One property of an :class:`Object`. ``default`` is a JSON value used when the
    field is absent or ``null`` (validated like a given value); ``doc`` describes it."""

    name: str
    node: Node
    required: bool = False
    default: Any = None
    doc: str | None = None


@dataclass(frozen=True)
class Object:
    """A JSON object with exactly the declared ``fields`` (unknown keys are errors,
    reported first). ``exactly_one``: of these fields exactly one must be given
    (checked just before the first of them). ``rules`` run after the fields."""

    fields: tuple[Field, ...]
    name: str | None = None
    doc: str | None = None
    exactly_one: tuple[str, ...] = ()
    rules: tuple[ObjectRule, ...] = field(default=(), compare=False)

    def get(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    @cached_property
    def _names(self) -> frozenset[str]:
        return frozenset(f.name for f in self.fields)

    def validate(self, value: object, path: str, errors: Errors) -> Any:
        if not isinstance(value, dict):
            errors.add(path, f"must be an object, got {got(value)}")
            return INVALID
        for key in value:
            if key not in self._names:
                errors.add(join(path, printable(key if len(key) <= 60 else key[:57] + "...")), "unknown field")
        result: dict[str, Any] = {}
        for item in self.fields:
            if self.exactly_one and item.name == self.exactly_one[0]:
                self._check_exactly_one(value, path, errors)
            raw = value.get(item.name)
            if raw is None and item.required:
                errors.add(join(path, item.name), "is required")
            if raw is None:
                raw = item.default
            accepted = None if raw is None else item.node.validate(raw, join(path, item.name), errors)
            result[item.name] = None if accepted is INVALID else accepted
        for rule in self.rules:
            rule(value, result, path, errors)
        return result

    def _check_exactly_one(self, value: dict[str, Any], path: str, errors: Errors) -> None:
        given = [name for name in self.exactly_one if value.get(name) is not None]
        if len(given) != 1:
            names = " and ".join(f"'{name}'" for name in self.exactly_one)
            errors.add(path, f"must have exactly one of {names}, got {'neither' if not given else 'both'}")

    def schema(self, components: Components) -> dict[str, Any]:
        node: dict[str, Any] = {"type": "object", "additionalProperties": False}
        required = [f.name for f in self.fields if f.required]
        if required:
            node["required"] = required
        if self.doc:
            node["description"] = self.doc
        node["properties"] = {f.name: property_schema(f, components) for f in self.fields}
        if self.exactly_one:
            node["oneOf"] = [{"required": [name]} for name in self.exactly_one]
        if self.name is None:
            return node
        components[self.name] = node
        return _ref(self.name)


Node = Int | Number | Enum | String | Array | Object


def property_schema(item: Field, components: Components) -> dict[str, Any]:
    """The OpenAPI schema of one property. OpenAPI 3.0.3 has no ``null`` type: an
    optional field is ``nullable`` (an enum lists ``null`` too), and since a
    ``$ref`` cannot carry ``nullable``, an optional named string is inlined and an
    optional named object's component is marked nullable."""
    node = item.node.schema(components)
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[1]
        if item.required:
            return node
        if isinstance(item.node, Object):
            components[name] = {"type": "object", "nullable": True, **components[name]}
            return node
        node = dict(components[name])
    schema: dict[str, Any] = {"type": node.pop("type")}
    if not item.required:
        schema["nullable"] = True
        if "enum" in node:
            node["enum"] = [*node["enum"], None]
    schema.update(node)
    if item.default is not None:
        schema["default"] = item.default
    if item.doc:
        schema["description"] = item.doc
    return schema


def request_schemas(roots: Sequence[Object]) -> Components:
    """The components of ``roots`` and every named node inside them."""
    components: Components = {}
    for root in roots:
        root.schema(components)
    return components
