"""The function index the Functions host builds from function_app.py.

``get_functions()`` is what the Python worker calls at indexing time; if a
trigger, binding or name is wrong here, the app fails to load in Azure.
"""

from __future__ import annotations

import importlib
import inspect
import json

import azure.functions as func

from imagebatch import function_names


def _index() -> dict[str, func.decorators.function_app.Function]:
    # A fresh module object: get_functions() can only be called once per app.
    import function_app

    module = importlib.reload(function_app)
    return {f.get_function_name(): f for f in module.app.get_functions()}


def test_exactly_our_functions_with_their_triggers_and_bindings():
    functions = _index()
    assert set(functions) == {
        "start_batch",
        "get_batch",
        "cancel_batch",
        "pause_batch",
        "resume_batch",
        "update_batch",
        "approve_batch",
        "reject_batch",
        "purge_history",
        "ImageProcessing_Orchestrator",
        "ImageProcessing_Shard",
        "ListImages",
        "LoadShard",
        "ProcessImage",
        "RecordShardResults",
        "NotifyCompletion",
        "ReadRunHold",
        "WriteProofSheet",
        "RecordReviewDecision",
    }

    def bindings(name: str) -> dict[str, dict]:
        raw = json.loads(functions[name].get_function_json())["bindings"]
        return {b["type"]: b for b in raw}

    for orchestrator in function_names.ORCHESTRATORS:
        assert bindings(orchestrator)["orchestrationTrigger"]["name"] == "context"
    for activity in function_names.ACTIVITIES:
        assert bindings(activity)["activityTrigger"]["name"] == "payload"

    start = bindings("start_batch")
    assert start["httpTrigger"]["route"] == "batches"
    assert start["httpTrigger"]["methods"] == ["POST"]
    assert start["httpTrigger"]["authLevel"] == "FUNCTION"
    assert start["durableClient"]["name"] == "client"

    status = bindings("get_batch")
    assert status["httpTrigger"]["route"] == "batches/{id}"
    assert status["httpTrigger"]["methods"] == ["GET"]
    assert status["httpTrigger"]["authLevel"] == "FUNCTION"

    cancel = bindings("cancel_batch")
    assert cancel["httpTrigger"]["route"] == "batches/{id}/cancel"
    assert cancel["httpTrigger"]["methods"] == ["POST"]
    assert cancel["httpTrigger"]["authLevel"] == "FUNCTION"

    for name, action in (("approve_batch", "approve"), ("reject_batch", "reject")):
        decide = bindings(name)
        assert decide["httpTrigger"]["route"] == f"batches/{{id}}/{action}"
        assert decide["httpTrigger"]["methods"] == ["POST"]
        assert decide["httpTrigger"]["authLevel"] == "FUNCTION"
        assert inspect.iscoroutinefunction(functions[name].get_user_function())

    purge = bindings("purge_history")
    assert purge["timerTrigger"]["schedule"] == "0 7 * * * *" and not purge["timerTrigger"].get("runOnStartup")
    assert purge["durableClient"]["name"] == "client"


def test_client_functions_are_async_and_orchestrator_is_a_generator():
    functions = _index()
    for name in ("start_batch", "get_batch", "cancel_batch", "purge_history"):
        assert inspect.iscoroutinefunction(functions[name].get_user_function())
    for name in ("ImageProcessing_Orchestrator", "ImageProcessing_Shard"):
        assert inspect.isgeneratorfunction(functions[name].get_user_function().orchestrator_function)


def test_the_function_name_constants_are_the_names_in_flight():
    """Histories in flight name these functions: the constants must never change value."""
    assert function_names.ORCHESTRATORS == ("ImageProcessing_Orchestrator", "ImageProcessing_Shard")
    assert function_names.ACTIVITIES == (
        "ListImages",
        "LoadShard",
        "ProcessImage",
        "RecordShardResults",
        "NotifyCompletion",
        "ReadRunHold",
        "WriteProofSheet",
        "RecordReviewDecision",
    )
    assert set(function_names.ORCHESTRATORS + function_names.ACTIVITIES) <= set(_index())
