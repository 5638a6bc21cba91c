"""The machinery every message shares: ``Message`` (``to_dict``/``from_dict`` and the
schema version), ``Fields`` (typed reads that name the offending field) and
``MessageError``. The rules they follow are in the package docstring
(``imagebatch.messages``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, ClassVar, Literal, Self, TypeVar, get_args

VERSION_KEY = "v"


ImageStatus = Literal["processed", "skipped", "failed", "not_started", "unknown"]


BatchStatus = Literal["succeeded", "failed", "cancelled", "deadline_exceeded", "rejected"]


IMAGE_STATUSES: tuple[str, ...] = get_args(ImageStatus)


BATCH_STATUSES: tuple[str, ...] = get_args(BatchStatus)


T = TypeVar("T")


class MessageError(ValueError):
    """A payload that is not the message it should be; ``field`` names the offending field."""

    def __init__(self, message_type: str, field_path: str, problem: str) -> None:
        self.message_type = message_type
        self.field = field_path
        self.problem = problem
        super().__init__(f"{message_type}: field '{field_path}' {problem}")


def type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


class Fields:
    """Typed, checked reads of one JSON object of a message (``path`` names it in errors)."""

    def __init__(self, data: Any, message_type: str, path: str = "") -> None:
        if not isinstance(data, Mapping):
            where = path or "(message)"
            raise MessageError(message_type, where, f"must be a JSON object, got {type_name(data)}")
        self.data: Mapping[str, Any] = data
        self.message_type = message_type
        self.path = path

    def name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, problem: str) -> MessageError:
        return MessageError(self.message_type, self.name(key), problem)

    def has(self, key: str) -> bool:
        return key in self.data

    def _required(self, key: str) -> Any:
        if key not in self.data:
            raise self.error(key, "is missing")
        return self.data[key]

    def _check(self, key: str, value: Any, kinds: tuple[type, ...], what: str) -> Any:
        if isinstance(value, bool) and bool not in kinds:
            raise self.error(key, f"must be {what}, got bool")
        if not isinstance(value, kinds):
            raise self.error(key, f"must be {what}, got {type_name(value)}")
        return value

    def version(self, reads: tuple[int, ...]) -> int:
        value = self.data.get(VERSION_KEY, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value not in reads:
            readable = ", ".join(str(v) for v in reads)
            problem = f"is schema version {value!r}, which this code cannot read (it reads {readable})"
            raise self.error(VERSION_KEY, problem)
        return value

    def text(self, key: str) -> str:
        return str(self._check(key, self._required(key), (str,), "a string"))

    def opt_text(self, key: str) -> str | None:
        value = self.data.get(key)
        return None if value is None else str(self._check(key, value, (str,), "a string or null"))

    def integer(self, key: str) -> int:
        return int(self._check(key, self._required(key), (int,), "an integer"))

    def opt_integer(self, key: str) -> int | None:
        value = self.data.get(key)
        return None if value is None else int(self._check(key, value, (int,), "an integer or null"))

    def number(self, key: str) -> float:
        return float(self._check(key, self._required(key), (int, float), "a number"))

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.data.get(key, default)
        return bool(self._check(key, value, (bool,), "true or false"))

    def obj(self, key: str) -> Fields:
        return Fields(self._required(key), self.message_type, self.name(key))

    def opt_obj(self, key: str) -> Fields | None:
        value = self.data.get(key)
        return None if value is None else Fields(value, self.message_type, self.name(key))

    def json_obj(self, key: str) -> dict[str, Any] | None:
        """A free-form JSON object (or null), copied."""
        value = self.data.get(key)
        if value is None:
            return None
        return dict(self._check(key, value, (Mapping,), "a JSON object or null"))

    def items(self, key: str) -> list[Any]:
        return list(self._check(key, self._required(key), (list, tuple), "a list"))

    def integers(self, key: str) -> tuple[int, ...]:
        items = self.items(key)
        for i, item in enumerate(items):
            self._check(f"{key}[{i}]", item, (int,), "an integer")
        return tuple(int(item) for item in items)

    def texts(self, key: str) -> tuple[str, ...]:
        items = self.items(key)
        for i, item in enumerate(items):
            self._check(f"{key}[{i}]", item, (str,), "a string")
        return tuple(str(item) for item in items)

    def objs(self, key: str, read: Callable[[Fields], T]) -> tuple[T, ...]:
        return tuple(
            read(Fields(item, self.message_type, f"{self.name(key)}[{i}]")) for i, item in enumerate(self.items(key))
        )

    def counts(self, key: str) -> dict[str, int]:
        """A JSON object of integers (progress counts)."""
        counts = self.obj(key)
        for name, value in counts.data.items():
            counts._check(name, value, (int,), "an integer")
        return {str(name): int(value) for name, value in counts.data.items()}

    def opt_counts(self, key: str) -> dict[str, int] | None:
        return None if self.data.get(key) is None else self.counts(key)

    def when(self, key: str) -> datetime | None:
        text = self.opt_text(key)
        if text is None:
            return None
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            raise self.error(key, f"must be an ISO 8601 date and time, got {text!r}") from None

    def foreign(self, key: str, read: Callable[[dict[str, Any]], T]) -> T:
        """A nested value read by another module's ``from_dict`` (``BatchRequest``,
        ``RenderSpec``, ``SourceBlob``), its errors reported with this field's path."""
        return self.obj(key).parse(read)

    def parse(self, read: Callable[[dict[str, Any]], T]) -> T:
        """This object read by another module's ``from_dict``, its errors named by path."""
        try:
            return read(dict(self.data))
        except KeyError as error:
            raise self.error(str(error.args[0]), "is missing") from None
        except (TypeError, ValueError, AttributeError) as error:
            raise MessageError(self.message_type, self.path or "(message)", f"is not valid: {error}") from None


class Message:
    """Base of every message type: versioned ``to_dict`` / ``from_dict`` (module docstring)."""

    VERSION: ClassVar[int] = 1
    READS: ClassVar[tuple[int, ...]] = (1,)

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        """The message in ``data`` (a JSON object as ``to_dict`` writes it), checked."""
        return cls.read(Fields(data, cls.__name__))

    @classmethod
    def read(cls, fields: Fields) -> Self:
        """The message in ``fields`` (also a nested one: errors name its path)."""
        return cls._read(fields, fields.version(cls.READS))

    @classmethod
    def _read(cls, fields: Fields, version: int) -> Self:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """The JSON-safe plain dict that travels (``"v"`` only from version 2 on)."""
        data = self._write()
        return data if self.VERSION == 1 else {VERSION_KEY: self.VERSION, **data}

    def _write(self) -> dict[str, Any]:
        raise NotImplementedError


def hold_poll(fields: Fields) -> tuple[int, int] | None:
    if fields.data.get("hold_poll_ms") is None:
        return None
    values = fields.integers("hold_poll_ms")
    if len(values) != 2:
        raise fields.error("hold_poll_ms", f"must be [first, cap] in milliseconds, got {list(values)}")
    return values[0], values[1]
