"""Azure-strict behaviour (issue 13): each case answered the way the extension answers it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df
import pytest
from devhost_helpers import client_input, running

from durable_devhost import history as h
from durable_devhost.replay import AZURE_STAYS_RUNNING, ShimReplayer

T0 = datetime(2024, 1, 1, tzinfo=UTC)
STAYS_RUNNING = "on Azure this instance would NOT fail"


def make_app() -> df.DFApp:
    app = df.DFApp()

    @app.orchestration_trigger(context_name="context")
    def renamed_activity(context: df.DurableOrchestrationContext):
        return (yield context.call_activity("old_name", 1))

    @app.orchestration_trigger(context_name="context")
    def renamed_sub(context: df.DurableOrchestrationContext):
        return (yield context.call_sub_orchestrator("gone_child", 1))

    @app.orchestration_trigger(context_name="context")
    def own_id_child(context: df.DurableOrchestrationContext):
        return (yield context.call_sub_orchestrator("child", 1, context.instance_id))

    @app.orchestration_trigger(context_name="context")
    def grandparent_id_child(context: df.DurableOrchestrationContext):
        return (yield context.call_sub_orchestrator("reuses_parent_id", 1, "child-of-gp"))

    @app.orchestration_trigger(context_name="context")
    def reuses_parent_id(context: df.DurableOrchestrationContext):
        return (yield context.call_sub_orchestrator("child", 1, context.parent_instance_id.upper()))

    @app.orchestration_trigger(context_name="context")
    def child(context: df.DurableOrchestrationContext):
        return context.get_input()

    @app.orchestration_trigger(context_name="context")
    def long_retry(context: df.DurableOrchestrationContext):
        seven_days_ms = 7 * 24 * 3600 * 1000
        return (yield context.call_activity_with_retry("work", df.RetryOptions(seven_days_ms, 2), 1))

    @app.orchestration_trigger(context_name="context")
    def big_status(context: df.DurableOrchestrationContext):
        size = context.get_input()
        context.set_custom_status("x" * size)
        yield context.call_activity("work", 1)
        return "done"

    @app.orchestration_trigger(context_name="context")
    def two_waits(context: df.DurableOrchestrationContext):
        first = context.wait_for_external_event("Approval")
        second = context.wait_for_external_event("Approval")
        winner = yield context.task_any([first, second])
        return "first" if winner is first else "second"

    @app.orchestration_trigger(context_name="context")
    def big_payloads(context: df.DurableOrchestrationContext):
        size = context.get_input()
        context.set_custom_status("s" * 1000)
        blobs = yield context.task_all([context.call_activity("echo_big", size) for _ in range(2)])
        return len(blobs[0])

    @app.orchestration_trigger(context_name="context")
    def summarised(context: df.DurableOrchestrationContext):
        a = yield context.call_activity("work", {"k": 1})
        b = yield context.call_sub_orchestrator("child", [2], "sum-child")
        yield context.create_timer(context.current_utc_datetime)
        return [a, b]

    @app.orchestration_trigger(context_name="context")
    def calls_failing(context: df.DurableOrchestrationContext):
        try:
            yield context.call_activity("fails", 1)
        except Exception as e:
            return str(e)

    @app.orchestration_trigger(context_name="context")
    def calls_blob_writer(context: df.DurableOrchestrationContext):
        return (yield context.call_activity("writes_blob", 1))

    @app.activity_trigger(input_name="n")
    @app.blob_output(arg_name="out", path="container/{rand-guid}.txt", connection="AzureWebJobsStorage")
    def writes_blob(n: int, out) -> int:
        out.set("x")
        return n

    @app.orchestration_trigger(context_name="context")
    def calls_slow(context: df.DurableOrchestrationContext):
        return (yield context.call_activity("slow", context.get_input()))

    @app.activity_trigger(input_name="seconds")
    async def slow(seconds: float) -> str:
        import asyncio

        await asyncio.sleep(seconds)
        return "finished"

    @app.activity_trigger(input_name="n")
    def fails(n: int) -> int:
        raise ValueError(f"bad {n}")

    @app.activity_trigger(input_name="n")
    def work(n: int) -> int:
        return n

    @app.activity_trigger(input_name="n")
    def echo_big(n: int) -> str:
        return "b" * n

    return app


@pytest.fixture
async def engine():
    async with running(make_app()) as eng:
        yield eng


# ---- 3. unknown or renamed functions ----------------------------------------------------------


async def test_unknown_activity_fails_loudly_and_says_azure_would_stay_running(engine):
    iid = await engine.start_orchestration("renamed_activity")
    status = await engine.wait_for_completion(iid, 5)
    assert status["runtimeStatus"] == "Failed"
    assert status["output"].startswith(
        "The function 'old_name' doesn't exist, is disabled, or is not an activity "
        "function. Additional info: The following are the known activity "
        "functions: 'writes_blob', 'slow', 'fails', 'work', 'echo_big'."
    )
    assert STAYS_RUNNING in status["output"] and "stay Running forever" in status["output"]


async def test_unknown_sub_orchestrator_fails_loudly_and_says_azure_would_stay_running(engine):
    iid = await engine.start_orchestration("renamed_sub")
    status = await engine.wait_for_completion(iid, 5)
    assert status["runtimeStatus"] == "Failed"
    assert status["output"].startswith(
        "The function 'gone_child' doesn't exist, is disabled, or is not an orchestrator function."
    )
    assert status["output"].endswith(AZURE_STAYS_RUNNING)


# ---- 6. a sub-orchestration with its parent's instance id ----------------------------------------


async def test_sub_orchestration_with_own_instance_id_is_rejected(engine):
    iid = await engine.start_orchestration("own_id_child", None, "same-id")
    status = await engine.wait_for_completion(iid, 5)
    assert status["runtimeStatus"] == "Failed"
    assert status["output"] == (
        "The instance ID of a sub-orchestration must be different than the instance ID of "
        "a parent orchestration." + AZURE_STAYS_RUNNING
    )
    assert engine.store.get_instance("same-id").parent_instance_id is None  # no child was created


async def test_sub_orchestration_reusing_its_parents_id_is_rejected_case_insensitively(engine):
    iid = await engine.start_orchestration("grandparent_id_child", None, "gp")
    status = await engine.wait_for_completion(iid, 5)
    child = await engine.get_status("child-of-gp")
    assert child["runtimeStatus"] == "Failed"
    assert child["output"].startswith("The instance ID of a sub-orchestration must be different")
    assert status["runtimeStatus"] == "Failed"  # the child's failure reaches the parent as usual


# ---- 7. retry options ------------------------------------------------------------------------


async def test_retry_interval_above_the_storage_providers_maximum_is_rejected(engine):
    iid = await engine.start_orchestration("long_retry")
    status = await engine.wait_for_completion(iid, 5)
    assert status["runtimeStatus"] == "Failed"
    assert status["output"] == (
        "The Azure Storage provider supports a maximum of 6 days for time-based delays "
        "(Parameter 'FirstRetryInterval')" + AZURE_STAYS_RUNNING
    )


def _replay(actions: list[Any], *, custom: Any = None, events: list[dict[str, Any]] | None = None):
    history = [
        h.orchestrator_started(T0),
        h.execution_started(T0, name="o", instance_id="i", execution_id="e", input_json=None),
        *(events or []),
    ]
    state = {"isDone": False, "schemaVersion": 2, "actions": [actions], "customStatus": custom}
    return ShimReplayer(
        orchestrator_name="o",
        instance_id="i",
        execution_id="e",
        activity_exists=lambda n: True,
        orchestrator_exists=lambda n: True,
    ).replay(history, state)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"maxNumberOfAttempts": 3},
            "Invalid JSON. Must contain field firstRetryIntervalInMilliseconds (Parameter 'reader')",
        ),
        (
            {"firstRetryIntervalInMilliseconds": 1000},
            "Invalid JSON. Must contain field maxNumberOfAttempts (Parameter 'reader')",
        ),
        (
            {"firstRetryIntervalInMilliseconds": 0, "maxNumberOfAttempts": 3},
            "Invalid interval.  Specify a TimeSpan value greater then TimeSpan.Zero. (Parameter 'firstRetryInterval')",
        ),
        (
            {"firstRetryIntervalInMilliseconds": 2**31, "maxNumberOfAttempts": 3},
            "Value was either too large or too small for an Int32.",
        ),
    ],
)
def test_retry_options_are_parsed_like_retry_options_converter(options, message):
    action = {"actionType": 1, "functionName": "work", "input": "1", "retryOptions": options}
    # nested in a WhenAll and behind an earlier action: ToObject reads the whole state first
    r = _replay(
        [{"actionType": 0, "functionName": "work", "input": "0"}, {"actionType": 12, "compoundActions": [action]}]
    )
    assert r.outcome == "failed"
    assert json.loads(r.output or "null") == f"Orchestrator function 'o' failed: {message}"
    assert r.decisions == []


def test_max_retry_interval_above_maximum_is_checked_first():
    action = {
        "actionType": 1,
        "functionName": "work",
        "input": "1",
        "retryOptions": {
            "firstRetryIntervalInMilliseconds": 7 * 24 * 3600 * 1000,
            "maxNumberOfAttempts": 2,
            "maxRetryIntervalInMilliseconds": 7 * 24 * 3600 * 1000,
        },
    }
    r = _replay([action])
    assert json.loads(r.output or "null").startswith(
        "The Azure Storage provider supports a maximum of 6 days for time-based delays (Parameter 'MaxRetryInterval')"
    )


# ---- 2. custom status over 16 KB -------------------------------------------------------------------


async def test_custom_status_over_16_kb_utf16_fails_with_the_extensions_text(engine):
    # 8,703 characters + 2 quotes = 17,410 UTF-16 bytes = 17 KB (truncated) > 16
    iid = await engine.start_orchestration("big_status", client_input(8703))
    status = await engine.wait_for_completion(iid, 5)
    assert status["runtimeStatus"] == "Failed"
    assert status["output"] == (
        "Orchestrator function 'big_status' failed: The UTF-16 size of the JSON-serialized "
        "payload must not exceed 16 KB. The current payload size is 17 KB."
    )
    assert status["customStatus"] is None


async def test_custom_status_just_under_17_kb_utf16_is_accepted(engine):
    # 8,701 characters + 2 quotes = 17,406 bytes -> (int)(16.99...) = 16, not > 16
    iid = await engine.start_orchestration("big_status", client_input(8701))
    status = await engine.wait_for_completion(iid, 5)
    assert status["runtimeStatus"] == "Completed"
    assert len(status["customStatus"]) == 8701


def test_custom_status_counts_utf16_not_utf8():
    # 5,000 x U+00E9: 10 KB in UTF-8 and in UTF-16 (1 unit each), 5,000 x U+1F600: 2 units each = 19.5 KB
    assert _replay([], custom="\u00e9" * 5000).outcome == "running"
    r = _replay([], custom="\U0001f600" * 5000)
    assert r.outcome == "failed"
    assert "The current payload size is 19 KB." in json.loads(r.output or "null")


# ---- 4. two pending waits for the same event name: newest first -------------------------------------


def test_two_pending_waits_for_one_name_the_newest_gets_the_event():
    # WhenAny(WhenAll(wait E [older], wait F), wait e [newer]), then an activity: if the newer wait gets
    # the (case-insensitively matched) event, the WhenAny completes and the activity is scheduled.
    actions = [
        {
            "actionType": 11,
            "compoundActions": [
                {
                    "actionType": 12,
                    "compoundActions": [
                        {"actionType": 6, "externalEventName": "E"},
                        {"actionType": 6, "externalEventName": "F"},
                    ],
                },
                {"actionType": 6, "externalEventName": "e"},
            ],
        },
        {"actionType": 0, "functionName": "work", "input": "1"},
    ]
    r = _replay(actions, events=[h.event_raised(T0, "E", '"go"')])
    assert [(d.kind, d.name) for d in r.decisions] == [("task", "work")]


def test_a_buffered_event_goes_to_the_next_waiter():
    actions = [{"actionType": 6, "externalEventName": "E"}, {"actionType": 0, "functionName": "work", "input": "1"}]
    r = _replay(actions, events=[h.event_raised(T0, "E", '"early"')])
    assert [(d.kind, d.name) for d in r.decisions] == [("task", "work")]


async def test_two_waits_end_to_end_through_the_sdk(engine):
    iid = await engine.start_orchestration("two_waits")
    await engine.wait_idle()
    await engine.raise_event(iid, "Approval", '"yes"')
    status = await engine.wait_for_completion(iid, 5)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == "second"  # SDK 1.7.0 also hands the event to the newest wait
    assert status["output"] == "second"  # SDK 1.7.0 also hands the event to the newest wait


# ---- 2. payload size accounting ------------------------------------------------------------------


async def test_payload_stats_flag_what_azure_storage_would_offload(engine, caplog):
    caplog.set_level("WARNING", logger="durable_devhost")
    iid = await engine.start_orchestration("big_payloads", client_input(47 * 1024))  # 47 KB UTF-8, 94 KB UTF-16
    assert (await engine.wait_for_completion(iid, 5))["runtimeStatus"] == "Completed"
    stats = engine.payload_stats()
    out = stats["activity_output"]
    assert out["function"] == "echo_big" and out["instance_id"] == iid
    assert out["utf8_bytes"] == 47 * 1024 + 2 and out["utf16_bytes"] == 2 * (47 * 1024 + 2)
    assert out["exceeds"] == ["queue_message_45KB", "table_property_60KB"]
    assert stats["activity_input"]["exceeds"] == []
    assert stats["custom_status"]["utf16_bytes"] == 2004 and stats["custom_status"]["exceeds"] == []
    assert stats["orchestration_output"]["function"] == "big_payloads"
    warnings = [r.getMessage() for r in caplog.records if "payload size" in r.getMessage()]
    # two activities crossed both limits: one warning per kind and limit
    assert len(warnings) == 2
    assert "activity_output of 'echo_big'" in warnings[0] and "offloaded to a blob" in warnings[0]


async def test_payload_stats_utf16_only_crossing(engine):
    iid = await engine.start_orchestration("big_payloads", client_input(40 * 1024))  # 40 KB UTF-8, 80 KB UTF-16
    await engine.wait_for_completion(iid, 5)
    assert engine.payload_stats()["activity_output"]["exceeds"] == ["table_property_60KB"]


# ---- 5. showHistory: the extension's summarised form ---------------------------------------------------


async def test_show_history_is_the_extensions_summarised_form(engine):
    iid = await engine.start_orchestration("summarised", client_input("in"))
    await engine.wait_for_completion(iid, 5)
    raw = engine.history(iid)
    status = await engine.get_status(iid, show_history=True, show_history_output=True)
    rows = status["historyEvents"]
    assert [r["EventType"] for r in rows] == [
        "ExecutionStarted",
        "TaskCompleted",
        "SubOrchestrationInstanceCompleted",
        "TimerCreated",
        "TimerFired",
        "ExecutionCompleted",
    ]
    started, task, sub, _created, fired, completed = rows
    assert started["FunctionName"] == "summarised" and "Name" not in started
    assert not {"OrchestrationInstance", "ParentInstance", "Version", "Tags", "EventId", "IsPlayed"} & set(started)
    scheduled = next(e for e in raw if e["EventType"] == 4)
    assert task["FunctionName"] == "work" and task["Input"] == scheduled["Input"]
    assert task["ScheduledTime"].endswith("+00:00") and task["ScheduledTime"][:19] == scheduled["Timestamp"][:19]
    assert task["Result"] == {"k": 1} and "TaskScheduledId" not in task
    assert sub["FunctionName"] == "child" and sub["Result"] == [2]
    assert "TimerId" not in fired and "FireAt" in fired
    assert completed["OrchestrationStatus"] == "Completed" and completed["Result"] == [{"k": 1}, [2]]

    quiet = (await engine.get_status(iid, show_history=True, show_input=False))["historyEvents"]
    assert all("Result" not in r and "Input" not in r for r in quiet)
    assert raw == engine.history(iid)  # host.history() stays raw


# ---- 9. smaller points ---------------------------------------------------------------------------------


async def test_activity_failure_details_start_at_the_users_code(engine):
    iid = await engine.start_orchestration("calls_failing")
    status = await engine.wait_for_completion(iid, 5)
    assert status["output"].startswith("Activity function 'fails' failed: bad 1")
    failed = next(e for e in engine.history(iid) if e["EventType"] == 6)
    assert failed["Details"].startswith("ValueError: bad 1\nTraceback (most recent call last):\n")
    assert "invoke.py" not in failed["Details"] and "in fails" in failed["Details"]


async def test_activity_output_binding_warns_at_start_and_fails_the_invocation_clearly(caplog):
    caplog.set_level("WARNING", logger="durable_devhost")
    async with running(make_app()) as engine:
        assert any(
            "function writes_blob: out binding 'out' (blob) cannot be honoured" in r.getMessage()
            for r in caplog.records
        )
        iid = await engine.start_orchestration("calls_blob_writer")
        status = await engine.wait_for_completion(iid, 5)
    assert status["runtimeStatus"] == "Failed"
    assert (
        "Activity function 'writes_blob' failed: the local dev host cannot honour its binding(s) 'out' (blob, out)"
    ) in status["output"]
    assert "TypeError" not in status["output"]


async def test_purging_a_running_instance_deletes_it_like_azure_storage(engine):
    iid = await engine.start_orchestration("two_waits")
    await engine.wait_idle()
    assert await engine.purge(iid) == 1
    assert await engine.get_status(iid) is None and engine.history(iid) == []
    with pytest.raises(Exception, match="No instance"):
        await engine.raise_event(iid, "Approval", '"late"')


async def test_purge_by_default_end_time_is_the_host_clock_under_time_skipping():
    from datetime import timedelta

    import aiohttp

    from durable_devhost.testing import DevHost

    async with DevHost(make_app()) as host:
        wall_now = datetime.now(UTC)
        await host.skip(timedelta(days=30))  # instances are now created 30 days "ahead"
        iid = await host.start_orchestration("summarised", "x")
        await host.wait(iid)
        client = host.client()
        result = await client.purge_instance_history_by(created_time_from=wall_now)
        assert result.instances_deleted == 2  # the parent and its sub-orchestration
        async with aiohttp.ClientSession() as http:
            iid = await host.start_orchestration("summarised", "y")
            await host.wait(iid)
            url = f"{host.url}/runtime/webhooks/durabletask/instances?createdTimeFrom={wall_now.isoformat()}"
            async with http.delete(url.replace("+00:00", "Z")) as r:
                assert r.status == 200 and (await r.json()) == {"instancesDeleted": 2}


def test_versioning_settings_in_host_json_are_warned_about(tmp_path, caplog):
    from durable_devhost.settings import HostSettings

    caplog.set_level("WARNING", logger="durable_devhost")
    (tmp_path / "host.json").write_text(
        json.dumps(
            {
                "version": "2.0",
                "extensions": {"durableTask": {"defaultVersion": "2.0", "versionMatchStrategy": "Strict"}},
            }
        )
    )
    settings = HostSettings.load(tmp_path, apply_env=False)
    assert settings.warnings == [
        "host.json extensions.durableTask.defaultVersion, versionMatchStrategy set: "
        "orchestration versioning is ignored by the dev host (no version is stamped on "
        "instances and none is matched)"
    ]
    assert any("orchestration versioning is ignored" in r.getMessage() for r in caplog.records)
    (tmp_path / "host.json").write_text("{}")
    assert HostSettings.load(tmp_path, apply_env=False).warnings == []


# ---- 10. SQLite: space is given back after purges ------------------------------------------------------


def test_sqlite_gives_space_back_after_purges(tmp_path):
    from durable_devhost.store import InstanceRow, SqliteStore

    store = SqliteStore(str(tmp_path / "state.sqlite"))
    assert store._db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
    assert store._db.execute("PRAGMA journal_size_limit").fetchone()[0] == 16 * 1024 * 1024
    big = json.dumps("p" * 20_000)
    ids = [f"i{n}" for n in range(300)]
    for iid in ids:
        row = InstanceRow(
            instance_id=iid, name="o", execution_id="e", status="Completed", input=big, created=T0, updated=T0
        )
        store.create_instance(row, h.execution_started(T0, name="o", instance_id=iid, execution_id="e", input_json=big))
    store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    full = store.file_sizes()["db"]
    assert full > 300 * 40_000
    assert store.purge(ids) == 300
    store.compact_after_purge(300)
    sizes = store.file_sizes()
    assert sizes["db"] < full / 10, sizes
    assert sizes["wal"] == 0
    store.close()


# ---- 1. replay cost as on Azure by default ---------------------------------------------------------------


async def test_timestamp_parsing_is_uncached_by_default_and_cached_with_fast_replay():
    import importlib

    from durable_devhost.invoke import fast_replay_enabled
    from durable_devhost.replay_cost import measure

    module = importlib.import_module("azure.durable_functions.models.history.HistoryEvent")
    from dateutil.parser import parse as dateutil_parse

    async with running(make_app()) as engine:
        assert not fast_replay_enabled() and module.dt_parse is dateutil_parse  # like the worker
        iid = await engine.start_orchestration("summarised", client_input("a"))
        slow = await engine.wait_for_completion(iid, 5)
    async with running(make_app(), fast_replay=True) as engine:
        assert fast_replay_enabled() and module.dt_parse is not dateutil_parse
        iid = await engine.start_orchestration("summarised", client_input("a"))
        fast = await engine.wait_for_completion(iid, 5)
    assert slow["output"] == fast["output"]
    async with running(make_app()):
        assert module.dt_parse is dateutil_parse  # switched back off
    figures = measure(50, repeats=1)
    assert figures["cached_us_per_event"] < figures["uncached_us_per_event"]
    assert module.dt_parse is dateutil_parse


# ---- 8. functionTimeout ----------------------------------------------------------------------------------


async def test_function_timeout_fails_the_activity_with_the_hosts_text(caplog):
    from durable_devhost.settings import parse_timespan

    assert parse_timespan("00:30:00") == 1800 and parse_timespan("1.00:00:01") == 86401
    assert parse_timespan("-1") is None and parse_timespan(None) is None
    async with running(make_app(), function_timeout="00:00:00.3") as engine:
        iid = await engine.start_orchestration("calls_slow", client_input(5))
        status = await engine.wait_for_completion(iid, 5)
        assert status["runtimeStatus"] == "Failed"
        assert (
            "Activity function 'slow' failed: Timeout value of 00:00:00.3 was exceeded by function: Functions.slow"
        ) in status["output"]
        assert any("exceeded by function 'Functions.slow'" in r.getMessage() for r in caplog.records)
        iid = await engine.start_orchestration("calls_slow", client_input(0.01))
        assert (await engine.wait_for_completion(iid, 5))["output"] == "finished"
