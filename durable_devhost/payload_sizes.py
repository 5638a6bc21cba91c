"""Payload sizes measured the way Azure Storage would, since the dev host stores everything inline.

The engine records each orchestration input/output, activity input/output and custom status;
:class:`PayloadSizes` keeps the largest of each kind and warns (once per kind and limit) when one
crosses a limit of the Azure Storage provider: there it would be offloaded to a blob, or (custom
status) fail the orchestration.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("durable_devhost")

# Azure Storage provider limits the dev host measures payloads against (it stores everything inline):
# durabletask src/DurableTask.AzureStorage/MessageManager.cs: MaxStorageQueuePayloadSizeInBytes = 45 * 1024,
#   compared with Encoding.UTF8.GetByteCount(message) -> larger messages are uploaded to a blob;
# durabletask src/DurableTask.AzureStorage/Tracking/AzureTableTrackingStore.cs: MaxTablePropertySizeInBytes =
#   60 * 1024, compared with Encoding.Unicode.GetByteCount(property) -> larger properties go to a blob;
# azure-functions-durable-extension .../DurableOrchestrationContext.cs SetCustomStatus: 16 KB UTF-16 (fails).
QUEUE_MESSAGE_LIMIT = 45 * 1024
TABLE_PROPERTY_LIMIT = 60 * 1024
CUSTOM_STATUS_LIMIT_KB = 16
PAYLOAD_KINDS = ("orchestration_input", "orchestration_output", "activity_input", "activity_output", "custom_status")


class PayloadSizes:
    """The largest payload of each kind, and the warnings already given."""

    def __init__(self) -> None:
        self._largest: dict[str, dict[str, Any]] = {}  # largest payload of each kind
        self._warned: set[tuple[str, str]] = set()

    def record(self, kind: str, function: str, instance_id: str, text: str | None) -> None:
        """Measure one payload the way Azure Storage would and warn the first time a kind crosses a limit."""
        if text is None:
            return
        utf8 = len(text.encode("utf-8", "surrogatepass"))
        utf16 = len(text.encode("utf-16-le", "surrogatepass"))
        exceeds = []
        if kind == "custom_status":
            if int(utf16 / 1024.0) > CUSTOM_STATUS_LIMIT_KB:
                exceeds.append("custom_status_16KB")
        else:
            if utf8 > QUEUE_MESSAGE_LIMIT:
                exceeds.append("queue_message_45KB")
            if utf16 > TABLE_PROPERTY_LIMIT:
                exceeds.append("table_property_60KB")
        best = self._largest.get(kind)
        if best is None or utf16 > best["utf16_bytes"]:
            self._largest[kind] = {
                "function": function,
                "instance_id": instance_id,
                "utf8_bytes": utf8,
                "utf16_bytes": utf16,
                "exceeds": exceeds,
            }
        for limit in exceeds:
            if (kind, limit) in self._warned:
                continue
            self._warned.add((kind, limit))
            effect = {
                "queue_message_45KB": "over 45 KB (UTF-8): on Azure Storage this queue message is offloaded to a "
                "blob (compressed upload + download on every dequeue)",
                "table_property_60KB": "over 60 KB (UTF-16): on Azure Storage this table property is offloaded "
                "to a blob (an extra blob read on every history load / status query)",
                "custom_status_16KB": "over the 16 KB (UTF-16) custom status limit: the extension fails the "
                "orchestration",
            }[limit]
            log.warning(
                "payload size: %s of '%s' (instance %s) is %d bytes UTF-8 / %d bytes UTF-16, %s",
                kind,
                function,
                instance_id,
                utf8,
                utf16,
                effect,
            )

    def stats(self) -> dict[str, dict[str, Any]]:
        """The largest payload seen of each kind (``orchestration_input``, ``orchestration_output``,
        ``activity_input``, ``activity_output``, ``custom_status``): ``function``, ``instance_id``,
        ``utf8_bytes``, ``utf16_bytes`` and ``exceeds`` (which Azure Storage limits it crosses)."""
        return {k: dict(v, exceeds=list(v["exceeds"])) for k, v in self._largest.items()}
