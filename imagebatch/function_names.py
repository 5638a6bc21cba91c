"""The names of the app's orchestrators and activities, in one place.

Durable Functions finds a function by name: the parent schedules ``ProcessImage`` by
name, the extension records the name in every history, and an instance in flight
replays against those recorded names. Renaming a function therefore breaks every
running batch; these constants are what ``function_app.py``, the blueprints
(``@bp.function_name``), the orchestrators (``call_activity`` /
``call_sub_orchestrator``) and the tests use, and ``tests/test_function_index.py``
pins their values.
"""

from __future__ import annotations

from typing import Final

# Orchestrators
IMAGE_PROCESSING_ORCHESTRATOR: Final = "ImageProcessing_Orchestrator"
"""The batch: plan, lanes of shards, (proof and decision), NotifyCompletion."""
SHARD_ORCHESTRATOR: Final = "ImageProcessing_Shard"
"""One lane: a shard's images one at a time (a sub-orchestration of the batch)."""

# Activities
LIST_IMAGES: Final = "ListImages"
LOAD_SHARD: Final = "LoadShard"
PROCESS_IMAGE: Final = "ProcessImage"
RECORD_SHARD_RESULTS: Final = "RecordShardResults"
NOTIFY_COMPLETION: Final = "NotifyCompletion"
READ_RUN_HOLD: Final = "ReadRunHold"
WRITE_PROOF_SHEET: Final = "WriteProofSheet"
RECORD_REVIEW_DECISION: Final = "RecordReviewDecision"

ORCHESTRATORS: Final = (IMAGE_PROCESSING_ORCHESTRATOR, SHARD_ORCHESTRATOR)
ACTIVITIES: Final = (
    LIST_IMAGES,
    LOAD_SHARD,
    PROCESS_IMAGE,
    RECORD_SHARD_RESULTS,
    NOTIFY_COMPLETION,
    READ_RUN_HOLD,
    WRITE_PROOF_SHEET,
    RECORD_REVIEW_DECISION,
)
