"""Invoke one orchestrator episode or one activity exactly as the Python worker does
(azure-functions-python-worker azure_functions_worker/dispatcher.py).

The real converters from ``azure.functions`` are used (``OrchestrationTriggerConverter``,
``ActivityTriggerConverter``) so inputs and outputs are encoded byte-for-byte as in Azure.
Worker processes: a ``ProcessPoolExecutor`` whose initializer imports the app once per process;
only the function name and JSON text cross the process boundary.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import json
import os
import traceback
from dataclasses import dataclass
from typing import Any

import azure.functions as func
from azure.functions import meta

from .functions import FunctionIndex, IndexedFunction

OUT_OF_PROC_MARKER = "\n\n$OutOfProcData$:"
NO_STATE_KEY = "$devhostNoState"  # the invocation failed without $OutOfProcData$ (not an SDK key)

_REGISTRY = func.get_binding_registry()


_HISTORY_EVENT_MODULE = "azure.durable_functions.models.history.HistoryEvent"


def set_fast_replay(enabled: bool) -> None:
    """Memoise (or stop memoising) the SDK's ``dateutil`` parse of history ``Timestamp`` strings.

    The real Python worker re-parses every event's timestamp with ``dateutil.parser.parse`` on every
    episode (SDK 1.7.0 ``HistoryEvent.__init__``), so replay cost grows with the history exactly as on
    Azure: that is the default. ``--fast-replay`` / ``DevHost(fast_replay=True)`` turn the cache on:
    it returns the very object dateutil produced for the same string (datetimes are immutable), so
    orchestrator code cannot observe a difference, only the time. Process-wide (the SDK module is).
    """
    module: Any = importlib.import_module(_HISTORY_EVENT_MODULE)  # patched at run time: typed as Any
    parse = module.dt_parse
    original = getattr(parse, "_devhost_original", parse)
    if enabled:
        if getattr(parse, "_devhost_original", None) is None:
            cached: Any = functools.lru_cache(maxsize=1 << 17)(original)  # carries a marker attribute
            cached._devhost_original = original
            module.dt_parse = cached
    else:
        module.dt_parse = original


def fast_replay_enabled() -> bool:
    module: Any = importlib.import_module(_HISTORY_EVENT_MODULE)
    return getattr(module.dt_parse, "_devhost_original", None) is not None


@dataclass
class ContextStub:
    """What the worker passes to a non-binding parameter named ``context`` (azure.functions.Context)."""

    invocation_id: str
    function_name: str
    function_directory: str
    trace_context: Any = None
    retry_context: Any = None
    thread_local_storage: Any = None


@dataclass
class ActivityResult:
    ok: bool
    result: str | None = None  # JSON text (TaskCompleted.Result)
    reason: str | None = None  # TaskFailed.Reason
    details: str | None = None  # TaskFailed.Details
    pid: int | None = None


def orchestrator_payload(
    *,
    history: list[dict[str, Any]],
    input_json: str | None,
    instance_id: str,
    parent_instance_id: str | None,
    long_timer_interval: str = "3.00:00:00",
    max_short_timer: str = "6.00:00:00",
) -> str:
    """The JSON the extension passes to the orchestration trigger (``OrchestrationContextToString``,
    azure-functions-durable-extension
    src/WebJobs.Extensions.DurableTask/Bindings/OrchestrationTriggerAttributeBindingProvider.cs).

    ``input`` is ``JToken.Load(ExecutionStarted.Input)``: the stored JSON text parsed once.
    """
    started = next((e for e in history if e["EventType"] == 0), None)
    return json.dumps(
        {
            "history": history,
            "input": json.loads(input_json) if input_json is not None else None,
            "instanceId": instance_id,
            "isReplaying": bool(started and started.get("IsPlayed")),
            "parentInstanceId": parent_instance_id,
            "upperSchemaVersion": 1,
            "upperSchemaVersionNew": 2,
            "longRunningTimerIntervalDuration": long_timer_interval,
            "maximumShortTimerDuration": max_short_timer,
            "defaultHttpAsyncRequestSleepTimeMillseconds": 30000,
        }
    )


def _context_kwargs(fn: IndexedFunction, invocation_id: str, app_path: str | None) -> dict[str, Any]:
    if not fn.wants_context:
        return {}
    directory = os.path.dirname(app_path) if app_path else os.getcwd()
    return {"context": ContextStub(invocation_id, fn.name, os.path.join(directory, fn.name))}


def invoke_orchestrator(fn: IndexedFunction, payload_json: str) -> dict[str, Any]:
    """Run one episode; return the SDK's state dict, parsing ``$OutOfProcData$`` on failure
    (azure-functions-durable-python azure/durable_functions/models/OrchestratorState.py).

    A failure without out-of-proc data (e.g. the trigger could not be decoded) is flagged with
    ``NO_STATE_KEY``: ``TaskOrchestrationShim`` then fails the instance at once with
    "Orchestrator function 'X' failed: <message>", without replaying any action.
    """
    conv = _REGISTRY.get("orchestrationTrigger")
    try:
        arg = conv.decode(meta.Datum(payload_json, "string"), trigger_metadata={})
        ret = fn.user_function(**{fn.trigger_param: arg})
        return json.loads(conv.encode(ret, expected_type=None).value)
    except Exception as exc:  # the worker reports the failure; the extension parses the message
        message = str(exc)
        if OUT_OF_PROC_MARKER in message:
            return json.loads(message.split(OUT_OF_PROC_MARKER, 1)[1])
        return {"isDone": False, "actions": [[]], "error": message or type(exc).__name__, NO_STATE_KEY: True}


def _user_traceback(exc: BaseException) -> Any:
    """The traceback without the dev host's own frames at its top (the worker's frames are not in the
    Details the Python worker reports either: they start at the user's function)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return tb if tb is not None else exc.__traceback__


def _failure(name: str, exc: BaseException) -> ActivityResult:
    """``TaskActivityShim``: TaskFailureException("Activity function 'X' failed: <msg>", details)."""
    details = "".join(traceback.format_exception(type(exc), exc, _user_traceback(exc)))
    return ActivityResult(
        ok=False,
        reason=f"Activity function '{name}' failed: {exc}",
        details=f"{type(exc).__name__}: {exc}\n{details}",
        pid=os.getpid(),
    )


def _decode_activity_input(input_json: str | None) -> Any:
    conv = _REGISTRY.get("activityTrigger")
    return conv.decode(meta.Datum(input_json if input_json is not None else "null", "string"), trigger_metadata={})


def _encode_activity_output(value: Any) -> str | None:
    conv = _REGISTRY.get("activityTrigger")
    return conv.encode(value, expected_type=None).value


def run_activity_sync(
    fn: IndexedFunction, input_json: str | None, invocation_id: str, app_path: str | None = None
) -> ActivityResult:
    """Run a (sync) activity; an ``async def`` one gets its own short-lived loop (process workers)."""
    try:
        arg = _decode_activity_input(input_json)
        ret = fn.user_function(**{fn.trigger_param: arg}, **_context_kwargs(fn, invocation_id, app_path))
        if asyncio.iscoroutine(ret):
            ret = asyncio.run(ret)
        return ActivityResult(ok=True, result=_encode_activity_output(ret), pid=os.getpid())
    except Exception as exc:
        return _failure(fn.name, exc)


async def run_activity_async(
    fn: IndexedFunction, input_json: str | None, invocation_id: str, app_path: str | None = None
) -> ActivityResult:
    """Await an ``async def`` activity on the host's loop, as the worker does."""
    try:
        arg = _decode_activity_input(input_json)
        ret = await fn.user_function(**{fn.trigger_param: arg}, **_context_kwargs(fn, invocation_id, app_path))
        return ActivityResult(ok=True, result=_encode_activity_output(ret), pid=os.getpid())
    except Exception as exc:
        return _failure(fn.name, exc)


# ---- worker processes -------------------------------------------------------------------

_WORKER_INDEX: FunctionIndex | None = None


def die_with_parent(parent_pid: int | None) -> None:
    """Make the kernel SIGKILL this process when the host dies (``prctl(PR_SET_PDEATHSIG, SIGKILL)``).

    Without it a ``kill -9`` of the host leaves its worker processes (and, through them, the
    multiprocessing resource tracker, which waits for every holder of its pipe) running forever.
    Linux only; elsewhere a no-op. The parent may already be gone when this runs: then exit at once.
    """
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - no libc prctl
        return
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)


def worker_init(app_path: str, parent_pid: int | None = None) -> None:
    """ProcessPoolExecutor initializer: die with the host, then import the app once in this process."""
    global _WORKER_INDEX
    die_with_parent(parent_pid)
    _WORKER_INDEX = FunctionIndex.load(app_path)


def worker_run_activity(name: str, input_json: str | None, invocation_id: str) -> ActivityResult:
    """Run an activity by name inside a worker process (only text crosses the boundary)."""
    if _WORKER_INDEX is None:
        raise RuntimeError("worker process was not initialised with an app")
    fn = _WORKER_INDEX.activity(name)
    if fn is None:
        return ActivityResult(
            ok=False, reason=f"Activity function '{name}' failed: not found in worker", details=None, pid=os.getpid()
        )
    return run_activity_sync(fn, input_json, invocation_id, _WORKER_INDEX.app_path)
