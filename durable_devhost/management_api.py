"""The Durable Functions HTTP management API, served from the :class:`Engine`.

A port of the extension's ``HttpApiHandler.HandleRequestAsync`` (2.13.x), served both
under the public webhook root ``/runtime/webhooks/durabletask/`` and under the local
RPC root ``/durabletask/`` that the Python SDK calls (``rpcBaseUrl``). Routes, status
codes and bodies are the extension's, because ``DurableOrchestrationClient`` branches
on them (azure-functions-durable-extension src/WebJobs.Extensions.DurableTask/HttpApiHandler.cs):

* ``orchestrators/{functionName}/{instanceId?}`` POST: start. 202 + check-status body,
  ``Location`` and ``Retry-After: 10``; ``?timeout=&pollingInterval=`` waits first.
  Unknown function -> 400 ``{"Message", "ExceptionMessage", "ExceptionType",
  "StackTrace"}``. An id that is still Running/Pending/Suspended -> the extension's
  default ``OverridableExistingInstanceStates=NonRunningStates`` makes DTFx throw
  ``OrchestrationAlreadyExistsException`` (an ``InvalidOperationException``), which the
  handler's generic catch turns into **500** "Something went wrong while processing
  your request" (not 409).
* ``instances/{instanceId?}/{operation?}``: GET one (200 finished / 202 + ``Location``
  + ``Retry-After: 5`` while running / 404 empty), GET list (``createdTimeFrom``,
  ``createdTimeTo``, ``runtimeStatus`` comma list, ``instanceIdPrefix``, ``showInput``,
  ``top`` + ``x-ms-continuation-token``), DELETE one (200 ``{"instancesDeleted": n}`` /
  404), DELETE by filter (``createdTimeFrom`` required, 404 when nothing deleted), POST
  ``terminate|suspend|resume`` (202 / 404 / 410 when finished), ``restart``.
* ``instances/{instanceId}/raiseEvent/{eventName}`` POST: 202 / 404 / 410 (finished) /
  400 when the content type is not ``application/json``. The body's JSON is kept as is,
  so the SDK's double-encoded payload reaches the orchestrator as JSON *text*
  (docs/devhost.md, "The double encoding is kept").

Query parameter names are case-insensitive and booleans parse like .NET
``bool.TryParse`` (``True``/``true``/``TRUE``): :mod:`.management_protocol`. Values given to the engine are JSON
text re-serialised compactly, as Newtonsoft/DTFx store them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import TYPE_CHECKING

from aiohttp import web

from .client_binding import ClientUrls
from .errors import InstanceExistsError, InstanceGoneError, InstanceNotFoundError, UnknownFunctionError
from .management_protocol import (
    DEFAULT_PAGE_SIZE,
    FINISHED_STATES,
    RUNNING_STATES,
    ArgumentError,
    Query,
    compact_json,
    decode_token,
    empty,
    encode_token,
    error_response,
    json_response,
    validate_instance_id,
)
from .runtime_status import RuntimeStatus

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger("durable_devhost.management")


class ManagementApi:
    """The extension's HTTP API over an :class:`~durable_devhost.engine.Engine`."""

    def __init__(self, engine: Engine | None, urls: ClientUrls) -> None:
        self.engine = engine
        self.urls = urls

    @property
    def _engine(self) -> Engine:
        if self.engine is None:  # a host built without an engine serves HTTP triggers only
            raise RuntimeError("the management API needs an engine; this host was built without one")
        return self.engine

    # -- dispatch (HandleRequestAsync) -------------------------------------------------

    async def handle(self, request: web.Request) -> web.Response:
        tail = request.match_info.get("tail", "")
        segments = [s for s in tail.strip("/").split("/")] if tail.strip("/") else []
        method = request.method.upper()
        try:
            return await self._dispatch(request, method, segments)
        except ArgumentError as e:
            return error_response(
                400, "One or more of the arguments submitted is incorrect", e, "System.ArgumentException"
            )
        except UnknownFunctionError as e:
            return error_response(
                400, "One or more of the arguments submitted is incorrect", e, "System.ArgumentException"
            )
        except Exception as e:  # the handler's last-resort catch
            log.exception("management API request %s %s failed", method, request.path)
            return error_response(500, "Something went wrong while processing your request", e)

    async def _dispatch(self, request: web.Request, method: str, seg: list[str]) -> web.Response:
        head = seg[0].lower() if seg else ""
        if head == "orchestrators" and len(seg) in (2, 3):
            if method != "POST":
                return empty(404)
            return await self.start(request, seg[1], seg[2] if len(seg) == 3 else "")
        if head == "entities" and 1 <= len(seg) <= 3:
            return error_response(501, "Durable entities are not supported by the local dev host")
        if head == "instances" and len(seg) == 4 and seg[2].lower() == "raiseevent":
            if method != "POST":
                return empty(404)
            return await self.raise_event(request, seg[1], seg[3])
        if head == "instances" and len(seg) <= 3:
            instance_id = seg[1] if len(seg) >= 2 else None
            operation = seg[2].lower() if len(seg) == 3 else None
            if instance_id is None:
                if method == "GET":
                    return await self.list_instances(request)
                if method == "DELETE":
                    return await self.purge_by(request)
                return empty(404)
            if operation is None:
                if method == "GET":
                    return await self.get_status(request, instance_id)
                if method == "DELETE":
                    return await self.purge(request, instance_id)
                return empty(404)
            if method == "POST":
                if operation in ("terminate", "suspend", "resume"):
                    return await self.lifecycle(request, instance_id, operation)
                if operation == "restart":
                    return await self.restart(request, instance_id)
                if operation == "rewind":
                    return await self.rewind(request, instance_id)
            return empty(404)
        return empty(404)

    # -- helpers -------------------------------------------------------------------------

    def _origin(self, request: web.Request) -> str:
        return f"{request.url.scheme}://{request.url.raw_authority}"

    def _check_status_response(self, request: web.Request, instance_id: str, q: Query) -> web.Response:
        payload = self.urls.check_status_payload(
            instance_id, origin=self._origin(request), task_hub=q.get("taskHub"), connection=q.get("connection")
        )
        return json_response(202, payload, {"Location": payload["statusQueryGetUri"], "Retry-After": "10"})

    async def _status(self, instance_id: str, **flags: bool) -> dict | None:
        return await self._engine.get_status(instance_id, **flags)

    # -- start ---------------------------------------------------------------------------

    async def start(self, request: web.Request, function_name: str, instance_id: str) -> web.Response:
        q = Query(request.query)
        body = await request.read()
        input_json: str | None = None
        if body:
            try:
                input_json = compact_json(body.decode("utf-8-sig"))
            except (ValueError, UnicodeDecodeError) as e:
                return error_response(400, "Invalid JSON content", e, "Newtonsoft.Json.JsonReaderException")
        if instance_id:
            validate_instance_id(instance_id)
        try:
            new_id = await self._engine.start_orchestration(function_name, input_json, instance_id=instance_id or None)
        except InstanceExistsError as e:
            return error_response(
                500,
                "Something went wrong while processing your request",
                e,
                "DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException",
            )
        log.info("started orchestration %s (%s)", function_name, new_id)
        timeout, interval = q.seconds("timeout"), q.seconds("pollingInterval")
        if timeout is not None and interval is not None:
            return await self._wait_or_check_status(request, new_id, q, timeout, interval)
        return self._check_status_response(request, new_id, q)

    async def _wait_or_check_status(
        self, request: web.Request, instance_id: str, q: Query, timeout: float, interval: float
    ) -> web.Response:
        """``WaitForCompletionOrCreateCheckStatusResponseAsync`` (polling flavour)."""
        if interval > timeout:
            raise ArgumentError(f"Total timeout {timeout:g} should be bigger than retry timeout {interval:g}")
        deadline = time.monotonic() + timeout
        status = None
        while True:
            status = await self._status(instance_id)
            if status is not None and status.get("runtimeStatus") in FINISHED_STATES:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            await asyncio.sleep(min(interval, remaining))
        if status is not None and status.get("runtimeStatus") == RuntimeStatus.COMPLETED:
            return json_response(200, status.get("output"))
        if status is not None and status.get("runtimeStatus") in FINISHED_STATES:
            return await self.get_status(request, instance_id)
        return self._check_status_response(request, instance_id, q)

    # -- status --------------------------------------------------------------------------

    async def get_status(self, request: web.Request, instance_id: str) -> web.Response:
        q = Query(request.query)
        show_history = q.bool("showHistory") or False
        show_history_output = q.bool("showHistoryOutput") or False
        show_input = q.bool("showInput")
        status = await self._status(
            instance_id,
            show_history=show_history,
            show_history_output=show_history_output,
            show_input=True if show_input is None else show_input,
        )
        if status is None:
            return empty(404)
        runtime = status.get("runtimeStatus")
        if runtime in RUNNING_STATES:
            return json_response(202, status, {"Location": str(request.url), "Retry-After": "5"})
        if runtime == RuntimeStatus.FAILED:
            return json_response(500 if q.bool("returnInternalServerErrorOnFailure") else 200, status)
        if runtime in (RuntimeStatus.COMPLETED, RuntimeStatus.TERMINATED, RuntimeStatus.CANCELED):
            return json_response(200, status)
        log.error("Unknown runtime state '%s'.", runtime)
        return json_response(500, status)

    async def list_instances(self, request: web.Request) -> web.Response:
        """``OrchestrationStatusQueryCondition`` defaults: ``ShowInput=true``, ``PageSize=100``
        (so the SDK's ``get_status_all``, which ignores the continuation token, sees at most
        100 instances, as on Azure)."""
        q = Query(request.query)
        show_input = q.bool("showInput")
        statuses = await self._engine.list_instances(
            created_from=q.datetime("createdTimeFrom"),
            created_to=q.datetime("createdTimeTo"),
            runtime_status=q.statuses("runtimeStatus") or None,
            instance_id_prefix=q.get("instanceIdPrefix"),
            show_input=True if show_input is None else show_input,
        )
        offset = decode_token(request.headers.get("x-ms-continuation-token"))
        top = q.int("top")
        if top is None or top <= 0:
            top = DEFAULT_PAGE_SIZE
        page = statuses[offset:]
        token = ""
        if len(page) > top:
            page = page[:top]
            token = encode_token(offset + top)
        return json_response(200, page, {"x-ms-continuation-token": token})

    # -- purge ---------------------------------------------------------------------------

    async def purge(self, request: web.Request, instance_id: str) -> web.Response:
        if await self._status(instance_id, show_input=False) is None:
            return empty(404)
        deleted = await self._engine.purge(instance_id)
        return json_response(200, {"instancesDeleted": deleted})

    async def purge_by(self, request: web.Request) -> web.Response:
        q = Query(request.query)
        created_from = q.datetime("createdTimeFrom")
        if created_from is None:
            return json_response(400, "Please provide value for 'createdTimeFrom' parameter.")
        deleted = await self._engine.purge_by(
            created_from=created_from,
            # HttpApiHandler: createdTimeTo defaults to DateTime.UtcNow -> the host clock (time skipping)
            created_to=q.datetime("createdTimeTo") or self._engine.clock.now(),
            runtime_status=q.statuses("runtimeStatus") or None,
        )
        if not deleted:
            return empty(404)
        return json_response(200, {"instancesDeleted": deleted})

    # -- lifecycle -----------------------------------------------------------------------

    async def lifecycle(self, request: web.Request, instance_id: str, operation: str) -> web.Response:
        """terminate / suspend / resume: 404 unknown, 410 finished, else 202."""
        status = await self._status(instance_id, show_input=False)
        if status is None:
            return empty(404)
        if status.get("runtimeStatus") in FINISHED_STATES:
            return empty(410)
        reason = Query(request.query).get("reason")
        try:
            await getattr(self._engine, operation)(instance_id, reason)
        except InstanceNotFoundError:
            return empty(404)
        except InstanceGoneError:
            return empty(410)
        return empty(202)

    async def restart(self, request: web.Request, instance_id: str) -> web.Response:
        """``RestartAsync``: same name and input, a new id unless told otherwise."""
        q = Query(request.query)
        status = await self._status(instance_id, show_input=True)
        if status is None:
            raise ArgumentError("InstanceId does not match a valid orchestration instance.")
        new_id = instance_id if q.bool("restartWithNewInstanceId") is False else uuid.uuid4().hex
        raw_input = status.get("input")
        input_json = None if raw_input is None else json.dumps(raw_input, separators=(",", ":"), ensure_ascii=False)
        try:
            new_id = await self._engine.start_orchestration(status["name"], input_json, instance_id=new_id)
        except InstanceExistsError as e:
            return error_response(
                500,
                "Something went wrong while processing your request",
                e,
                "DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException",
            )
        timeout, interval = q.seconds("timeout"), q.seconds("pollingInterval")
        if timeout is not None and interval is not None:
            return await self._wait_or_check_status(request, new_id, q, timeout, interval)
        return self._check_status_response(request, new_id, q)

    async def rewind(self, request: web.Request, instance_id: str) -> web.Response:
        status = await self._status(instance_id, show_input=False)
        if status is None:
            return empty(404)
        if status.get("runtimeStatus") in (RuntimeStatus.COMPLETED, RuntimeStatus.TERMINATED, RuntimeStatus.CANCELED):
            return empty(410)
        return error_response(501, "Rewind is not supported by the local dev host")

    # -- events --------------------------------------------------------------------------

    async def raise_event(self, request: web.Request, instance_id: str, event_name: str) -> web.Response:
        status = await self._status(instance_id, show_input=False)
        if status is None:
            return empty(404)
        if status.get("runtimeStatus") in FINISHED_STATES:
            return empty(410)
        if request.content_type.lower() != "application/json":
            return error_response(400, "Only application/json request content is supported")
        body = await request.read()
        input_json: str | None = None
        if body.strip():
            try:
                input_json = compact_json(body.decode("utf-8-sig"))
            except (ValueError, UnicodeDecodeError) as e:
                return error_response(400, "Invalid JSON content", e, "Newtonsoft.Json.JsonReaderException")
        try:
            await self._engine.raise_event(instance_id, event_name, input_json)
        except InstanceNotFoundError:
            return empty(404)
        except InstanceGoneError:
            return empty(410)
        return empty(202)
