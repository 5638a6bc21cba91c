"""The unmodified DurableOrchestrationClient against the dev host.

Each client method is used twice: directly from the test (a client built from the host's
binding JSON) and from inside an HTTP-triggered function that got the binding the way the
worker passes it.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import azure.durable_functions as df
import pytest

from durable_devhost.testing import DevHost, devhost_factory  # noqa: F401 - fixture

APP = Path(__file__).parent / "apps" / "durable_basics"


@pytest.fixture
async def host(devhost_factory):  # noqa: F811
    return await devhost_factory(APP)


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


async def op(http, host: DevHost, op_name: str, instance_id: str | None = None, expect: int = 200, **args):
    """Call the app's ``client_op`` HTTP function (the SDK client runs inside the host)."""
    url = host.api_url(f"client/{op_name}" + (f"/{instance_id}" if instance_id else ""))
    async with http.post(url, json=args) as r:
        body = await r.json()
        assert r.status == expect, body
        return body


async def wait_status(client, instance_id: str, wanted: str, timeout: float = 10.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        s = await client.get_status(instance_id)
        if s.runtime_status and s.runtime_status.value == wanted:
            return s
        assert asyncio.get_running_loop().time() < deadline, f"{instance_id}: {s.runtime_status} != {wanted}"
        await asyncio.sleep(0.05)


# -- binding ----------------------------------------------------------------------------------


async def test_binding_json_points_at_this_host(host):
    binding = json.loads(host.client_binding())
    assert binding["taskHubName"] == "TestHubName"
    assert binding["rpcBaseUrl"] == f"{host.url}/durabletask/"
    assert binding["baseUrl"] == f"{host.url}/runtime/webhooks/durabletask"
    assert binding["managementUrls"]["id"] == "INSTANCEID"
    assert binding["managementUrls"]["statusQueryGetUri"].startswith(
        f"{host.url}/runtime/webhooks/durabletask/instances/INSTANCEID?taskHub=TestHubName&connection=Storage"
    )
    assert "{functionName}" in binding["creationUrls"]["createNewInstancePostUri"]
    assert binding["requiredQueryStringParameters"] == ""


async def test_client_gets_invocation_id_from_context(host, http):
    out = await op(http, host, "invocation")
    assert len(out["invocation_id"]) == 36


# -- start_new / create_check_status_response ---------------------------------------------------


async def test_http_starter_check_status_urls_are_usable(host, http):
    async with http.post(host.api_url("orchestrators/hello_sequence")) as r:
        assert r.status == 202
        assert r.headers["Retry-After"] == "10"
        urls = await r.json()
        assert r.headers["Location"] == urls["statusQueryGetUri"]
    assert set(urls) >= {
        "id",
        "statusQueryGetUri",
        "sendEventPostUri",
        "terminatePostUri",
        "rewindPostUri",
        "purgeHistoryDeleteUri",
        "restartPostUri",
        "suspendPostUri",
        "resumePostUri",
    }
    for _ in range(200):
        async with http.get(urls["statusQueryGetUri"]) as r:
            status = await r.json()
            if status["runtimeStatus"] == "Completed":
                assert r.status == 200
                break
            assert r.status == 202
            assert r.headers["Retry-After"] == "5"
        await asyncio.sleep(0.05)
    assert status["output"] == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
    async with http.delete(urls["purgeHistoryDeleteUri"]) as r:
        assert r.status == 200
        assert await r.json() == {"instancesDeleted": 1}
    async with http.get(urls["statusQueryGetUri"]) as r:
        assert r.status == 404


async def test_start_new_with_and_without_id_direct(host):
    client = host.client()
    generated = await client.start_new("hello_sequence", client_input=["Oslo"])
    assert len(generated) == 32
    chosen = await client.start_new("hello_sequence", "my-id-1", ["Rome"])
    assert chosen == "my-id-1"
    assert (await host.wait(generated))["output"] == ["Hello Oslo!"]
    assert (await host.wait(chosen))["output"] == ["Hello Rome!"]


async def test_start_new_with_id_through_http(host, http):
    async with http.post(host.api_url("orchestrators/hello_sequence/fixed-42"), json=["Lima"]) as r:
        assert (await r.json())["id"] == "fixed-42"
    assert (await host.wait("fixed-42"))["output"] == ["Hello Lima!"]


async def test_start_new_unknown_function_raises_extension_message(host):
    with pytest.raises(Exception, match="The function 'nope' doesn't exist, is disabled, or is not an orchestrator"):
        await host.client().start_new("nope")


async def test_start_input_is_double_encoded_but_round_trips(host):
    client = host.client()
    iid = await client.start_new("echo_input", client_input={"a": 1})
    status = await host.wait(iid)
    assert status["output"] == {"value": {"a": 1}, "type": "dict"}
    s = await client.get_status(iid)
    assert s.input_ == '{"a": 1}'  # double encoding (docs/devhost.md): the status input is the JSON text


async def test_wait_for_completion_or_create_check_status_response(host, http):
    async with http.post(host.api_url("startwait/hello_sequence"), json=["Kyiv"]) as r:
        assert r.status == 200
        assert await r.json() == ["Hello Kyiv!"]
    async with http.post(host.api_url("startwait/wait_event?timeout=300")) as r:
        assert r.status == 202
        body = await r.json()
        assert r.headers["Location"] == body["statusQueryGetUri"]
    async with http.post(host.api_url("startwait/fails")) as r:
        assert r.status == 500
        assert (await r.json())["runtimeStatus"] == "Failed"


# -- get_status --------------------------------------------------------------------------------


async def test_get_status_flags_direct(host):
    client = host.client()
    iid = await client.start_new("hello_sequence", client_input=["Nice"])
    await host.wait(iid)
    plain = await client.get_status(iid)
    assert plain.runtime_status == df.OrchestrationRuntimeStatus.Completed
    assert plain.output == ["Hello Nice!"]
    assert not hasattr(plain, "historyEvents")
    full = await client.get_status(iid, show_history=True, show_history_output=True, show_input=True)
    types = [e["EventType"] for e in full.historyEvents]
    assert "ExecutionStarted" in types and "TaskCompleted" in types and "ExecutionCompleted" in types
    assert any(e.get("Result") for e in full.historyEvents if e["EventType"] == "TaskCompleted")
    no_output = await client.get_status(iid, show_history=True)
    assert not any("Result" in e for e in no_output.historyEvents)
    missing = await client.get_status("does-not-exist")
    assert not missing


async def test_get_status_through_http(host, http):
    iid = await host.client().start_new("hello_sequence", client_input=["Bern"])
    await host.wait(iid)
    out = await op(http, host, "get_status", iid, show_history=True, show_history_output=True)
    assert out["truthy"] and out["runtimeStatus"] == "Completed"
    assert out["output"] == ["Hello Bern!"]
    assert out["historyEvents"]
    missing = await op(http, host, "get_status", "nobody")
    assert missing["truthy"] is False


async def test_get_status_all_and_by(host, http):
    client = host.client()
    done = await client.start_new("hello_sequence", "alpha-1", ["A"])
    waiting = await client.start_new("wait_event", "beta-1")
    await host.wait(done)
    await wait_status(client, waiting, "Running")
    all_ids = sorted(s.instance_id for s in await client.get_status_all())
    assert all_ids == ["alpha-1", "beta-1"]
    assert await op(http, host, "get_status_all") == all_ids
    running = await client.get_status_by(runtime_status=[df.OrchestrationRuntimeStatus.Running])
    assert [s.instance_id for s in running] == ["beta-1"]
    by_prefix = await client.get_status_by(instance_id_prefix="alp")
    assert [s.instance_id for s in by_prefix] == ["alpha-1"]
    future = datetime.now(UTC) + timedelta(hours=1)
    assert await client.get_status_by(created_time_from=future) == []
    past = (datetime.now(UTC) - timedelta(hours=1)).replace(tzinfo=None)
    assert await op(http, host, "get_status_by", **{"from": past.isoformat(), "runtime_status": ["Completed"]}) == [
        "alpha-1"
    ]


# -- raise_event (double encoding) -----------------------------------------------------------


async def test_raise_event_direct_delivers_json_text(host):
    client = host.client()
    iid = await client.start_new("wait_event")
    await wait_status(client, iid, "Running")
    await client.raise_event(iid, "Approval", {"ok": 1})
    status = await host.wait(iid)
    # docs/devhost.md / azure-functions-durable-python#295: the orchestrator gets the JSON *text*.
    assert status["output"] == {"value": '{"ok": 1}', "type": "str"}


async def test_raise_event_through_http_and_raw_json_post(host, http):
    client = host.client()
    iid = await client.start_new("wait_event")
    await wait_status(client, iid, "Running")
    assert await op(http, host, "raise_event", iid, name="Approval", data="1234") == {"ok": True}
    assert (await host.wait(iid))["output"] == {"value": '"1234"', "type": "str"}

    iid2 = await client.start_new("wait_event")
    await wait_status(client, iid2, "Running")
    urls = client.create_http_management_payload(iid2)
    async with http.post(urls["sendEventPostUri"].replace("{eventName}", "Approval"), json={"ok": 1}) as r:
        assert r.status == 202
    assert (await host.wait(iid2))["output"] == {"value": {"ok": 1}, "type": "dict"}


async def test_raise_event_errors(host, http):
    client = host.client()
    with pytest.raises(Exception, match="No instance with ID nobody found"):
        await client.raise_event("nobody", "Approval", 1)
    iid = await client.start_new("hello_sequence")
    await host.wait(iid)
    with pytest.raises(Exception, match="is gone"):
        await client.raise_event(iid, "Approval", 1)
    out = await op(http, host, "raise_event", "nobody", expect=409, name="Approval", data=1)
    assert "No instance with ID nobody found" in out["error"]


# -- terminate / suspend / resume -------------------------------------------------------------


async def test_terminate_direct_and_via_http(host, http):
    client = host.client()
    a = await client.start_new("long_timer")
    b = await client.start_new("long_timer")
    await wait_status(client, a, "Running")
    await wait_status(client, b, "Running")
    await client.terminate(a, "enough")
    assert await op(http, host, "terminate", b, reason="also enough") == {"ok": True}
    sa, sb = await host.wait(a), await host.wait(b)
    assert (sa["runtimeStatus"], sa["output"]) == ("Terminated", "enough")
    assert (sb["runtimeStatus"], sb["output"]) == ("Terminated", "also enough")
    await client.terminate(a, "again")  # 410 is not an error for the SDK
    with pytest.raises(Exception, match="No instance with ID 'nobody' found"):
        await client.terminate("nobody", "x")


async def test_suspend_and_resume(host, http):
    client = host.client()
    iid = await client.start_new("wait_event")
    await wait_status(client, iid, "Running")
    await client.suspend(iid, "pause")
    await wait_status(client, iid, "Suspended")
    assert await op(http, host, "resume", iid, reason="go") == {"ok": True}
    await wait_status(client, iid, "Running")
    assert await op(http, host, "suspend", iid) == {"ok": True}
    await wait_status(client, iid, "Suspended")
    await client.resume(iid, "go on")
    await wait_status(client, iid, "Running")
    await client.raise_event(iid, "Approval", True)
    assert (await host.wait(iid))["output"] == {"value": "true", "type": "str"}


# -- purge --------------------------------------------------------------------------------------


async def test_purge_instance_history(host, http):
    client = host.client()
    a = await client.start_new("hello_sequence")
    b = await client.start_new("hello_sequence")
    await host.wait(a)
    await host.wait(b)
    assert (await client.purge_instance_history(a)).instances_deleted == 1
    assert (await client.purge_instance_history(a)).instances_deleted == 0  # 404 -> 0
    assert await op(http, host, "purge_instance_history", b) == {"deleted": 1}
    assert not await client.get_status(b)


async def test_purge_instance_history_by(host, http):
    client = host.client()
    ids = [await client.start_new("hello_sequence") for _ in range(3)]
    for iid in ids:
        await host.wait(iid)
    running = await client.start_new("wait_event")
    await wait_status(client, running, "Running")
    since = datetime.now(UTC) - timedelta(minutes=5)
    result = await client.purge_instance_history_by(
        created_time_from=since, runtime_status=[df.OrchestrationRuntimeStatus.Completed]
    )
    assert result.instances_deleted == 3
    # Running in the filter is dropped, leaving no status filter at all: Azure Storage then purges every
    # status in the range, Running included (AzureTableTrackingStore.PurgeInstanceHistoryAsync).
    result = await client.purge_instance_history_by(
        created_time_from=since, runtime_status=[df.OrchestrationRuntimeStatus.Running]
    )
    assert result.instances_deleted == 1
    assert (await client.get_status(running)).runtime_status is None
    running = await client.start_new("wait_event")
    await wait_status(client, running, "Running")
    await client.terminate(running, "done")
    await host.wait(running)
    out = await op(http, host, "purge_instance_history_by", **{"from": since.replace(tzinfo=None).isoformat()})
    assert out == {"deleted": 1}


# -- keys ---------------------------------------------------------------------------------------


async def test_keys_flow_through_binding_and_management_urls(devhost_factory, http):  # noqa: F811
    host = await devhost_factory(APP, keys={"function": ["fk"], "master": "mk", "system": "sk"})
    binding = json.loads(host.client_binding())
    assert binding["requiredQueryStringParameters"] == "code=sk"
    assert binding["managementUrls"]["statusQueryGetUri"].endswith("&code=sk")
    # the app is ANONYMOUS, so the starter needs no key; the URLs it returns carry the system key
    async with http.post(host.api_url("orchestrators/hello_sequence")) as r:
        urls = await r.json()
    assert "code=sk" in urls["statusQueryGetUri"]
    assert (await host.wait(urls["id"]))["runtimeStatus"] == "Completed"
    async with http.get(urls["statusQueryGetUri"]) as r:
        assert r.status == 200
    bare = urls["statusQueryGetUri"].split("?")[0]
    async with http.get(bare) as r:
        assert r.status == 401
    async with http.get(bare, headers={"x-functions-key": "mk"}) as r:
        assert r.status == 200
    async with http.get(bare + "?code=fk") as r:  # a function key is not enough for the webhook
        assert r.status == 401
