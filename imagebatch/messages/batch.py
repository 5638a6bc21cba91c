"""The batch: the orchestration's ``BatchInput`` (with the ``RetryOptions`` handed down
from settings) and the listing, ``ListImagesInput`` -> ``ShardPlan``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Self

from imagebatch.messages.base import Fields, Message, hold_poll
from imagebatch.specs import BatchRequest


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
            hold_poll_ms=hold_poll(fields),
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
