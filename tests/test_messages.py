"""The typed Durable boundary (``imagebatch/messages/``): every message round-trips,
what the current code writes equals a pinned literal (an accidental wire change fails
here, before it meets a history in flight), and a payload that is not the message --
a field missing or mistyped, an unknown schema version -- is refused naming the field."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from imagebatch import function_names
from imagebatch.messages import (
    BatchInput,
    BatchSummary,
    ImageResult,
    ListImagesInput,
    LoadShardInput,
    Message,
    MessageError,
    NotifyInput,
    OutputEntry,
    ProcessImageInput,
    ProofSheetInput,
    ProofSheetResult,
    RecordDecisionInput,
    RecordResultsInput,
    RecordResultsResult,
    RetryOptions,
    ReviewDecision,
    RunHold,
    RunHoldInput,
    ShardInput,
    ShardOutcome,
    ShardPlan,
    ShardRecord,
    ShardSegment,
    ShardState,
    StorageRefusal,
    UnprocessedShard,
)
from imagebatch.specs import BatchRequest, RenderSpec, Rendition, ReviewSpec, SourceBlob

SPEC = RenderSpec(renditions=(Rendition("small", 48), Rendition("tiny", 16, 16, "cover")), format="webp", quality=80)
SPEC_DICT = {
    "renditions": [
        {"name": "small", "width": 48, "height": None, "fit": "contain"},
        {"name": "tiny", "width": 16, "height": 16, "fit": "cover"},
    ],
    "format": "webp",
    "quality": 80,
}
REQUEST = BatchRequest(
    source_container="photos",
    output_container="web",
    source_prefix="2024/",
    output_prefix="out/",
    spec=SPEC,
    max_concurrency=4,
    tolerated_failure_percent=5.0,
    batch_id="b1",
    review=ReviewSpec(sample=3),
)
REQUEST_DICT = {
    "source_container": "photos",
    "source_prefix": "2024/",
    "source_blobs": None,
    "output_container": "web",
    "output_prefix": "out/",
    "spec": SPEC_DICT,
    "max_concurrency": 4,
    "tolerated_failure_percent": 5.0,
    "batch_id": "b1",
    "review": {"sample": 3, "timeout_minutes": 1440, "on_timeout": "reject"},
}
RETRY = RetryOptions(first_interval_ms=10, max_attempts=3, backoff=2.0, max_interval_ms=100)
RETRY_DICT = {"first_interval_ms": 10, "max_attempts": 3, "backoff": 2.0, "max_interval_ms": 100}
OUTPUT = OutputEntry("small", "out/a/small.v1.webp", 48, 32, 1234)
OUTPUT_DICT = {"rendition": "small", "blob": "out/a/small.v1.webp", "width": 48, "height": 32, "bytes": 1234}
DONE = ImageResult("a.jpg", "processed", (OUTPUT,), 412)
DONE_DICT = {"name": "a.jpg", "status": "processed", "outputs": [OUTPUT_DICT], "duration_ms": 412}
FAILED = ImageResult("b.jpg", "failed", (), 3, kind="corrupt", message="bad data", removed_outputs=2)
FAILED_DICT = {
    "name": "b.jpg",
    "status": "failed",
    "outputs": [],
    "duration_ms": 3,
    "kind": "corrupt",
    "message": "bad data",
    "removed_outputs": 2,
}
COUNTS = {"done": 8, "skipped": 1, "failed": 1, "not_started": 0}
PROGRESS = {"total": 10, "done": 8, "skipped": 1, "failed": 1, "in_flight": 0, "not_started": 0, "completed": 10}
STATE = ShardState(next=20, segment=2, counts=COUNTS, inline={"1": (FAILED,)})
STATE_DICT = {"next": 20, "segment": 2, "counts": COUNTS, "inline": {"1": [FAILED_DICT]}}
HELD = ShardState(
    next=20, segment=2, counts=COUNTS, held_progress=PROGRESS, carried=(DONE, None), held_polls=3, fresh=True
)
HELD_DICT = {
    "next": 20,
    "segment": 2,
    "counts": COUNTS,
    "inline": {},
    "fresh": True,
    "held_progress": PROGRESS,
    "carried": [DONE_DICT, {}],
    "held": {"polls": 3},
}
PLAN_BLOB = "out/_batches/b1/runs/r1/plans/p1/00001.json"
DECISION = ReviewDecision("rejected", "timeout", "2026-12-01T10:00:00+00:00", "nobody decided within 5 minutes")
DECISION_DICT = {
    "decision": "rejected",
    "by": "timeout",
    "at": "2026-12-01T10:00:00+00:00",
    "reason": "nobody decided within 5 minutes",
}
RECORDS = (
    ShardRecord(parts=2, segment_size=10, inline={"1": (DONE,)}, not_started_from=15),
    ShardRecord(failed=UnprocessedShard(PLAN_BLOB, 7, "shard_failed", "boom")),
    ShardRecord(not_started=UnprocessedShard(PLAN_BLOB, 5, message="the run's proof was rejected (reviewer)")),
    ShardRecord(),
)
RECORDS_DICT = [
    {"parts": 2, "segment_size": 10, "inline": {"1": [DONE_DICT]}, "not_started_from": 15},
    {"failed": {"plan_blob": PLAN_BLOB, "size": 7, "kind": "shard_failed", "message": "boom"}},
    {"not_started": {"plan_blob": PLAN_BLOB, "size": 5, "message": "the run's proof was rejected (reviewer)"}},
    {},
]

# (the message as the code builds it, the dict it must write: pinned, key order included)
PINNED: list[tuple[Message, dict[str, Any]]] = [
    (RETRY, RETRY_DICT),
    (
        BatchInput(REQUEST, "r1", RETRY, shard_size=None, list_page_size=5000),
        {"request": REQUEST_DICT, "run": "r1", "retry": RETRY_DICT, "shard_size": None, "list_page_size": 5000},
    ),
    (
        BatchInput(REQUEST, "r1", RETRY, 50, 4, hold_poll_ms=(50, 200), segment_size=2),
        {
            "request": REQUEST_DICT,
            "run": "r1",
            "retry": RETRY_DICT,
            "shard_size": 50,
            "list_page_size": 4,
            "hold_poll_ms": [50, 200],
            "segment_size": 2,
        },
    ),
    (
        ListImagesInput("b1", "r1", REQUEST, page_size=5000, shard_size=None),
        {"instance_id": "b1", "run": "r1", "request": REQUEST_DICT, "page_size": 5000, "shard_size": None},
    ),
    (ShardPlan(23, (4, 4, 15), "out/p/", 5), {"total": 23, "shards": [4, 4, 15], "plan": "out/p/", "pages": 5}),
    (
        ShardPlan(9, (3, 6), "out/p/", 1, sample=3, sample_shards=1, rejected=1, not_images=2, extra="out/p/x.json"),
        {
            "total": 9,
            "shards": [3, 6],
            "plan": "out/p/",
            "pages": 1,
            "sample": 3,
            "sample_shards": 1,
            "rejected": 1,
            "not_images": 2,
            "extra": "out/p/x.json",
        },
    ),
    (
        ShardPlan(0, (), "", 0, error="source container 'x' does not exist"),
        {"total": 0, "shards": [], "plan": "", "pages": 0, "error": "source container 'x' does not exist"},
    ),
    (
        ShardInput(
            shard=3,
            slot=1,
            container="web",
            plan_blob=PLAN_BLOB,
            parts_prefix="out/_batches/b1/runs/r1/parts/00003-",
            retry=RETRY,
            controls_blob="out/_batches/b1/runs/r1/controls.json",
            cancel_blob="out/_batches/b1/runs/r1/cancel.json",
        ),
        {
            "shard": 3,
            "slot": 1,
            "controls_blob": "out/_batches/b1/runs/r1/controls.json",
            "container": "web",
            "plan_blob": PLAN_BLOB,
            "parts_prefix": "out/_batches/b1/runs/r1/parts/00003-",
            "cancel_blob": "out/_batches/b1/runs/r1/cancel.json",
            "retry": RETRY_DICT,
        },
    ),
    (
        ShardInput(
            shard=0,
            slot=0,
            container="web",
            plan_blob=PLAN_BLOB,
            parts_prefix="p-",
            retry=RETRY,
            state=STATE,
            deadline=datetime(2026, 12, 1, 12, 30, tzinfo=UTC),
            hold_poll_ms=(50, 200),
            segment_size=2,
        ),
        {
            "shard": 0,
            "slot": 0,
            "controls_blob": None,
            "state": STATE_DICT,
            "container": "web",
            "plan_blob": PLAN_BLOB,
            "parts_prefix": "p-",
            "cancel_blob": None,
            "retry": RETRY_DICT,
            "deadline": "2026-12-01T12:30:00+00:00",
            "hold_poll_ms": [50, 200],
            "segment_size": 2,
        },
    ),
    (STATE, STATE_DICT),
    (HELD, HELD_DICT),
    (
        LoadShardInput("web", PLAN_BLOB, 10, 10, "c.json"),
        {"container": "web", "blob": PLAN_BLOB, "start": 10, "count": 10, "controls_blob": "c.json"},
    ),
    (
        ShardSegment(REQUEST, (SourceBlob("a.jpg", "0x1", 5),), 12, max_concurrency=3),
        {
            "request": REQUEST_DICT,
            "images": [{"name": "a.jpg", "etag": "0x1", "size": 5}],
            "total": 12,
            "max_concurrency": 3,
        },
    ),
    (
        ShardSegment(error=StorageRefusal("blob_gone", "404 BlobNotFound")),
        {"error": {"kind": "blob_gone", "message": "404 BlobNotFound"}},
    ),
    (
        ProcessImageInput("photos", SourceBlob("a.jpg"), "web", "out/", SPEC, cancel_blob="c.json"),
        {
            "source_container": "photos",
            "source": {"name": "a.jpg", "etag": None, "size": None},
            "output_container": "web",
            "output_prefix": "out/",
            "spec": SPEC_DICT,
            "cancel_blob": "c.json",
        },
    ),
    (OUTPUT, OUTPUT_DICT),
    (DONE, DONE_DICT),
    (FAILED, FAILED_DICT),
    (
        ImageResult("c.jpg", "processed", (), 0, recovered=True),
        {"name": "c.jpg", "status": "processed", "outputs": [], "duration_ms": 0, "recovered": True},
    ),
    (
        RecordResultsInput("web", "p-00001.json", (DONE, FAILED)),
        {"container": "web", "blob": "p-00001.json", "results": [DONE_DICT, FAILED_DICT]},
    ),
    (RecordResultsResult("p-00001.json", 2), {"blob": "p-00001.json", "count": 2}),
    (
        RecordResultsResult("p-00001.json", error=StorageRefusal("storage_error", "403")),
        {"blob": "p-00001.json", "error": {"kind": "storage_error", "message": "403"}},
    ),
    (RunHoldInput("web", "c.json"), {"container": "web", "blob": "c.json"}),
    (RunHold("paused"), {"hold": "paused"}),
    (RunHold(None), {"hold": None}),
    (
        ShardOutcome(3, PROGRESS, parts=2, segment_size=10, inline={"0": (DONE,)}, not_started_from=15),
        {
            "shard": 3,
            "progress": PROGRESS,
            "parts": 2,
            "segment_size": 10,
            "inline": {"0": [DONE_DICT]},
            "not_started_from": 15,
        },
    ),
    (
        ShardOutcome(3, PROGRESS, parts=2, segment_size=10, not_started_from=20, parked=STATE),
        {
            "shard": 3,
            "parked": STATE_DICT,
            "progress": PROGRESS,
            "parts": 2,
            "segment_size": 10,
            "not_started_from": 20,
        },
    ),
    (
        ShardOutcome(3, shard_error=StorageRefusal("blob_gone", "gone")),
        {"shard": 3, "shard_error": {"kind": "blob_gone", "message": "gone"}},
    ),
    *zip(RECORDS, RECORDS_DICT, strict=True),
    (DECISION, DECISION_DICT),
    (StorageRefusal("blob_gone", "gone"), {"kind": "blob_gone", "message": "gone"}),
    (UnprocessedShard(PLAN_BLOB, 7, "shard_failed", "boom"), RECORDS_DICT[1]["failed"]),
    (
        RecordDecisionInput("web", "out/_batches/b1/runs/r1/review.json", DECISION),
        {"container": "web", "blob": "out/_batches/b1/runs/r1/review.json", "decision": DECISION_DICT},
    ),
    (
        ProofSheetInput("b1", "r1", REQUEST, "out/p/", RECORDS[:1], 10, "2026-12-02T10:00:00+00:00", "approve"),
        {
            "instance_id": "b1",
            "run": "r1",
            "request": REQUEST_DICT,
            "plan_folder": "out/p/",
            "shard_outcomes": RECORDS_DICT[:1],
            "total": 10,
            "timeout_at": "2026-12-02T10:00:00+00:00",
            "on_timeout": "approve",
        },
    ),
    (ProofSheetResult("web/proof.html", 3, 1), {"proof": "web/proof.html", "sample": 3, "failed": 1}),
    (ProofSheetResult(None, error="refused"), {"proof": None, "error": "refused"}),
    (
        NotifyInput(
            instance_id="b1",
            run="r1",
            request=REQUEST,
            shard_outcomes=RECORDS,
            progress=PROGRESS,
            status="succeeded",
            started="2026-12-01T10:00:00+00:00",
            finished="2026-12-01T10:05:00+00:00",
            plan_folder="out/p/",
            review={"sample": 3, "decision": "approved"},
        ),
        {
            "instance_id": "b1",
            "run": "r1",
            "request": REQUEST_DICT,
            "plan_folder": "out/p/",
            "extra_blob": None,
            "shard_outcomes": RECORDS_DICT,
            "progress": PROGRESS,
            "status": "succeeded",
            "started": "2026-12-01T10:00:00+00:00",
            "finished": "2026-12-01T10:05:00+00:00",
            "listing_error": None,
            "review": {"sample": 3, "decision": "approved"},
        },
    ),
    (
        BatchSummary(
            "b1",
            "r1",
            "succeeded",
            PROGRESS,
            10.0,
            "2026-12-01T10:00:00+00:00",
            "2026-12-01T10:05:00+00:00",
            "web/m.json",
            "web/index.html",
            warnings=("w",),
            review={"sample": 3},
            webhook="delivered",
        ),
        {
            "batch_id": "b1",
            "run": "r1",
            "status": "succeeded",
            "counts": PROGRESS,
            "failure_percent": 10.0,
            "started": "2026-12-01T10:00:00+00:00",
            "finished": "2026-12-01T10:05:00+00:00",
            "manifest": "web/m.json",
            "warnings": ["w"],
            "review": {"sample": 3},
            "report": "web/index.html",
            "webhook": "delivered",
        },
    ),
    (
        BatchSummary("b1", "r1", "failed", PROGRESS, 10.0, "s", "f", None, None, manifest_error="403"),
        {
            "batch_id": "b1",
            "run": "r1",
            "status": "failed",
            "counts": PROGRESS,
            "failure_percent": 10.0,
            "started": "s",
            "finished": "f",
            "manifest": None,
            "report": None,
            "manifest_error": "403",
        },
    ),
]


def _id(case: tuple[Message, dict[str, Any]]) -> str:
    return type(case[0]).__name__


@pytest.mark.parametrize("message, wire", PINNED, ids=[_id(c) for c in PINNED])
def test_the_current_code_writes_the_pinned_dict_and_reads_it_back(message: Message, wire: dict[str, Any]) -> None:
    written = message.to_dict()
    assert written == wire
    assert list(json.dumps(written)) == list(json.dumps(wire)), "same keys in the same order: histories stay the same"
    through_json = json.loads(json.dumps(written))
    assert type(message).from_dict(through_json) == message
    assert type(message).from_dict(through_json).to_dict() == wire


def test_every_message_type_has_a_pinned_example() -> None:
    def subclasses(cls: type) -> set[type]:
        return {sub for direct in cls.__subclasses__() for sub in {direct, *subclasses(direct)}}

    assert subclasses(Message) == {type(message) for message, _ in PINNED}


@pytest.mark.parametrize(
    "message_type, wire, field",
    [
        (BatchInput, {"run": "r1", "retry": RETRY_DICT}, "request"),
        (BatchInput, {"request": REQUEST_DICT, "run": 7, "retry": RETRY_DICT}, "run"),
        (BatchInput, {"request": {**REQUEST_DICT, "spec": None}, "run": "r", "retry": RETRY_DICT}, "request"),
        (
            BatchInput,
            {"request": {k: v for k, v in REQUEST_DICT.items() if k != "spec"}, "run": "r", "retry": RETRY_DICT},
            "request.spec",
        ),
        (
            BatchInput,
            {"request": REQUEST_DICT, "run": "r", "retry": {**RETRY_DICT, "max_attempts": "3"}},
            "retry.max_attempts",
        ),
        (BatchInput, {"request": REQUEST_DICT, "run": "r", "retry": RETRY_DICT, "hold_poll_ms": [1]}, "hold_poll_ms"),
        (ListImagesInput, {"instance_id": "b1", "request": REQUEST_DICT}, "run"),
        (ShardPlan, {"total": 1, "shards": [1, "2"], "plan": "p", "pages": 0}, "shards[1]"),
        (ShardPlan, {"total": True, "shards": [], "plan": "p", "pages": 0}, "total"),
        (ShardInput, {"shard": 0, "slot": 0, "container": "c", "plan_blob": "p", "retry": RETRY_DICT}, "parts_prefix"),
        (
            ShardInput,
            {"shard": 0, "slot": 0, "container": "c", "plan_blob": "p", "parts_prefix": "x", "retry": RETRY_DICT}
            | {"state": {**STATE_DICT, "counts": {"done": "8"}}},
            "state.counts.done",
        ),
        (
            ShardInput,
            {"shard": 0, "slot": 0, "container": "c", "plan_blob": "p", "parts_prefix": "x", "retry": RETRY_DICT}
            | {"deadline": "tomorrow"},
            "deadline",
        ),
        (ShardState, {**STATE_DICT, "inline": {"1": [{**FAILED_DICT, "outputs": None}]}}, "inline.1[0].outputs"),
        (LoadShardInput, {"container": "web"}, "blob"),
        (ShardSegment, {"request": REQUEST_DICT, "images": [{"etag": "x"}], "total": 1}, "images[0].name"),
        (ProcessImageInput, {"source_container": "s", "output_container": "o", "output_prefix": ""}, "source"),
        (ImageResult, {**DONE_DICT, "status": "done"}, "status"),
        (ImageResult, {**DONE_DICT, "outputs": [{**OUTPUT_DICT, "width": 4.5}]}, "outputs[0].width"),
        (ImageResult, {"name": "a.jpg", "status": "processed", "outputs": []}, "duration_ms"),
        (RecordResultsInput, {"container": "c", "blob": "b", "results": [DONE_DICT, "x"]}, "results[1]"),
        (RunHold, {"hold": "stopped"}, "hold"),
        (ShardOutcome, {"shard": 1, "progress": PROGRESS, "parts": 1}, "segment_size"),
        (ShardRecord, {"failed": {"plan_blob": "p", "size": 3}}, "failed"),
        (ReviewDecision, {**DECISION_DICT, "decision": "maybe"}, "decision"),
        (
            NotifyInput,
            {"instance_id": "b", "run": "r", "request": REQUEST_DICT, "shard_outcomes": [{"parts": 1}]}
            | {"status": "succeeded", "progress": PROGRESS, "started": "s", "finished": "f"},
            "shard_outcomes[0].segment_size",
        ),
        (BatchSummary, {"batch_id": "b", "status": "succeeded", "counts": PROGRESS}, "failure_percent"),
    ],
)
def test_a_missing_or_mistyped_field_is_refused_by_name(message_type: type[Message], wire: Any, field: str) -> None:
    with pytest.raises(MessageError) as refused:
        message_type.from_dict(wire)
    assert refused.value.field == field
    assert f"'{field}'" in str(refused.value) and message_type.__name__ in str(refused.value)


def test_a_payload_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(MessageError, match="must be a JSON object, got list"):
        ShardOutcome.from_dict([1, 2])
    with pytest.raises(MessageError, match="must be a JSON object, got null"):
        BatchInput.from_dict(None)


@pytest.mark.parametrize("version", [0, 2, "1", True, None])
def test_an_unknown_schema_version_is_refused(version: Any) -> None:
    for message, wire in PINNED:
        with pytest.raises(MessageError, match="schema version") as refused:
            type(message).from_dict({**wire, "v": version})
        assert refused.value.field == "v"


def test_a_nested_message_of_an_unknown_version_is_refused_by_its_path() -> None:
    wire = RecordResultsInput("c", "b", (DONE,)).to_dict()
    wire["results"][0]["v"] = 2
    with pytest.raises(MessageError) as refused:
        RecordResultsInput.from_dict(wire)
    assert refused.value.field == "results[0].v"


def test_version_1_is_written_without_a_key_and_read_with_or_without_it() -> None:
    assert "v" not in DONE.to_dict()
    assert ImageResult.from_dict({**DONE_DICT, "v": 1}) == DONE


def test_unknown_keys_are_ignored_so_a_newer_sender_may_add_fields() -> None:
    assert ImageResult.from_dict({**DONE_DICT, "added_later": [1, 2]}) == DONE


def test_list_images_derives_what_it_needs_from_the_request() -> None:
    listing = ListImagesInput("b1", "r1", REQUEST)
    assert (listing.container, listing.prefix, listing.output_container, listing.output_prefix) == (
        "photos",
        "2024/",
        "web",
        "out/",
    )
    assert listing.review_sample == 3 and not listing.exclude_own_outputs


def test_a_list_images_input_of_the_older_wider_shape_still_reads() -> None:
    """Before the typed boundary the orchestrator also sent the request's fields beside
    it; such a payload in flight at deploy time reads the same."""
    older = {
        **ListImagesInput("b1", "r1", REQUEST, 5000, None).to_dict(),
        "container": "photos",
        "prefix": "2024/",
        "source_list_blob": None,
        "output_container": "web",
        "output_prefix": "out/",
        "exclude_own_outputs": False,
        "max_concurrency": 4,
        "review_sample": 3,
    }
    assert ListImagesInput.from_dict(older) == ListImagesInput("b1", "r1", REQUEST, 5000, None)


def test_no_message_class_can_be_serialised_by_the_sdk_envelope() -> None:
    """The SDK wraps objects that have ``to_json`` in a class-path envelope; ours must not
    have it, so only the plain ``to_dict()`` output is ever sent."""
    for message, _ in PINNED:
        assert not hasattr(message, "to_json") and not hasattr(type(message), "from_json")


def test_function_names_are_unique_and_cover_the_app() -> None:
    names = [*function_names.ORCHESTRATORS, *function_names.ACTIVITIES]
    assert len(set(names)) == len(names) == 10
