"""Proof-and-approve: ``ReviewDecision``, ``RecordDecisionInput``,
``ProofSheetInput`` -> ``ProofSheetResult``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

from imagebatch.messages.base import Fields, Message
from imagebatch.messages.outcomes import ShardRecord
from imagebatch.specs import BatchRequest

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
