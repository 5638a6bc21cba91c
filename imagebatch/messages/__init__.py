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

from imagebatch.messages.base import (
    BATCH_STATUSES,
    IMAGE_STATUSES,
    VERSION_KEY,
    BatchStatus,
    Fields,
    ImageStatus,
    Message,
    MessageError,
)
from imagebatch.messages.batch import BatchInput, ListImagesInput, RetryOptions, ShardPlan
from imagebatch.messages.image import (
    ImageResult,
    OutputEntry,
    ProcessImageInput,
    StorageRefusal,
)
from imagebatch.messages.lane import (
    HOLDS,
    LoadShardInput,
    RecordResultsInput,
    RecordResultsResult,
    RunHold,
    RunHoldInput,
    ShardInput,
    ShardSegment,
    ShardState,
)
from imagebatch.messages.outcomes import ShardOutcome, ShardRecord, UnprocessedShard
from imagebatch.messages.review import DECISIONS, ProofSheetInput, ProofSheetResult, RecordDecisionInput, ReviewDecision
from imagebatch.messages.summary import BatchSummary, NotifyInput

__all__ = [
    "BATCH_STATUSES",
    "DECISIONS",
    "HOLDS",
    "IMAGE_STATUSES",
    "VERSION_KEY",
    "BatchInput",
    "BatchStatus",
    "BatchSummary",
    "Fields",
    "ImageResult",
    "ImageStatus",
    "ListImagesInput",
    "LoadShardInput",
    "Message",
    "MessageError",
    "NotifyInput",
    "OutputEntry",
    "ProcessImageInput",
    "ProofSheetInput",
    "ProofSheetResult",
    "RecordDecisionInput",
    "RecordResultsInput",
    "RecordResultsResult",
    "RetryOptions",
    "ReviewDecision",
    "RunHold",
    "RunHoldInput",
    "ShardInput",
    "ShardOutcome",
    "ShardPlan",
    "ShardRecord",
    "ShardSegment",
    "ShardState",
    "StorageRefusal",
    "UnprocessedShard",
]
