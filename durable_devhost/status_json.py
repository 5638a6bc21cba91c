"""What the management API answers about an instance: the extension's status payload and history.

Pure functions over stored rows and history events, copied from the extension's
``DurableClient`` (azure-functions-durable-extension src/WebJobs.Extensions.DurableTask/
ContextImplementations/DurableClient.cs) so the SDK's client parses them as it would on Azure.
"""

from __future__ import annotations

import json
from typing import Any

from . import history as h
from .history import EventType
from .runtime_status import ORDERED
from .store_records import InstanceRow


def loads(text: str | None) -> Any:
    return json.loads(text) if text is not None else None


def status_json(row: InstanceRow, show_input: bool) -> dict[str, Any]:
    """The extension's ``StatusResponsePayload`` (azure-functions-durable-extension
    src/WebJobs.Extensions.DurableTask/HttpApiHandler.cs)."""
    return {
        "name": row.name,
        "instanceId": row.instance_id,
        "runtimeStatus": row.status,
        "input": loads(row.input) if show_input else None,
        "customStatus": loads(row.custom_status),
        "output": loads(row.output),
        "createdTime": h.format_status_ts(row.created),
        "lastUpdatedTime": h.format_status_ts(row.updated),
    }


def _scheduled_time(timestamp: str) -> str:
    """``historyItem["ScheduledTime"] = (DateTime)historyItem["Timestamp"]``, serialised again.

    The cast parses the (string) timestamp with ``Convert.ToDateTime``, which yields a *local* DateTime;
    Newtonsoft writes it with ``FFFFFFF`` (trailing zeros dropped) and the local offset, ``+00:00`` on
    Azure Functions (UTC)."""
    dt = h.parse_ts(timestamp)
    fraction = f"{dt.microsecond:06d}0".rstrip("0")
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "+00:00"


def summarised_history(
    events: list[dict[str, Any]], show_history_output: bool, show_input: bool
) -> list[dict[str, Any]]:
    """The ``historyEvents`` the extension returns for ``showHistory``.

    A copy of azure-functions-durable-extension src/WebJobs.Extensions.DurableTask/ContextImplementations/
    DurableClient.cs ``GetDurableOrchestrationStatusAsync``: ``EventType`` as its name; TaskScheduled /
    SubOrchestrationInstanceCreated rows are folded into their completion (``ScheduledTime``,
    ``FunctionName``, ``Input``) and removed, as are OrchestratorStarted/Completed; ``Result`` only with
    ``showHistoryOutput`` and then as JSON (``ParseToJToken``); ``EventId``/``IsPlayed`` dropped.
    """
    items = [dict(ev) for ev in events]
    mapper: dict[str, tuple[int, dict[str, Any]]] = {}
    drop: list[int] = []
    for i, item in enumerate(items):
        try:
            et = EventType(item["EventType"])
        except ValueError:
            continue
        name = et.name.title().replace("_", "")
        item["EventType"] = name
        if et in (EventType.TASK_SCHEDULED, EventType.SUB_ORCHESTRATION_INSTANCE_CREATED):
            mapper[f"{name}_{item.get('EventId')}"] = (i, item)
            item.pop("Version", None)
        elif et in (
            EventType.TASK_COMPLETED,
            EventType.TASK_FAILED,
            EventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED,
            EventType.SUB_ORCHESTRATION_INSTANCE_FAILED,
        ):
            task = et in (EventType.TASK_COMPLETED, EventType.TASK_FAILED)
            prefix = "TaskScheduled" if task else "SubOrchestrationInstanceCreated"
            found = mapper.get(f"{prefix}_{item.get('TaskScheduledId')}")
            if found is not None:
                index, scheduled = found
                item["ScheduledTime"] = _scheduled_time(scheduled["Timestamp"])
                item["FunctionName"] = scheduled.get("Name")
                if show_input:
                    item["Input"] = scheduled.get("Input")
                drop.append(index)
            item.pop("TaskScheduledId", None)
            completed = et in (EventType.TASK_COMPLETED, EventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED)
            if completed:
                if show_history_output:
                    item["Result"] = _parse_token(item.get("Result"))
                else:
                    item.pop("Result", None)
        elif et == EventType.EXECUTION_STARTED:
            function_name = item.pop("Name", None)
            item["FunctionName"] = function_name
            for key in ("OrchestrationInstance", "ParentInstance", "Version", "Tags"):
                item.pop(key, None)
        elif et == EventType.EXECUTION_COMPLETED:
            status = item.get("OrchestrationStatus")
            if isinstance(status, int) and 0 <= status < len(ORDERED):
                item["OrchestrationStatus"] = str(ORDERED[status])
            if show_history_output:
                item["Result"] = _parse_token(item.get("Result"))
            else:
                item.pop("Result", None)
        elif et == EventType.TIMER_FIRED:
            item.pop("TimerId", None)
        elif et in (EventType.ORCHESTRATOR_STARTED, EventType.ORCHESTRATOR_COMPLETED):
            drop.append(i)
        if not show_input:
            item.pop("Input", None)
        item.pop("EventId", None)
        item.pop("IsPlayed", None)
    dropped = set(drop)
    return [item for i, item in enumerate(items) if i not in dropped]


def _parse_token(value: Any) -> Any:
    """``DurableClient.ParseToJToken``: JSON when it parses, the trimmed raw text otherwise."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return ""
    try:
        return json.loads(text)
    except ValueError:
        return text
