"""FunctionIndex (worker-style indexing), HostSettings and the invoke helpers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import azure.durable_functions as df
import azure.functions as func
import pytest

from durable_devhost import FunctionIndex, HostSettings
from durable_devhost import history as h
from durable_devhost.invoke import (
    NO_STATE_KEY,
    ContextStub,
    invoke_orchestrator,
    orchestrator_payload,
    run_activity_sync,
)


def make_app() -> df.DFApp:
    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route(route="orchestrators/{functionName}")
    @app.durable_client_input(client_name="client")
    async def http_start(req: func.HttpRequest, client) -> func.HttpResponse:
        return func.HttpResponse("ok")

    @app.orchestration_trigger(context_name="context")
    def MyOrchestrator(context):
        if context.get_input() == "raise":
            raise ValueError("bad input")
        return (yield context.call_activity("sync_act", 1))

    @app.activity_trigger(input_name="value")
    def sync_act(value, context) -> dict:
        return {"value": value, "ctx": type(context).__name__, "fn": context.function_name}

    @app.activity_trigger(input_name="city")
    async def async_act(city: str) -> str:
        return city

    @app.activity_trigger(input_name="x")
    def failing(x) -> None:
        raise KeyError("nope")

    return app


def test_index_classifies_functions():
    index = FunctionIndex.from_app(make_app())
    kinds = {name: f.kind for name, f in index.functions.items()}
    assert kinds == {
        "http_start": "http",
        "MyOrchestrator": "orchestrator",
        "sync_act": "activity",
        "async_act": "activity",
        "failing": "activity",
    }
    orch = index.orchestrator("myorchestrator")  # case-insensitive
    assert orch is not None and orch.name == "MyOrchestrator" and orch.trigger_param == "context"
    assert index.activity("MyOrchestrator") is None
    assert index.activity("ASYNC_ACT").is_async and not index.activity("sync_act").is_async
    assert index.activity("sync_act").wants_context
    assert any(b["type"] == "durableClient" for b in index.functions["http_start"].bindings)


def test_load_imports_file_as_function_app(tmp_path: Path):
    (tmp_path / "helper_mod_xyz.py").write_text("VALUE = 7\n")
    (tmp_path / "function_app.py").write_text(
        "import azure.durable_functions as df\nimport helper_mod_xyz\napp = df.DFApp()\n"
        "@app.activity_trigger(input_name='x')\ndef seven(x):\n    return helper_mod_xyz.VALUE\n"
    )
    index = FunctionIndex.load(str(tmp_path / "function_app.py"))
    assert index.app_path == str(tmp_path / "function_app.py")
    result = run_activity_sync(index.activity("seven"), "null", "inv-1")
    assert result.ok and result.result == "7"


def test_load_rejects_two_apps(tmp_path: Path):
    (tmp_path / "function_app.py").write_text(
        "import azure.functions as func\na = func.FunctionApp()\nb = func.FunctionApp()\n"
    )
    with pytest.raises(ValueError, match="exactly one"):
        FunctionIndex.load(str(tmp_path / "function_app.py"))


def test_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    assert HostSettings.load(tmp_path).hub_name == "TestHubName"  # no files at all
    (tmp_path / "host.json").write_text(
        json.dumps(
            {
                "version": "2.0",
                "extensions": {
                    "durableTask": {
                        "hubName": "MyHub",
                        "maxConcurrentActivityFunctions": 3,
                        "maxConcurrentOrchestratorFunctions": 2,
                    }
                },
            }
        )
    )
    (tmp_path / "local.settings.json").write_text(
        json.dumps(
            {
                "IsEncrypted": False,
                "Values": {"DEVHOST_T_NEW": "new", "DEVHOST_T_SET": "from-file"},
                "Host": {"LocalHttpPort": 7072},
            }
        )
    )
    monkeypatch.setenv("DEVHOST_T_SET", "from-env")
    monkeypatch.delenv("DEVHOST_T_NEW", raising=False)
    settings = HostSettings.load(tmp_path)
    assert (settings.hub_name, settings.max_concurrent_activities, settings.max_concurrent_orchestrations) == (
        "MyHub",
        3,
        2,
    )
    assert settings.local_http_port == 7072
    assert os.environ["DEVHOST_T_NEW"] == "new"
    assert os.environ["DEVHOST_T_SET"] == "from-env"  # never overrides what is already set
    assert settings.applied == ["DEVHOST_T_NEW"]
    monkeypatch.delenv("DEVHOST_T_NEW")


def test_invoke_activity_success_failure_and_context():
    index = FunctionIndex.from_app(make_app())
    ok = run_activity_sync(index.activity("sync_act"), '"Tokyo"', "inv-1")
    assert ok.ok and json.loads(ok.result) == {"value": "Tokyo", "ctx": ContextStub.__name__, "fn": "sync_act"}
    bad = run_activity_sync(index.activity("failing"), "1", "inv-2")
    assert not bad.ok
    assert bad.reason == "Activity function 'failing' failed: 'nope'"
    assert "KeyError" in (bad.details or "")


def test_invoke_orchestrator_out_of_proc_error():
    index = FunctionIndex.from_app(make_app())
    fn = index.orchestrator("MyOrchestrator")
    now = h.parse_ts("2024-01-01T00:00:00Z")
    history = [
        h.orchestrator_started(now),
        h.execution_started(now, name="MyOrchestrator", instance_id="i", execution_id="e", input_json='"\\"raise\\""'),
    ]
    payload = orchestrator_payload(
        history=history, input_json='"\\"raise\\""', instance_id="i", parent_instance_id=None
    )
    state = invoke_orchestrator(fn, payload)
    assert state == {"isDone": False, "schemaVersion": 2, "actions": [[]], "error": "bad input"}


def test_timestamps_have_seven_digits():
    ts = h.format_ts(h.parse_ts("2024-01-01T00:00:00.1234567Z"))
    assert ts == "2024-01-01T00:00:00.1234560Z"
    ev = h.task_completed(h.parse_ts(ts), 3, "1")
    assert ev["EventType"] == 5 and ev["EventId"] == -1 and ev["IsPlayed"] is False


def test_invoke_orchestrator_without_out_of_proc_data():
    index = FunctionIndex.from_app(make_app())
    state = invoke_orchestrator(index.orchestrator("MyOrchestrator"), "not json at all")
    assert state["isDone"] is False and state[NO_STATE_KEY] is True and state["error"]
