"""The end of a run: ``NotifyInput`` -> ``BatchSummary`` (also the orchestration's
output and the webhook's body)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self, cast

from imagebatch.messages.base import BATCH_STATUSES, BatchStatus, Fields, Message
from imagebatch.messages.outcomes import ShardRecord
from imagebatch.specs import BatchRequest


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
