"""Every message that crosses an orchestration or activity boundary, as a frozen dataclass.

The orchestrators, the activities, the HTTP starter and the tests build and read
these types only; a key is spelled once, here. Who sends what (function names in
``imagebatch.function_names``):

===========================  ==========================  ==============================
message                      from                        to
===========================  ==========================  ==============================
:class:`BatchInput`          HTTP starter                ImageProcessing_Orchestrator
:class:`ListImagesInput`     orchestrator                ListImages
:class:`ShardPlan`           ListImages                  orchestrator
:class:`ShardInput`          orchestrator (and a lane    ImageProcessing_Shard
                             continuing as new)
:class:`LoadShardInput`      shard                       LoadShard
:class:`ShardSegment`        LoadShard                   shard
:class:`ProcessImageInput`   shard                       ProcessImage
:class:`ImageResult`         ProcessImage                shard (then results blobs,
                                                         manifest)
:class:`RecordResultsInput`  shard                       RecordShardResults
:class:`RecordResultsResult` RecordShardResults          shard
:class:`RunHoldInput`        shard                       ReadRunHold
:class:`RunHold`             ReadRunHold                 shard
:class:`ShardOutcome`        shard (its output)          orchestrator
:class:`ShardRecord`         orchestrator                NotifyCompletion, WriteProofSheet
:class:`ProofSheetInput`     orchestrator                WriteProofSheet
:class:`ProofSheetResult`    WriteProofSheet             orchestrator
:class:`ReviewDecision`      HTTP / orchestrator         RecordReviewDecision, manifest
:class:`RecordDecisionInput` orchestrator                RecordReviewDecision
:class:`NotifyInput`         orchestrator                NotifyCompletion
:class:`BatchSummary`        NotifyCompletion            orchestration output, webhook
===========================  ==========================  ==============================

**Plain dicts on the wire, never the SDK's class envelope.** The Durable Python SDK
can carry custom objects itself: it serialises any object with ``to_json`` and
records ``__class__`` / ``__module__`` beside the data, then imports that path to
rebuild it (``azure.durable_functions.models.utils.json_utils``). A class renamed or
moved in a later release would then break every instance in flight, on replay. So
these classes have no ``to_json``: the sender passes ``to_dict()`` (a JSON-safe
plain dict) to ``call_activity`` / ``call_sub_orchestrator`` / ``start_new`` /
``continue_as_new`` or returns it from an activity, and the receiver calls
``from_dict()`` on what arrives. The dicts are the same as before these types
existed (same keys, same order), so histories already in flight read as before;
two are smaller: ListImages' input no longer repeats what its ``request`` holds
(older, wider payloads still read), and LoadShard's result leaves out a null
``max_concurrency``.

**Schema versions.** Every type has ``VERSION`` (what ``to_dict`` writes) and
``READS`` (what ``from_dict`` accepts). The version travels in the key ``"v"``,
which is left out for version 1: every payload written so far -- before this module
and since -- is version 1, byte for byte, and costs no extra bytes in any history.
The rules for a change:

* **Additive** (a new optional field): give it a default, read it with a default;
  the version stays. Older payloads in flight simply lack the key.
* **Anything else** (a renamed, removed or re-typed field): bump ``VERSION`` (the
  dict then carries ``"v": 2``), keep the old number in ``READS``, and map the old
  shape in ``_read`` (it gets the version). Remove an old version from ``READS`` only
  once no instance that could hold it is in flight (``HISTORY_RETENTION_DAYS``).
* Today every type is at version 1 and reads version 1 only; a payload of another
  version (e.g. written by a newer release, then rolled back) is refused with
  :class:`MessageError`, not misread.

``from_dict`` rejects a payload that is not a JSON object, or lacks a required
field, or has a field of the wrong type, with a :class:`MessageError` naming the
field (``shard_outcomes[3].failed.size``). Unknown keys are ignored (a newer
sender's additive fields). Everything here is pure -- no I/O, clock or randomness --
so orchestrators may call it on replay.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal, Self, TypeVar, cast, get_args

from imagebatch.specs import BatchRequest, RenderSpec, SourceBlob

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


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


class Fields:
    """Typed, checked reads of one JSON object of a message (``path`` names it in errors)."""

    def __init__(self, data: Any, message_type: str, path: str = "") -> None:
        if not isinstance(data, Mapping):
            where = path or "(message)"
            raise MessageError(message_type, where, f"must be a JSON object, got {_type_name(data)}")
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
            raise self.error(key, f"must be {what}, got {_type_name(value)}")
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


def _results_by_segment(fields: Fields, key: str) -> dict[str, tuple[ImageResult, ...]]:
    """``{"<segment>": [ImageResult, ...]}`` (results carried inline when a blob write failed)."""
    inline = fields.obj(key) if fields.has(key) else None
    if inline is None:
        return {}
    return {str(segment): inline.objs(str(segment), ImageResult.read) for segment in inline.data}


def _write_inline(inline: Mapping[str, Iterable[ImageResult]]) -> dict[str, list[dict[str, Any]]]:
    return {segment: [result.to_dict() for result in results] for segment, results in inline.items()}


# -- settings handed down -------------------------------------------------------------------


@dataclass(frozen=True)
class RetryOptions(Message):
    """The activity retry policy (from app settings; orchestrators may not read them)."""

    first_interval_ms: int = 2000
    max_attempts: int = 4
    backoff: float = 2.0
    max_interval_ms: int = 30000

    def _write(self) -> dict[str, Any]:
        return {
            "first_interval_ms": self.first_interval_ms,
            "max_attempts": self.max_attempts,
            "backoff": self.backoff,
            "max_interval_ms": self.max_interval_ms,
        }

    @classmethod
    def _read(cls, fields: Fields, version: int) -> Self:
        return cls(
            first_interval_ms=fields.integer("first_interval_ms"),
            max_attempts=fields.integer("max_attempts"),
            backoff=fields.number("backoff"),
            max_interval_ms=fields.integer("max_interval_ms"),
        )


def _hold_poll(fields: Fields) -> tuple[int, int] | None:
    if fields.data.get("hold_poll_ms") is None:
        return None
    values = fields.integers("hold_poll_ms")
    if len(values) != 2:
        raise fields.error("hold_poll_ms", f"must be [first, cap] in milliseconds, got {list(values)}")
    return values[0], values[1]


# -- the batch ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchInput(Message):
    """ImageProcessing_Orchestrator's input: the validated request of one run and the
    settings it needs (``shard_size`` None: sized for the batch; the test-only
    ``segment_size`` overrides the lanes' images per execution)."""

    request: BatchRequest
    run: str
    retry: RetryOptions = field(default_factory=RetryOptions)
    shard_size: int | None = None
    list_page_size: int | None = None
    hold_poll_ms: tuple[int, int] | None = None
    segment_size: int | None = None

    def _write(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "request": self.request.to_dict(),
            "run": self.run,
            "retry": self.retry.to_dict(),
            "shard_size": self.shard_size,
            "list_page_size": self.list_page_size,
        }
        if self.hold_poll_ms is not None:
            data["hold_poll_ms"] = list(self.hold_poll_ms)
        if self.segment_size is not None:
            data["segment_size"] = self.segment_size
        return data

    @classmethod
    def _read(cls, fields: Fields, version: int) -> Self:
        return cls(
            request=fields.foreign("request", BatchRequest.from_dict),
            run=fields.text("run"),
            retry=RetryOptions.read(fields.obj("retry")),
            shard_size=fields.opt_integer("shard_size"),
            list_page_size=fields.opt_integer("list_page_size"),
            hold_poll_ms=_hold_poll(fields),
            segment_size=fields.opt_integer("segment_size"),
        )


@dataclass(frozen=True)
class ListImagesInput(Message):
    """ListImages' input: what to list (all in ``request``) and where the plan goes.

    Everything else ListImages needs is derived from the request (properties below),
    so it is not repeated on the wire."""

    instance_id: str
    run: str
    request: BatchRequest
    page_size: int | None = None
    shard_size: int | None = None

    @property
    def container(self) -> str:
        return self.request.source_container

    @property
    def prefix(self) -> str:
        return self.request.source_prefix or ""

    @property
    def output_container(self) -> str:
        return self.request.output_container

    @property
    def output_prefix(self) -> str:
        return self.request.output_prefix

    @property
    def exclude_own_outputs(self) -> bool:
        """Input and output share a container: never list the batch's own outputs."""
        return self.request.source_container == self.request.output_container

    @property
    def review_sample(self) -> int:
        """Images of the proof's sample (its shards come first), 0 without a review."""
        return self.request.review.sample if self.request.review else 0

    def _write(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "run": self.run,
            "request": self.request.to_dict(),
            "page_size": self.page_size,
            "shard_size": self.shard_size,
        }

    @classmethod
    def _read(cls, fields: Fields, version: int) -> Self:
        return cls(
            instance_id=fields.text("instance_id"),
            run=fields.text("run"),
            request=fields.foreign("request", BatchRequest.from_dict),
            page_size=fields.opt_integer("page_size"),
            shard_size=fields.opt_integer("shard_size"),
        )


@dataclass(frozen=True)
class ShardPlan(Message):
    """ListImages' result: shard sizes and the plan's folder, never the listing.

    ``sample``/``sample_shards``: the proof's sample (first shards); ``rejected``
    images whose outputs cannot be named and ``not_images`` are listed in ``extra``
    (a blob, for the manifest); ``error``: the batch cannot run (nothing listed)."""

    total: int
    shards: tuple[int, ...]
    plan: str
    pages: int
    sample: int = 0
    sample_shards: int = 0
    rejected: int = 0
    not_images: int = 0
    extra: str | None = None
    error: str | None = None

    def _write(self) -> dict[str, Any]:
        data: dict[str, Any] = {"total": self.total, "shards": list(self.shards), "plan": self.plan}
        data["pages"] = self.pages
        if self.sample:
            data.update({"sample": self.sample, "sample_shards": self.sample_shards})
        if self.extra is not None:
            data.update({"rejected": self.rejected, "not_images": self.not_images, "extra": self.extra})
        if self.error is not None:
            data["error"] = self.error
        return data

    @classmethod
    def _read(cls, fields: Fields, version: int) -> Self:
        return cls(
            total=fields.integer("total"),
            shards=fields.integers("shards"),
            plan=fields.text("plan"),
            pages=fields.integer("pages"),
            sample=fields.opt_integer("sample") or 0,
            sample_shards=fields.opt_integer("sample_shards") or 0,
            rejected=fields.opt_integer("rejected") or 0,
            not_images=fields.opt_integer("not_images") or 0,
            extra=fields.opt_text("extra"),
            error=fields.opt_text("error"),
        )


# -- one image ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessImageInput(Message):
    """ProcessImage's input: one source image and how to render it (``cancel_blob``: the
    run's hold marker, checked before the image starts)."""

    source_container: str
    source: SourceBlob
    output_container: str
    output_prefix: str
    spec: RenderSpec
    cancel_blob: str | None = None

    def _write(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "source_container": self.source_container,
            "source": self.source.to_dict(),
            "output_container": self.output_container,
            "output_prefix": self.output_prefix,
            "spec": self.spec.to_dict(),
        }
        if self.cancel_blob:
            data["cancel_blob"] = self.cancel_blob
        return data

    @classmethod
    def _read(cls, fields: Fields, version: int) -> Self:
        return cls(
            source_container=fields.text("source_container"),
            source=fields.foreign("source", SourceBlob.from_dict),
            output_container=fields.text("output_container"),
            output_prefix=fields.text("output_prefix"),
            spec=fields.foreign("spec", RenderSpec.from_dict),
            cancel_blob=fields.opt_text("cancel_blob"),
        )


@dataclass(frozen=True)
class OutputEntry(Message):
    """One rendition written for an image (``size`` travels as ``bytes``)."""

    rendition: str
    blob: str
    width: int
    height: int
    size: int

    def _write(self) -> dict[str, Any]:
        return {
            "rendition": self.rendition,
            "blob": self.blob,
            "width": self.width,
            "height": self.height,
            "bytes": self.size,
        }

    @classmethod
    def _read(cls, fields: Fields, version: int) -> Self:
        return cls(
            rendition=fields.text("rendition"),
            blob=fields.text("blob"),
            width=fields.integer("width"),
            height=fields.integer("height"),
            size=fields.integer("bytes"),
        )


@dataclass(frozen=True)
class ImageResult(Message):
    """One image's result: ProcessImage's output, and the record the shard writes to its
    results blob and the manifest lists (``imagebatch.results`` builds them).

    ``kind``/``message``: why it failed, was not started or is unknown;
    ``removed_outputs``: an earlier run's renditions removed with a failed source;
    ``recovered``: re-checked in storage after its record was lost."""

    name: str
    status: ImageStatus
    outputs: tuple[OutputEntry, ...] = ()
    duration_ms: int = 0
    kind: str | None = None
    message: str | None = None
    removed_outputs: int | None = None
    recovered: bool = False

    def _write(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "status": self.status,
            "outputs": [o.to_dict() for o in self.outputs],
            "duration_ms": self.duration_ms,
        }
        if self.kind is not None:
            data["kind"] = self.kind
            data["message"] = self.message or ""
        if self.removed_outputs:
            data["removed_outputs"] = self.removed_outputs
        if self.recovered:
            data["recovered"] = True
        return data

    @classmethod
    def _read(cls, fields: Fields, version: int) -> Self:
        status = fields.text("status")
        if status not in IMAGE_STATUSES:
            raise fields.error("status", f"must be one of {', '.join(IMAGE_STATUSES)}, got {status!r}")
        return cls(
            name=fields.text("name"),
            status=cast(ImageStatus, status),
            outputs=fields.objs("outputs", OutputEntry.read),
            duration_ms=fields.integer("duration_ms"),
            kind=fields.opt_text("kind"),
            message=fields.opt_text("message"),
            removed_outputs=fields.opt_integer("removed_outputs"),
            recovered=fields.flag("recovered"),
        )


# -- a shard (one lane) ---------------------------------------------------------------------


@dataclass(frozen=True)
class StorageRefusal(Message):
    """A storage error that retrying cannot fix (``blob_gone``, ``storage_error``)."""

    kind: str
    message: str

    def _write(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message}

    @classmethod
    def _read(cls, fields: Fields, version: int) -> Self:
        return cls(kind=fields.text("kind"), message=fields.text("message"))


@dataclass(frozen=True)
class ShardState(Message):
    """What earlier executions of a lane did, carried into the next one (counts and blob
    names only), or a parked lane's state handed back to the parent.

    ``next``: the shard's first image not yet handled; ``segment``: the segment number
    (its results blob); ``counts``: finished counts so far; ``inline``: results of
    segments whose blob could not be written. While held by a pause: ``carried`` (the
    segment's finished results, ``None`` for the others), ``held_polls`` (looks so far;
    None: resumed, not held) and ``held_progress`` (counts shown while held).
    ``fresh``: the parent restarted a parked lane (it does one segment before it may
    park again)."""

    next: int
    segment: int
    counts: Mapping[str, int] = field(default_factory=dict)
    inline: Mapping[str, tuple[ImageResult, ...]] = field(default_factory=dict)
    fresh: bool = False
    held_progress: Mapping[str, int] | None = None
    carried: tuple[ImageResult | None, ...] | None = None
    held_polls: int | None = None

    def parked(self) -> ShardState:
        """Only what a parked lane hands back (where it stopped, what it did)."""
        return ShardState(next=self.next, segment=self.segment, counts=self.counts, inline=self.inline)

    def _write(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "next": self.next,
            "segment": self.segment,
            "counts": dict(self.counts),
            "inline": _write_inline(self.inline),
        }
        if self.fresh:
            data["fresh"] = True
        if self.held_progress is not None:
            data["held_progress"] = dict(self.held_progress)
        if self.carried is not None:
            data["carried"] = [{} if r is None else r.to_dict() for r in self.carried]
            data["held"] = None if self.held_polls is None else {"polls": self.held_polls}
        return data

    @classmethod
    def _read(cls, fields: Fields, version: int) -> Self:
        carried = None
        if fields.data.get("carried") is not None:
            carried = fields.objs("carried", lambda item: ImageResult.read(item) if item.data else None)
        held = fields.opt_obj("held")
        return cls(
            next=fields.integer("next"),
            segment=fields.integer("segment"),
            counts=fields.counts("counts"),
            inline=_results_by_segment(fields, "inline"),
            fresh=fields.flag("fresh"),
            held_progress=fields.opt_counts("held_progress"),
            carried=carried,
            held_polls=None if held is None else (held.opt_integer("polls") or 0),
        )


@dataclass(frozen=True)
class ShardInput(Message):
    """ImageProcessing_Shard's input: blob names only (the shard reads its images and the
    request from its plan blob). ``slot``: the lane's number (a lane at or above a
    lowered bound parks); ``state``: absent on a lane's first execution; ``deadline``:
    no image starts after it; ``hold_poll_ms`` and ``segment_size``: test overrides."""

    shard: int
    slot: int
    container: str
    plan_blob: str
    parts_prefix: str
    retry: RetryOptions = field(default_factory=RetryOptions)
    controls_blob: str | None = None
    cancel_blob: str | None = None
    state: ShardState | None = None
    deadline: datetime | None = None
    hold_poll_ms: tuple[int, int] | None = None
    segment_size: int | None = None

    def _write(self) -> dict[str, Any]:
        data: dict[str, Any] = {"shard": self.shard, "slot": self.slot, "controls_blob": self.controls_blob}
        if self.state is not None:
            data["state"] = self.state.to_dict()
        data.update(
            {
                "container": self.container,
                "plan_blob": self.plan_blob,
                "parts_prefix": self.parts_prefix,
                "cancel_blob": self.cancel_blob,
                "retry": self.retry.to_dict(),
            }
        )
        if self.deadline is not None:
            data["deadline"] = self.deadline.isoformat()
        if self.hold_poll_ms is not None:
            data["hold_poll_ms"] = list(self.hold_poll_ms)
        if self.segment_size is not None:
            data["segment_size"] = self.segment_size
        return data

    @classmethod
    def _read(cls, fields: Fields, version: int) -> Self:
        state = fields.opt_obj("state")
        return cls(
            shard=fields.integer("shard"),
            slot=fields.integer("slot"),
            container=fields.text("container"),
            plan_blob=fields.text("plan_blob"),
            parts_prefix=fields.text("parts_prefix"),
            retry=RetryOptions.read(fields.obj("retry")),
            controls_blob=fields.opt_text("controls_blob"),
            cancel_blob=fields.opt_text("cancel_blob"),
            state=None if state is None else ShardState.read(state),
            deadline=fields.when("deadline"),
            hold_poll_ms=_hold_poll(fields),
            segment_size=fields.opt_integer("segment_size"),
        )


@dataclass(frozen=True)
class LoadShardInput(Message):
    """LoadShard's input: ``count`` images of the plan blob from ``start`` (None: all),
    and the run's control document (its current bound) when ``controls_blob`` is set."""

    container: str
    blob: str
    start: int = 0
    count: int | None = None
    controls_blob: str | None = None

    def _write(self) -> dict[str, Any]:
        return {
            "container": self.container,
            "blob": self.blob,
            "start": self.start,
            "count": self.count,
            "controls_blob": self.controls_blob,
        }

    @classmethod
    def _read(cls, fields: Fields, version: int) -> Self:
        return cls(
            container=fields.text("container"),
            blob=fields.text("blob"),
            start=fields.opt_integer("start") or 0,
            count=fields.opt_integer("count"),
            controls_blob=fields.opt_text("controls_blob"),
        )


@dataclass(frozen=True)
class ShardSegment(Message):
    """LoadShard's result: the request, one segment's images and the shard's size (and the
    run's current bound), or ``error`` when the plan can never be read."""

    request: BatchRequest | None = None
    images: tuple[SourceBlob, ...] = ()
    total: int = 0
    max_concurrency: int | None = None
    error: StorageRefusal | None = None

    def _write(self) -> dict[str, Any]:
        if self.error is not None:
            return {"error": self.error.to_dict()}
        data: dict[str, Any] = {
            "request": None if self.request is None else self.request.to_dict(),
            "images": [image.to_dict() for image in self.images],
            "total": self.total,
        }
        if self.max_concurrency is not None:
            data["max_concurrency"] = self.max_concurrency
        return data

    @classmethod
    def _read(cls, fields: Fields, version: int) -> Self:
        if fields.has("error"):
            return cls(error=StorageRefusal.read(fields.obj("error")))
        return cls(
            request=fields.foreign("request", BatchRequest.from_dict),
            images=fields.objs("images", lambda item: item.parse(SourceBlob.from_dict)),
            total=fields.integer("total"),
            max_concurrency=fields.opt_integer("max_concurrency"),
        )


@dataclass(frozen=True)
class RecordResultsInput(Message):
    """RecordShardResults' input: one segment's results and the blob they go to."""

    container: str
    blob: str
    results: tuple[ImageResult, ...]

    def _write(self) -> dict[str, Any]:
        return {"container": self.container, "blob": self.blob, "results": [r.to_dict() for r in self.results]}

    @classmethod
    def _read(cls, fields: Fields, version: int) -> Self:
        return cls(
            container=fields.text("container"),
            blob=fields.text("blob"),
            results=fields.objs("results", ImageResult.read),
        )


@dataclass(frozen=True)
class RecordResultsResult(Message):
    """RecordShardResults' result: the blob and how many results it holds, or ``error``
    when storage refuses for good (the shard then carries the results inline)."""

    blob: str
    count: int = 0
    error: StorageRefusal | None = None

    def _write(self) -> dict[str, Any]:
        if self.error is not None:
            return {"blob": self.blob, "error": self.error.to_dict()}
        return {"blob": self.blob, "count": self.count}

    @classmethod
    def _read(cls, fields: Fields, version: int) -> Self:
        error = fields.opt_obj("error")
        return cls(
            blob=fields.text("blob"),
            count=0 if error is not None else fields.integer("count"),
            error=None if error is None else StorageRefusal.read(error),
        )


@dataclass(frozen=True)
class RunHoldInput(Message):
    """ReadRunHold's input: the run's hold marker."""

    container: str
    blob: str

    def _write(self) -> dict[str, Any]:
        return {"container": self.container, "blob": self.blob}

    @classmethod
    def _read(cls, fields: Fields, version: int) -> Self:
        return cls(container=fields.text("container"), blob=fields.text("blob"))


HOLDS = ("paused", "cancelled")


@dataclass(frozen=True)
class RunHold(Message):
    """ReadRunHold's result: why a lane's image did not start (None: it no longer is held)."""

    hold: str | None = None

    def _write(self) -> dict[str, Any]:
        return {"hold": self.hold}

    @classmethod
    def _read(cls, fields: Fields, version: int) -> Self:
        hold = fields.opt_text("hold")
        if hold is not None and hold not in HOLDS:
            raise fields.error("hold", f"must be one of {', '.join(HOLDS)} or null, got {hold!r}")
        return cls(hold=hold)


@dataclass(frozen=True)
class ShardOutcome(Message):
    """ImageProcessing_Shard's output, one of three:

    * done (or stopped by a cancel / the deadline): ``progress`` (counts), ``parts``
      results blobs of ``segment_size`` images, ``inline`` results of segments whose
      blob could not be written, ``not_started_from`` (stopped early: the plan's images
      from there on never started);
    * ``parked`` (the bound was lowered below its slot): the lane's state, to start
      again from; ``progress`` etc. as above count what it did (if never restarted);
    * ``shard_error``: its plan can never be read."""

    shard: int
    progress: Mapping[str, int] | None = None
    parts: int = 0
    segment_size: int = 0
    inline: Mapping[str, tuple[ImageResult, ...]] = field(default_factory=dict)
    not_started_from: int | None = None
    parked: ShardState | None = None
    shard_error: StorageRefusal | None = None

    def _write(self) -> dict[str, Any]:
        data: dict[str, Any] = {"shard": self.shard}
        if self.shard_error is not None:
            data["shard_error"] = self.shard_error.to_dict()
            return data
        if self.parked is not None:
            data["parked"] = self.parked.to_dict()
        data.update({"progress": dict(self.progress or {}), "parts": self.parts, "segment_size": self.segment_size})
        if self.inline:
            data["inline"] = _write_inline(self.inline)
        if self.not_started_from is not None:
            data["not_started_from"] = self.not_started_from
        return data

    @classmethod
    def _read(cls, fields: Fields, version: int) -> Self:
        shard = fields.integer("shard")
        if fields.has("shard_error"):
            return cls(shard=shard, shard_error=StorageRefusal.read(fields.obj("shard_error")))
        parked = fields.opt_obj("parked")
        return cls(
            shard=shard,
            progress=fields.counts("progress"),
            parts=fields.integer("parts"),
            segment_size=fields.integer("segment_size"),
            inline=_results_by_segment(fields, "inline"),
            not_started_from=fields.opt_integer("not_started_from"),
            parked=None if parked is None else ShardState.read(parked),
        )


# -- what the parent records of each shard, for the manifest and the proof ------------------


@dataclass(frozen=True)
class UnprocessedShard(Message):
    """A shard none of whose images have a result: it ``failed`` as a whole (``kind``,
    ``message``) or ``not_started`` (``message``: why, when not a cancel). Its images are
    named from its plan blob."""

    plan_blob: str
    size: int
    kind: str | None = None
    message: str | None = None

    def _write(self) -> dict[str, Any]:
        data: dict[str, Any] = {"plan_blob": self.plan_blob, "size": self.size}
        if self.kind is not None:
            data["kind"] = self.kind
        if self.message is not None:
            data["message"] = self.message
        return data

    @classmethod
    def _read(cls, fields: Fields, version: int) -> Self:
        return cls(
            plan_blob=fields.text("plan_blob"),
            size=fields.integer("size"),
            kind=fields.opt_text("kind"),
            message=fields.opt_text("message"),
        )


@dataclass(frozen=True)
class ShardRecord(Message):
    """Where NotifyCompletion / WriteProofSheet find one shard's results: its results
    blobs (``parts`` of ``segment_size``, ``inline``, ``not_started_from``), or the
    shard ``failed`` / ``not_started`` as a whole. Empty: nothing recorded (yet)."""

    parts: int | None = None
    segment_size: int = 0
    inline: Mapping[str, tuple[ImageResult, ...]] = field(default_factory=dict)
    not_started_from: int | None = None
    failed: UnprocessedShard | None = None
    not_started: UnprocessedShard | None = None

    @classmethod
    def of(cls, outcome: ShardOutcome) -> ShardRecord:
        """The record of a shard that ran: counts and names, never its results."""
        return cls(
            parts=outcome.parts,
            segment_size=outcome.segment_size,
            inline=outcome.inline,
            not_started_from=outcome.not_started_from,
        )

    def _write(self) -> dict[str, Any]:
        if self.failed is not None:
            return {"failed": self.failed.to_dict()}
        if self.not_started is not None:
            return {"not_started": self.not_started.to_dict()}
        if self.parts is None:
            return {}
        data: dict[str, Any] = {"parts": self.parts, "segment_size": self.segment_size}
        if self.inline:
            data["inline"] = _write_inline(self.inline)
        if self.not_started_from is not None:
            data["not_started_from"] = self.not_started_from
        return data

    @classmethod
    def _read(cls, fields: Fields, version: int) -> Self:
        if fields.has("failed"):
            failed = UnprocessedShard.read(fields.obj("failed"))
            if failed.kind is None or failed.message is None:
                raise fields.error("failed", "must have a kind and a message")
            return cls(failed=failed)
        if fields.has("not_started"):
            return cls(not_started=UnprocessedShard.read(fields.obj("not_started")))
        if not fields.has("parts"):
            return cls()
        return cls(
            parts=fields.integer("parts"),
            segment_size=fields.integer("segment_size"),
            inline=_results_by_segment(fields, "inline"),
            not_started_from=fields.opt_integer("not_started_from"),
        )


# -- review ---------------------------------------------------------------------------------

DECISIONS = ("approved", "rejected")


@dataclass(frozen=True)
class ReviewDecision(Message):
    """The one shape a proof's decision has: in ``review.json``, the ``review-decision``
    event, RecordReviewDecision's input and output, the manifest and the summary.
    (Events and the stored decision are read leniently by
    ``orchestrators.review.normalise_decision``: anything unreadable rejects.)"""

    decision: str
    by: str
    at: str
    reason: str | None = None

    def _write(self) -> dict[str, Any]:
        return {"decision": self.decision, "by": self.by, "at": self.at, "reason": self.reason}

    @classmethod
    def _read(cls, fields: Fields, version: int) -> Self:
        decision = fields.text("decision")
        if decision not in DECISIONS:
            raise fields.error("decision", f"must be one of {', '.join(DECISIONS)}, got {decision!r}")
        return cls(decision=decision, by=fields.text("by"), at=fields.text("at"), reason=fields.opt_text("reason"))


@dataclass(frozen=True)
class RecordDecisionInput(Message):
    """RecordReviewDecision's input: the timeout's decision, recorded unless a person's
    came first (the activity returns the decision that stands)."""

    container: str
    blob: str
    decision: ReviewDecision

    def _write(self) -> dict[str, Any]:
        return {"container": self.container, "blob": self.blob, "decision": self.decision.to_dict()}

    @classmethod
    def _read(cls, fields: Fields, version: int) -> Self:
        return cls(
            container=fields.text("container"),
            blob=fields.text("blob"),
            decision=ReviewDecision.read(fields.obj("decision")),
        )


@dataclass(frozen=True)
class ProofSheetInput(Message):
    """WriteProofSheet's input: the run, its sample shards' records and the decision's
    deadline and default (shown on the sheet)."""

    instance_id: str
    run: str
    request: BatchRequest
    plan_folder: str
    shard_outcomes: tuple[ShardRecord, ...]
    total: int
    timeout_at: str | None = None
    on_timeout: str = "reject"

    def _write(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "run": self.run,
            "request": self.request.to_dict(),
            "plan_folder": self.plan_folder,
            "shard_outcomes": [o.to_dict() for o in self.shard_outcomes],
            "total": self.total,
            "timeout_at": self.timeout_at,
            "on_timeout": self.on_timeout,
        }

    @classmethod
    def _read(cls, fields: Fields, version: int) -> Self:
        return cls(
            instance_id=fields.text("instance_id"),
            run=fields.text("run"),
            request=fields.foreign("request", BatchRequest.from_dict),
            plan_folder=fields.text("plan_folder"),
            shard_outcomes=fields.objs("shard_outcomes", ShardRecord.read),
            total=fields.integer("total"),
            timeout_at=fields.opt_text("timeout_at"),
            on_timeout=fields.opt_text("on_timeout") or "reject",
        )


@dataclass(frozen=True)
class ProofSheetResult(Message):
    """WriteProofSheet's result: ``proof`` (``container/blob``) with the sample's size and
    failures, or ``proof`` None with ``error`` (the run still waits for a decision)."""

    proof: str | None
    sample: int = 0
    failed: int = 0
    error: str | None = None

    def _write(self) -> dict[str, Any]:
        if self.error is not None:
            return {"proof": self.proof, "error": self.error}
        return {"proof": self.proof, "sample": self.sample, "failed": self.failed}

    @classmethod
    def _read(cls, fields: Fields, version: int) -> Self:
        error = fields.opt_text("error")
        if error is not None:
            return cls(proof=fields.opt_text("proof"), error=error)
        return cls(proof=fields.opt_text("proof"), sample=fields.integer("sample"), failed=fields.integer("failed"))


# -- the end of a run -----------------------------------------------------------------------


@dataclass(frozen=True)
class NotifyInput(Message):
    """NotifyCompletion's input: the run, where every shard's results are
    (``shard_outcomes``, one small record per shard), the final counts and status, and
    the review as status and manifest show it (a free-form object)."""

    instance_id: str
    run: str
    request: BatchRequest
    shard_outcomes: tuple[ShardRecord, ...]
    progress: Mapping[str, int]
    status: BatchStatus
    started: str
    finished: str
    plan_folder: str | None = None
    extra_blob: str | None = None
    listing_error: str | None = None
    review: Mapping[str, Any] | None = None

    def _write(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "instance_id": self.instance_id,
            "run": self.run,
            "request": self.request.to_dict(),
            "plan_folder": self.plan_folder,
            "extra_blob": self.extra_blob,
            "shard_outcomes": [o.to_dict() for o in self.shard_outcomes],
            "progress": dict(self.progress),
            "status": self.status,
            "started": self.started,
            "finished": self.finished,
            "listing_error": self.listing_error,
        }
        if self.review is not None:
            data["review"] = dict(self.review)
        return data

    @classmethod
    def _read(cls, fields: Fields, version: int) -> Self:
        status = fields.text("status")
        if status not in BATCH_STATUSES:
            raise fields.error("status", f"must be one of {', '.join(BATCH_STATUSES)}, got {status!r}")
        return cls(
            instance_id=fields.text("instance_id"),
            run=fields.text("run"),
            request=fields.foreign("request", BatchRequest.from_dict),
            shard_outcomes=fields.objs("shard_outcomes", ShardRecord.read),
            progress=fields.counts("progress"),
            status=cast(BatchStatus, status),
            started=fields.text("started"),
            finished=fields.text("finished"),
            plan_folder=fields.opt_text("plan_folder"),
            extra_blob=fields.opt_text("extra_blob"),
            listing_error=fields.opt_text("listing_error"),
            review=fields.json_obj("review"),
        )


@dataclass(frozen=True)
class BatchSummary(Message):
    """NotifyCompletion's result, the orchestration's output and the webhook's body: the
    run's counts and where its manifest and report are -- no per-image lists.
    ``manifest``/``report`` None with ``manifest_error``: they could not be written."""

    batch_id: str
    run: str | None
    status: str
    counts: Mapping[str, int]
    failure_percent: float
    started: str
    finished: str
    manifest: str | None
    report: str | None = None
    warnings: tuple[str, ...] = ()
    review: Mapping[str, Any] | None = None
    manifest_error: str | None = None
    webhook: str | None = None

    def _write(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "batch_id": self.batch_id,
            "run": self.run,
            "status": self.status,
            "counts": dict(self.counts),
            "failure_percent": self.failure_percent,
            "started": self.started,
            "finished": self.finished,
            "manifest": self.manifest,
        }
        if self.warnings:
            data["warnings"] = list(self.warnings)
        if self.review:
            data["review"] = dict(self.review)
        data["report"] = self.report
        if self.manifest_error is not None:
            data["manifest_error"] = self.manifest_error
        if self.webhook is not None:
            data["webhook"] = self.webhook
        return data

    @classmethod
    def _read(cls, fields: Fields, version: int) -> Self:
        return cls(
            batch_id=fields.text("batch_id"),
            run=fields.opt_text("run"),
            status=fields.text("status"),
            counts=fields.counts("counts"),
            failure_percent=fields.number("failure_percent"),
            started=fields.text("started"),
            finished=fields.text("finished"),
            manifest=fields.opt_text("manifest"),
            report=fields.opt_text("report"),
            warnings=fields.texts("warnings") if fields.data.get("warnings") is not None else (),
            review=fields.json_obj("review"),
            manifest_error=fields.opt_text("manifest_error"),
            webhook=fields.opt_text("webhook"),
        )
