"""The Durable client binding JSON and the instance management URLs.

Everything here copies the Durable Functions extension (2.13.x, legacy non-gRPC
path used for Python), so the *unmodified* ``DurableOrchestrationClient`` of
``azure-functions-durable`` 1.x can talk to this host:

* ``BindingHelper.DurableOrchestrationClientToString``: the JSON string passed to a
  ``durableClient`` parameter (``taskHubName``, ``creationUrls``, ``managementUrls``
  with the placeholder id ``INSTANCEID``, ``baseUrl``,
  ``requiredQueryStringParameters``, ``rpcBaseUrl``).
* ``HttpApiHandler.GetClientResponseLinks``: the management URLs (the instance id is
  form-url-encoded, ``taskHub``/``connection`` then the system key in the query).
* ``HttpApiHandler.CreateCheckStatusResponseMessage``: the 202 body of the start API
  (it has no ``rewindPostUri``, unlike the SDK's own ``create_check_status_response``).

The public webhook base is ``<origin>/runtime/webhooks/durabletask``. The SDK sends all
of its calls to ``rpcBaseUrl``; the extension serves that from a separate loopback
listener (``http://127.0.0.1:17071/durabletask/``); this host serves it on its own
port under ``/durabletask/``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import quote_plus

WEBHOOK_PATH = "/runtime/webhooks/durabletask"
RPC_PATH = "/durabletask"
INSTANCE_PLACEHOLDER = "INSTANCEID"
DEFAULT_CONNECTION_NAME = "Storage"  # the extension's name for AzureWebJobsStorage

# Keys of HttpManagementPayload, in the extension's order.
MANAGEMENT_KEYS = (
    "id",
    "statusQueryGetUri",
    "sendEventPostUri",
    "terminatePostUri",
    "rewindPostUri",
    "purgeHistoryDeleteUri",
    "restartPostUri",
    "suspendPostUri",
    "resumePostUri",
)
# Keys of the anonymous object CreateCheckStatusResponseMessage serialises (no rewind).
CHECK_STATUS_KEYS = tuple(k for k in MANAGEMENT_KEYS if k != "rewindPostUri")


@dataclass
class ClientUrls:
    """Builds every URL the extension hands out, for one origin and task hub.

    ``origin`` is mutable because an in-process host bound to port 0 only learns
    its port after the socket is open.
    """

    origin: str
    hub_name: str
    connection_name: str = DEFAULT_CONNECTION_NAME
    system_key: str | None = None

    @property
    def base_url(self) -> str:
        """``baseUrl``: the public webhook root, no trailing slash (``GetBaseUrl``)."""
        return self.origin.rstrip("/") + WEBHOOK_PATH

    @property
    def rpc_base_url(self) -> str:
        """``rpcBaseUrl``: where the Python SDK sends every client call (trailing slash)."""
        return self.origin.rstrip("/") + RPC_PATH + "/"

    @property
    def required_query(self) -> str:
        """``requiredQueryStringParameters``: the webhook's query (the system key in Azure)."""
        return f"code={quote_plus(self.system_key)}" if self.system_key else ""

    def _query_suffix(self, task_hub: str | None, connection: str | None) -> str:
        suffix = (
            f"taskHub={quote_plus(task_hub or self.hub_name)}"
            f"&connection={quote_plus(connection or self.connection_name)}"
        )
        if self.required_query:
            suffix += "&" + self.required_query
        return suffix

    def management_urls(
        self,
        instance_id: str,
        *,
        origin: str | None = None,
        task_hub: str | None = None,
        connection: str | None = None,
    ) -> dict[str, str]:
        """``GetClientResponseLinks``; ``origin`` replaces the host part (request URL)."""
        root = (origin or self.origin).rstrip("/") + WEBHOOK_PATH
        prefix = f"{root}/instances/{quote_plus(instance_id)}"
        q = self._query_suffix(task_hub, connection)
        return {
            "id": instance_id,
            "statusQueryGetUri": f"{prefix}?{q}",
            "sendEventPostUri": f"{prefix}/raiseEvent/{{eventName}}?{q}",
            "terminatePostUri": f"{prefix}/terminate?reason={{text}}&{q}",
            "rewindPostUri": f"{prefix}/rewind?reason={{text}}&{q}",
            "purgeHistoryDeleteUri": f"{prefix}?{q}",
            "restartPostUri": f"{prefix}/restart?{q}",
            "suspendPostUri": f"{prefix}/suspend?reason={{text}}&{q}",
            "resumePostUri": f"{prefix}/resume?reason={{text}}&{q}",
        }

    def check_status_payload(
        self,
        instance_id: str,
        *,
        origin: str | None = None,
        task_hub: str | None = None,
        connection: str | None = None,
    ) -> dict[str, str]:
        """Body of the extension's own 202 (start API): management URLs minus rewind."""
        urls = self.management_urls(instance_id, origin=origin, task_hub=task_hub, connection=connection)
        return {k: urls[k] for k in CHECK_STATUS_KEYS}

    def creation_urls(self) -> dict[str, str]:
        """``GetInstanceCreationLinks`` (the query suffix is kept even when empty)."""
        prefix = self.base_url + "/orchestrators/{functionName}[/{instanceId}]"
        q = self.required_query
        return {
            "createNewInstancePostUri": f"{prefix}?{q}",
            "createAndWaitOnNewInstancePostUri": (
                f"{prefix}?timeout={{timeoutInSeconds}}&pollingInterval={{intervalInSeconds}}&{q}"
            ),
        }

    def binding_payload(self, *, task_hub: str | None = None, connection: str | None = None) -> dict:
        """``OrchestrationClientInputData`` as a dict (see :meth:`binding_json`)."""
        return {
            "taskHubName": task_hub or self.hub_name,
            "creationUrls": self.creation_urls(),
            "managementUrls": self.management_urls(INSTANCE_PLACEHOLDER, task_hub=task_hub, connection=connection),
            "baseUrl": self.base_url,
            "requiredQueryStringParameters": self.required_query,
            "rpcBaseUrl": self.rpc_base_url,
        }

    def binding_json(self, *, task_hub: str | None = None, connection: str | None = None) -> str:
        """The string the worker passes to a ``durableClient`` parameter (``generic``/``str``)."""
        return json.dumps(self.binding_payload(task_hub=task_hub, connection=connection))
