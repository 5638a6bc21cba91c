"""What the extension rejects while it reads the SDK's state, before any action is replayed.

``result.Json.ToObject<OutOfProcOrchestratorState>()`` parses every action's retry options
(:func:`parse_retry_options`) and ``SetCustomStatus`` limits the custom status to 16 KB
(:func:`check_custom_status_size`); either failure fails the instance at once with
"Orchestrator function '<name>' failed: <message>" (:class:`StateError`).
"""

from __future__ import annotations

import json
from typing import Any

# azure-functions-durable-extension src/WebJobs.Extensions.DurableTask/RetryOptions.cs
# (DefaultMaxRetryinterval) and AzureStorageDurabilityProvider.MaximumDelayTime: both 6 days.
MAX_RETRY_INTERVAL_MS = 6 * 24 * 3600 * 1000
MAX_DELAY_DAYS = 6
_INT32_MAX = 2**31 - 1


class StateError(Exception):
    """Thrown while the extension reads the SDK's state (``ToObject``/``SetCustomStatus``): fails the
    instance with "Orchestrator function '<name>' failed: <message>" before any action is replayed."""


def _int32(value: Any) -> int:
    """Newtonsoft ``JToken.Value<int>()``."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise StateError("Input string was not in a correct format.") from None
    if not -(2**31) <= number <= _INT32_MAX:
        raise StateError("Value was either too large or too small for an Int32.")
    return number


def parse_retry_options(options: Any) -> dict[str, Any]:
    """azure-functions-durable-extension src/WebJobs.Extensions.DurableTask/RetryOptionsConverter.cs.

    ``firstRetryIntervalInMilliseconds`` and ``maxNumberOfAttempts`` are required (ArgumentException with
    parameter name ``reader``), every interval is read with ``Value<int>()``, and DTFx's
    ``RetryOptions(firstRetryInterval, ...)`` constructor (durabletask src/DurableTask.Core/RetryOptions.cs)
    rejects a first interval <= 0. The other fields are optional; ``MaxRetryInterval`` defaults to 6 days.
    """
    if not isinstance(options, dict):
        raise StateError("Object reference not set to an instance of an object.")
    out: dict[str, Any] = {}
    for required in ("firstRetryIntervalInMilliseconds", "maxNumberOfAttempts"):
        if required not in options:
            raise StateError(f"Invalid JSON. Must contain field {required} (Parameter 'reader')")
    out["firstRetryIntervalInMilliseconds"] = _int32(options["firstRetryIntervalInMilliseconds"])
    out["maxNumberOfAttempts"] = _int32(options["maxNumberOfAttempts"])
    if out["firstRetryIntervalInMilliseconds"] <= 0:
        raise StateError(
            "Invalid interval.  Specify a TimeSpan value greater then TimeSpan.Zero. (Parameter 'firstRetryInterval')"
        )
    if "backoffCoefficient" in options:
        out["backoffCoefficient"] = float(options["backoffCoefficient"])
    out["maxRetryIntervalInMilliseconds"] = (
        _int32(options["maxRetryIntervalInMilliseconds"])
        if "maxRetryIntervalInMilliseconds" in options
        else MAX_RETRY_INTERVAL_MS
    )
    if "retryTimeoutInMilliseconds" in options:
        out["retryTimeoutInMilliseconds"] = _int32(options["retryTimeoutInMilliseconds"])
    return out


def check_state_actions(actions: Any) -> None:
    """What ``result.Json.ToObject<OutOfProcOrchestratorState>()`` rejects (only the retry options here)."""
    stack = [actions]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            if item.get("retryOptions") is not None or item.get("actionType") in (1, 3):
                parse_retry_options(item.get("retryOptions"))
            stack.extend(item.get("compoundActions") or [])


MAX_CUSTOM_STATUS_KB = 16  # DurableOrchestrationContext.SetCustomStatus: MaxCustomStatusPayloadSizeInKB


def newtonsoft_json(value: Any) -> str:
    """``JToken.ToString(Formatting.None)``: compact, non-ASCII characters not escaped."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def utf16_bytes(text: str) -> int:
    """``Encoding.Unicode.GetByteCount``."""
    return len(text.encode("utf-16-le", "surrogatepass"))


def check_custom_status_size(custom: Any) -> None:
    """azure-functions-durable-extension src/WebJobs.Extensions.DurableTask/MessagePayloadDataConverter.cs
    ``Serialize(value, maxSizeInKB)``: ``(int)(Encoding.Unicode.GetByteCount(json) / 1024.0) > 16`` throws."""
    size_kb = int(utf16_bytes(newtonsoft_json(custom)) / 1024.0)
    if size_kb > MAX_CUSTOM_STATUS_KB:
        raise StateError(
            "The UTF-16 size of the JSON-serialized payload must not exceed "
            f"{MAX_CUSTOM_STATUS_KB:,} KB. The current payload size is {size_kb:,} KB."
        )
