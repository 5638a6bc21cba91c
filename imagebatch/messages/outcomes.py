"""What a lane hands back (``ShardOutcome``) and what the parent keeps of each shard for
the manifest and the proof sheet (``ShardRecord``, ``UnprocessedShard``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from imagebatch.messages.base import Fields, Message
from imagebatch.messages.image import ImageResult, StorageRefusal, results_by_segment, write_inline
from imagebatch.messages.lane import ShardState


def _results_location(
    parts: int, segment_size: int, inline: Mapping[str, tuple[ImageResult, ...]], not_started_from: int | None
) -> dict[str, Any]:
    """Where a shard's results are, as both a ``ShardOutcome`` and a ``ShardRecord`` write it."""
    data: dict[str, Any] = {"parts": parts, "segment_size": segment_size}
    if inline:
        data["inline"] = write_inline(inline)
    if not_started_from is not None:
        data["not_started_from"] = not_started_from
    return data


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
        data["progress"] = dict(self.progress or {})
        data.update(_results_location(self.parts, self.segment_size, self.inline, self.not_started_from))
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
            inline=results_by_segment(fields, "inline"),
            not_started_from=fields.opt_integer("not_started_from"),
            parked=None if parked is None else ShardState.read(parked),
        )


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
        return _results_location(self.parts, self.segment_size, self.inline, self.not_started_from)

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
            inline=results_by_segment(fields, "inline"),
            not_started_from=fields.opt_integer("not_started_from"),
        )
