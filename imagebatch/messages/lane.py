"""A shard lane: ``ShardInput`` (and the ``ShardState`` it carries across ContinueAsNew),
and its activities' messages: ``LoadShardInput`` -> ``ShardSegment``,
``RecordResultsInput`` -> ``RecordResultsResult``, ``RunHoldInput`` -> ``RunHold``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Self

from imagebatch.messages.base import Fields, Message, hold_poll
from imagebatch.messages.batch import RetryOptions
from imagebatch.messages.image import ImageResult, StorageRefusal, results_by_segment, write_inline
from imagebatch.specs import BatchRequest, SourceBlob


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
            "inline": write_inline(self.inline),
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
            inline=results_by_segment(fields, "inline"),
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
            hold_poll_ms=hold_poll(fields),
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
