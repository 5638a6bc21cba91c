"""A small blocking HTTP client for the app's API.

Standard library only (``urllib``): the CLI makes a handful of sequential
calls, so an async stack would add weight and an event loop for nothing. Every
failure is turned into a :class:`CliError` that says what to fix: the
server's own field errors for a 400, "no batch" for a 404, "check the key" for
a 401, "cannot reach" for a dead URL.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from batchcli.errors import CliError

DEFAULT_URL = "http://127.0.0.1:7071"


@dataclass
class Response:
    status: int
    body: Any


@dataclass
class ApiClient:
    """``base_url`` is the app's origin (``https://<app>.azurewebsites.net``);
    ``key`` a function key sent as ``x-functions-key`` (never in the URL, so it
    stays out of proxy logs and shell history)."""

    base_url: str = DEFAULT_URL
    key: str | None = None
    timeout: float = 30.0

    def request(self, method: str, path: str, body: Any = None) -> Response:
        url = self.base_url.rstrip("/") + path
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.key:
            headers["x-functions-key"] = self.key
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return Response(response.status, _json(response.read()))
        except urllib.error.HTTPError as error:
            status, payload = error.code, _json(error.read())
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            reason = getattr(error, "reason", error)
            raise CliError(f"cannot reach {self.base_url}: {reason} (check --url / IMAGEBATCH_URL)") from None
        except ValueError as error:  # malformed URL
            raise CliError(f"invalid --url {self.base_url!r}: {error}") from None
        if status == 401:
            raise CliError(f"{self.base_url} refused the key (HTTP 401): pass --key or set IMAGEBATCH_KEY")
        return Response(status, payload)

    # -- the app's API --------------------------------------------------------------

    def start_batch(self, batch_request: dict[str, Any]) -> dict[str, Any]:
        response = self.request("POST", "/api/batches", batch_request)
        if response.status == 202 and isinstance(response.body, dict):
            return response.body
        raise _api_error("the batch was not started", response)

    def get_batch(self, batch_id: str) -> dict[str, Any]:
        response = self.request("GET", _batch_path(batch_id))
        if response.status == 200 and isinstance(response.body, dict):
            return response.body
        if response.status == 404:
            raise CliError(f"no batch with id '{batch_id}' at {self.base_url}")
        raise _api_error(f"cannot read batch '{batch_id}'", response)

    def status_url(self, batch_id: str) -> str:
        return self.base_url.rstrip("/") + _batch_path(batch_id)

    def cancel_batch(self, batch_id: str) -> dict[str, Any]:
        """Graceful cancel through the app's own route (a function key is enough)."""
        response = self.request("POST", f"{_batch_path(batch_id)}/cancel")
        return self._accepted(response, batch_id, "cancel", "is not running; nothing to cancel", server_words=False)

    def control_batch(self, batch_id: str, action: str, body: Any = None) -> dict[str, Any]:
        """``pause`` / ``resume`` (POST) or ``set-concurrency`` (PATCH with ``body``)."""
        if action == "set-concurrency":
            response = self.request("PATCH", _batch_path(batch_id), body)
        else:
            response = self.request("POST", f"{_batch_path(batch_id)}/{action}")
        return self._accepted(response, batch_id, action, "is not running")

    def decide_batch(self, batch_id: str, decision: str, reason: str | None = None) -> dict[str, Any]:
        """``approve`` / ``reject`` the proof sheet of a run awaiting approval."""
        body = {"reason": reason} if reason else None
        response = self.request("POST", f"{_batch_path(batch_id)}/{decision}", body)
        return self._accepted(response, batch_id, decision, "is not awaiting approval")

    def _accepted(
        self, response: Response, batch_id: str, action: str, conflict: str, *, server_words: bool = True
    ) -> dict[str, Any]:
        """The 202 body of an action on a running batch, or a CliError saying why not:
        404 no such batch, 409 the batch is not in a state for it (the server's message
        when ``server_words``), anything else the server's own words."""
        if response.status == 202 and isinstance(response.body, dict):
            return response.body
        if response.status == 404:
            raise CliError(f"no batch with id '{batch_id}' at {self.base_url}")
        if response.status == 409:
            message = response.body.get("message") if server_words and isinstance(response.body, dict) else None
            raise CliError(message or f"batch '{batch_id}' {conflict}")
        raise _api_error(f"cannot {action} batch '{batch_id}'", response)


def _batch_path(batch_id: str) -> str:
    return f"/api/batches/{quote(batch_id, safe='')}"


def _json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")[:200]


def _api_error(action: str, response: Response) -> CliError:
    """The server's own words: its message and one line per offending field."""
    body = response.body if isinstance(response.body, dict) else {}
    details = [
        f"  {error.get('field', '?')}: {error.get('message', '')}"
        for error in body.get("errors") or []
        if isinstance(error, dict)
    ]
    if body.get("error") == "invalid_request" and details:
        return CliError(f"invalid request (HTTP {response.status}), {len(details)} problem(s):", details)
    message = body.get("message") or (response.body if isinstance(response.body, str) else "")
    return CliError(f"{action}: HTTP {response.status}" + (f": {message}" if message else ""))
