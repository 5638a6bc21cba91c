"""The extension's HTTP management API, called raw (status codes, headers, bodies)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from durable_devhost.testing import DevHost, devhost_factory  # noqa: F401 - fixture

APP = Path(__file__).parent / "apps" / "durable_basics"
ROOTS = ("/runtime/webhooks/durabletask", "/durabletask")


@pytest.fixture
async def host(devhost_factory):  # noqa: F811
    return await devhost_factory(APP)


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


async def running(host: DevHost, iid: str) -> None:
    for _ in range(200):
        s = await host.status(iid)
        if s and s["runtimeStatus"] == "Running":
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{iid} never ran")


@pytest.mark.parametrize("root", ROOTS)
async def test_start_returns_202_check_status_payload(host, http, root):
    async with http.post(f"{host.url}{root}/orchestrators/hello_sequence", json={"cities": ["X"]}) as r:
        assert r.status == 202
        body = await r.json()
        assert r.headers["Location"] == body["statusQueryGetUri"]
        assert r.headers["Retry-After"] == "10"
    # the extension's own 202 has no rewindPostUri (CreateCheckStatusResponseMessage)
    assert list(body) == [
        "id",
        "statusQueryGetUri",
        "sendEventPostUri",
        "terminatePostUri",
        "purgeHistoryDeleteUri",
        "restartPostUri",
        "suspendPostUri",
        "resumePostUri",
    ]
    assert body["statusQueryGetUri"].startswith(f"{host.url}/runtime/webhooks/durabletask/instances/{body['id']}?")
    status = await host.wait(body["id"])
    assert status["input"] == {"cities": ["X"]}  # a raw JSON body is an object, not double-encoded
    assert status["output"] == ["Hello X!"]


async def test_raw_json_array_input_fails_in_the_sdk_like_on_azure(host):
    # The context carries the input token parsed once; the SDK re-serialises only dicts,
    # so get_input() gets a list and json.loads raises (same with the real extension).
    iid = await host.start_orchestration("hello_sequence", ["X"], raw=True)
    status = await host.wait(iid)
    assert status["runtimeStatus"] == "Failed"
    assert "must be str, bytes or bytearray, not list" in status["output"]


async def test_start_unknown_function_is_400_with_extension_error(host, http):
    async with http.post(f"{host.url}/durabletask/orchestrators/missing") as r:
        assert r.status == 400
        body = await r.json()
    assert body["Message"] == "One or more of the arguments submitted is incorrect"
    assert body["ExceptionMessage"].startswith(
        "The function 'missing' doesn't exist, is disabled, or is not an orchestrator function."
    )
    assert body["ExceptionType"] == "System.ArgumentException"
    assert "StackTrace" in body


async def test_start_existing_running_id_is_500_like_the_extension(host, http):
    url = f"{host.url}/durabletask/orchestrators/wait_event/dup-1"
    async with http.post(url) as r:
        assert r.status == 202
    await running(host, "dup-1")
    async with http.post(url) as r:
        assert r.status == 500
        body = await r.json()
    assert body["Message"] == "Something went wrong while processing your request"
    assert body["ExceptionType"] == "DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException"
    # a finished instance with that id is replaced
    await host.raise_event("dup-1", "Approval", 1)
    await host.wait("dup-1")
    async with http.post(url) as r:
        assert r.status == 202


async def test_start_rejects_bad_ids_and_bad_json(host, http):
    async with http.post(f"{host.url}/durabletask/orchestrators/hello_sequence/@bad") as r:
        assert r.status == 400
        assert (await r.json())["ExceptionType"] == "System.ArgumentException"
    async with http.post(f"{host.url}/durabletask/orchestrators/hello_sequence", data=b"{nope") as r:
        assert r.status == 400
        assert (await r.json())["Message"] == "Invalid JSON content"
    async with http.get(f"{host.url}/durabletask/orchestrators/hello_sequence") as r:
        assert r.status == 404


async def test_start_and_wait_query(host, http):
    url = f"{host.url}/runtime/webhooks/durabletask/orchestrators/hello_sequence?timeout=10&pollingInterval=0.05"
    async with http.post(url, json={"cities": ["W"]}) as r:
        assert r.status == 200
        assert await r.json() == ["Hello W!"]


async def test_status_codes_and_headers(host, http):
    iid = await host.start_orchestration("wait_event")
    await running(host, iid)
    url = f"{host.url}/runtime/webhooks/durabletask/instances/{iid}"
    async with http.get(url) as r:
        assert r.status == 202
        assert r.headers["Location"] == url
        assert r.headers["Retry-After"] == "5"
        assert (await r.json())["customStatus"] == "waiting"
    await host.raise_event(iid, "Approval", 1)
    await host.wait(iid)
    async with http.get(url) as r:
        assert r.status == 200
        assert "Location" not in r.headers
    async with http.get(f"{host.url}/durabletask/instances/unknown") as r:
        assert r.status == 404
        assert await r.read() == b""


async def test_status_flags_parse_like_dotnet_bool(host, http):
    iid = await host.start_orchestration("hello_sequence", {"cities": ["Q"]}, raw=True)
    await host.wait(iid)
    base = f"{host.url}/durabletask/instances/{iid}"
    async with http.get(f"{base}?SHOWHISTORY=TRUE&showHistoryOutput=True&showInput=false") as r:
        body = await r.json()
    assert body["input"] is None
    assert any("Result" in e for e in body["historyEvents"])
    async with http.get(f"{base}?showHistory=yes") as r:  # not a .NET bool -> default false
        assert "historyEvents" not in await r.json()
    async with http.get(base) as r:  # showInput defaults to true on the server
        assert (await r.json())["input"] == {"cities": ["Q"]}


async def test_failed_instance_status_and_return_500_flag(host, http):
    iid = await host.start_orchestration("fails")
    status = await host.wait(iid)
    assert status["runtimeStatus"] == "Failed"
    assert "nope" in status["output"]
    base = f"{host.url}/durabletask/instances/{iid}"
    async with http.get(base) as r:
        assert r.status == 200
    async with http.get(base + "?returnInternalServerErrorOnFailure=true") as r:
        assert r.status == 500


async def test_list_filters_and_paging(host, http):
    for i in range(5):
        await host.start_orchestration("hello_sequence", {"cities": ["P"]}, instance_id=f"page-{i}", raw=True)
    await host.start_orchestration("wait_event", instance_id="other-1")
    for i in range(5):
        await host.wait(f"page-{i}")
    base = f"{host.url}/durabletask/instances/"
    async with http.get(base + "?instanceIdPrefix=page-&runtimeStatus=Completed,Failed") as r:
        assert r.status == 200
        assert r.headers["x-ms-continuation-token"] == ""
        assert sorted(s["instanceId"] for s in await r.json()) == [f"page-{i}" for i in range(5)]
    seen: list[str] = []
    token = None
    for _ in range(5):
        headers = {"x-ms-continuation-token": token} if token else {}
        async with http.get(base + "?instanceIdPrefix=page-&top=2", headers=headers) as r:
            page = await r.json()
            token = r.headers["x-ms-continuation-token"]
        assert len(page) <= 2
        seen += [s["instanceId"] for s in page]
        if not token:
            break
    assert sorted(seen) == [f"page-{i}" for i in range(5)]
    async with http.get(base + "?runtimeStatus=Pending,Running") as r:
        assert [s["instanceId"] for s in await r.json()] == ["other-1"]
    later = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    async with http.get(base + f"?createdTimeFrom={later}") as r:
        assert await r.json() == []
    async with http.get(base + "?instanceIdPrefix=page-0") as r:  # ShowInput defaults to true
        assert (await r.json())[0]["input"] == {"cities": ["P"]}
    async with http.get(base + "?showInput=False&instanceIdPrefix=page-0") as r:
        assert (await r.json())[0]["input"] is None


async def test_list_default_page_size_is_100(host, http):
    for i in range(101):
        await host.start_orchestration("echo_input", i, instance_id=f"many-{i:03d}")
    async with http.get(f"{host.url}/durabletask/instances/") as r:
        assert len(await r.json()) == 100
        token = r.headers["x-ms-continuation-token"]
    assert token
    async with http.get(f"{host.url}/durabletask/instances/", headers={"x-ms-continuation-token": token}) as r:
        assert len(await r.json()) == 1
        assert r.headers["x-ms-continuation-token"] == ""
    assert len(await host.client().get_status_all()) == 100  # the SDK reads the first page only


async def test_raise_event_codes(host, http):
    iid = await host.start_orchestration("wait_event")
    await running(host, iid)
    url = f"{host.url}/durabletask/instances/{iid}/raiseEvent/Approval"
    async with http.post(url, data=b"hi", headers={"Content-Type": "text/plain"}) as r:
        assert r.status == 400
        assert await r.json() == {"Message": "Only application/json request content is supported"}
    async with http.post(f"{host.url}/durabletask/instances/nobody/raiseEvent/Approval", json=1) as r:
        assert r.status == 404
    async with http.post(url, json=[1, 2]) as r:
        assert r.status == 202
        assert await r.read() == b""
    assert (await host.wait(iid))["output"] == {"value": [1, 2], "type": "list"}
    async with http.post(url, json=1) as r:
        assert r.status == 410


async def test_terminate_suspend_resume_codes(host, http):
    iid = await host.start_orchestration("long_timer")
    await running(host, iid)
    base = f"{host.url}/runtime/webhooks/durabletask/instances/{iid}"
    async with http.post(base + "/suspend?reason=hold") as r:
        assert r.status == 202
    for _ in range(100):
        if (await host.status(iid))["runtimeStatus"] == "Suspended":
            break
        await asyncio.sleep(0.02)
    async with http.get(base) as r:
        assert r.status == 202 and (await r.json())["runtimeStatus"] == "Suspended"
    async with http.post(base + "/resume?reason=go") as r:
        assert r.status == 202
    async with http.post(base + "/terminate?reason=stop%20now") as r:
        assert r.status == 202
    status = await host.wait(iid)
    assert (status["runtimeStatus"], status["output"]) == ("Terminated", "stop now")
    for op in ("terminate", "suspend", "resume"):
        async with http.post(f"{base}/{op}") as r:
            assert r.status == 410, op
        async with http.post(f"{host.url}/durabletask/instances/nobody/{op}") as r:
            assert r.status == 404, op


async def test_purge_codes(host, http):
    iid = await host.start_orchestration("hello_sequence")
    await host.wait(iid)
    async with http.delete(f"{host.url}/durabletask/instances/{iid}") as r:
        assert r.status == 200
        assert await r.json() == {"instancesDeleted": 1}
    async with http.delete(f"{host.url}/durabletask/instances/{iid}") as r:
        assert r.status == 404
    async with http.delete(f"{host.url}/durabletask/instances/") as r:
        assert r.status == 400
        assert await r.json() == "Please provide value for 'createdTimeFrom' parameter."
    since = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    async with http.delete(f"{host.url}/durabletask/instances/?createdTimeFrom={since}") as r:
        assert r.status == 404  # nothing to delete
    other = await host.start_orchestration("hello_sequence")
    await host.wait(other)
    async with http.delete(f"{host.url}/durabletask/instances/?createdTimeFrom={since}&runtimeStatus=Completed") as r:
        assert await r.json() == {"instancesDeleted": 1}


async def test_restart(host, http):
    iid = await host.start_orchestration("hello_sequence", {"cities": ["R"]}, raw=True)
    assert (await host.wait(iid))["output"] == ["Hello R!"]
    async with http.post(f"{host.url}/durabletask/instances/{iid}/restart") as r:
        assert r.status == 202
        new_id = (await r.json())["id"]
    assert new_id != iid
    assert (await host.wait(new_id))["output"] == ["Hello R!"]
    async with http.post(f"{host.url}/durabletask/instances/{iid}/restart?restartWithNewInstanceId=false") as r:
        assert (await r.json())["id"] == iid
    sdk_style = await host.start_orchestration("hello_sequence", ["S"])  # double-encoded input
    assert (await host.wait(sdk_style))["input"] == '["S"]'
    async with http.post(f"{host.url}/durabletask/instances/{sdk_style}/restart") as r:
        again = (await r.json())["id"]
    assert (await host.wait(again))["output"] == ["Hello S!"]
    async with http.post(f"{host.url}/durabletask/instances/nobody/restart") as r:
        assert r.status == 400


async def test_unsupported_and_unknown_paths(host, http):
    async with http.get(f"{host.url}/durabletask/entities/Counter/one") as r:
        assert r.status == 501
    async with http.get(f"{host.url}/durabletask/nothing/here") as r:
        assert r.status == 404
    async with http.put(f"{host.url}/durabletask/instances/x") as r:
        assert r.status == 404
