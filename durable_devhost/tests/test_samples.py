"""The SDK's own samples, run unchanged (orchestrator bodies) through the host's HTTP starter.

samples-v2 function_chaining / fan_in_fan_out / blueprint are copied; the v1 samples
human_interaction, monitor and simple_sub_orchestration are ported to v2 (see
apps/NOTICE and each file's header for what changed).
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from durable_devhost.history import EventType
from durable_devhost.testing import DevHost, devhost_factory  # noqa: F401 - fixture

APPS = Path(__file__).parent / "apps"


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


async def start_via_http(http, host: DevHost, route: str, body=None) -> dict:
    kwargs = {} if body is None else {"data": json.dumps(body), "headers": {"Content-Type": "application/json"}}
    async with http.post(host.api_url(route), **kwargs) as r:
        assert r.status == 202, await r.text()
        urls = await r.json()
    assert r.headers["Location"] == urls["statusQueryGetUri"]
    return urls


async def poll_until_done(http, urls: dict, timeout: float = 30.0) -> dict:
    """What a browser/curl user does with statusQueryGetUri."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        async with http.get(urls["statusQueryGetUri"]) as r:
            status = await r.json()
            if r.status == 200:
                return status
            assert r.status == 202
        assert asyncio.get_running_loop().time() < deadline, status
        await asyncio.sleep(0.05)


async def test_function_chaining(devhost_factory, http):  # noqa: F811
    host = await devhost_factory(APPS / "function_chaining")
    urls = await start_via_http(http, host, "orchestrators/my_orchestrator")
    status = await poll_until_done(http, urls)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]


async def test_fan_in_fan_out(devhost_factory, http, tmp_path):  # noqa: F811
    sizes = {}
    for i in range(4):
        d = tmp_path / f"E2_Func{i}"
        d.mkdir()
        for name, n in (("__init__.py", 10 + i), ("function.json", 100 * (i + 1)), ("other.txt", 7)):
            (d / name).write_bytes(b"x" * n)
            if name != "other.txt":
                sizes[str(d / name)] = n
    host = await devhost_factory(APPS / "fan_in_fan_out")
    urls = await start_via_http(http, host, "orchestrators/E2_BackupSiteContent", str(tmp_path))
    status = await poll_until_done(http, urls)
    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == sum(sizes.values())
    scheduled = [e for e in host.history(urls["id"]) if e["EventType"] == EventType.TASK_SCHEDULED]
    assert sorted(e["Name"] for e in scheduled) == ["E2_CopyFileToBlob"] * 8 + ["E2_GetFileList"]


async def test_fan_in_fan_out_without_input_fails_as_documented(devhost_factory, http):  # noqa: F811
    host = await devhost_factory(APPS / "fan_in_fan_out")
    urls = await start_via_http(http, host, "orchestrators/E2_BackupSiteContent", "")
    status = await poll_until_done(http, urls)
    assert status["runtimeStatus"] == "Failed"
    assert "A directory path is required as input" in status["output"]


async def test_blueprint(devhost_factory, http):  # noqa: F811
    host = await devhost_factory(APPS / "blueprint")
    urls = await start_via_http(http, host, "startOrchestrator")
    status = await poll_until_done(http, urls)
    assert status["output"] == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
    async with http.get(host.api_url("HttpTrigger?name=Ada")) as r:
        assert "Hello, Ada." in await r.text()


async def test_simple_sub_orchestration(devhost_factory, http):  # noqa: F811
    host = await devhost_factory(APPS / "simple_sub_orchestration")
    urls = await start_via_http(http, host, "orchestrators/DurableOrchestrator")
    status = await poll_until_done(http, urls)
    assert status["output"] == "Hello Seattle!"
    children = [i for i in await host.engine.list_instances() if i["name"] == "DurableSubOrchestrator"]
    assert len(children) == 1 and children[0]["runtimeStatus"] == "Completed"


# -- human interaction (E4_SMSPhoneVerification) -----------------------------------------------


async def challenge_code(host: DevHost, instance_id: str) -> str:
    for _ in range(400):
        for e in host.history(instance_id):
            if e["EventType"] == EventType.TASK_COMPLETED:
                return json.loads(e["Result"])
        await asyncio.sleep(0.02)
    raise AssertionError("SendSMSChallenge never completed")


async def test_human_interaction_correct_code_via_send_event_uri(devhost_factory, http):  # noqa: F811
    host = await devhost_factory(APPS / "human_interaction")
    urls = await start_via_http(http, host, "orchestrators/E4_SMSPhoneVerification", "+14255550123")
    code = await challenge_code(host, urls["id"])
    # a raw JSON body (curl / browser) arrives as the value itself (docs/devhost.md, double encoding)
    async with http.post(urls["sendEventPostUri"].replace("{eventName}", "SmsChallengeResponse"), json=code) as r:
        assert r.status == 202
    status = await poll_until_done(http, urls)
    assert status["output"] is True
    names = [EventType(e["EventType"]).name for e in host.history(urls["id"])]
    assert "TIMER_FIRED" not in names  # the 180 s timer was cancelled, never fired


async def test_human_interaction_wrong_codes_then_false(devhost_factory, http):  # noqa: F811
    host = await devhost_factory(APPS / "human_interaction")
    urls = await start_via_http(http, host, "orchestrators/E4_SMSPhoneVerification", "+14255550123")
    await challenge_code(host, urls["id"])
    for guess in ("1", "2", "3"):
        await host.raise_event(urls["id"], "SmsChallengeResponse", guess)
    status = await poll_until_done(http, urls)
    assert status["output"] is False


async def test_human_interaction_sdk_raise_event_is_double_encoded(devhost_factory, http):  # noqa: F811
    # azure-functions-durable-python#295: the Python client's raise_event sends JSON text, so
    # the orchestrator compares '"1234"' with "1234" and never authorises. Kept on purpose.
    host = await devhost_factory(APPS / "human_interaction")
    urls = await start_via_http(http, host, "orchestrators/E4_SMSPhoneVerification", "+14255550123")
    code = await challenge_code(host, urls["id"])
    client = host.client()
    for _ in range(3):
        await client.raise_event(urls["id"], "SmsChallengeResponse", code)
    status = await poll_until_done(http, urls)
    assert status["output"] is False


async def test_human_interaction_timeout_with_time_skipping(devhost_factory, http):  # noqa: F811
    host = await devhost_factory(APPS / "human_interaction", time_skipping=True)
    urls = await start_via_http(http, host, "orchestrators/E4_SMSPhoneVerification", "+14255550123")
    status = await poll_until_done(http, urls, timeout=10)
    assert status["output"] is False
    names = [EventType(e["EventType"]).name for e in host.history(urls["id"])]
    assert "TIMER_FIRED" in names


async def test_human_interaction_timeout_with_manual_skip(devhost_factory, http):  # noqa: F811
    host = await devhost_factory(APPS / "human_interaction")
    urls = await start_via_http(http, host, "orchestrators/E4_SMSPhoneVerification", "+14255550123")
    await challenge_code(host, urls["id"])
    await host.wait_idle()
    await host.skip(timedelta(seconds=181))
    status = await poll_until_done(http, urls, timeout=10)
    assert status["output"] is False


async def test_human_interaction_bad_phone_number_fails(devhost_factory, http):  # noqa: F811
    host = await devhost_factory(APPS / "human_interaction")
    urls = await start_via_http(http, host, "orchestrators/E4_SMSPhoneVerification", "12345")
    status = await poll_until_done(http, urls)
    assert status["runtimeStatus"] == "Failed"
    assert "Please provide a phone number" in status["output"]


# -- monitor (E3_Monitor) ----------------------------------------------------------------------


async def test_monitor_quiet_repo_polls_until_expiry(devhost_factory, http):  # noqa: F811
    host = await devhost_factory(APPS / "monitor", time_skipping=True)
    urls = await start_via_http(http, host, "orchestrators/E3_Monitor", {"repo": "octo/quiet", "phone": "+1425"})
    status = await poll_until_done(http, urls, timeout=20)
    assert status["output"] == "Monitor completed!"
    assert status["customStatus"] == "The repository does not have too many issues, for now ..."
    history = host.history(urls["id"])
    fired = [e for e in history if e["EventType"] == EventType.TIMER_FIRED]
    checks = [e for e in history if e["EventType"] == EventType.TASK_SCHEDULED]
    assert len(fired) == 5 and len(checks) == 5  # one check a minute for five (virtual) minutes


async def test_monitor_busy_repo_sends_alert(devhost_factory, http):  # noqa: F811
    host = await devhost_factory(APPS / "monitor", time_skipping=True)
    urls = await start_via_http(http, host, "orchestrators/E3_Monitor", {"repo": "octo/busy", "phone": "+1425"})
    status = await poll_until_done(http, urls)
    assert status["output"] == "Monitor completed!"
    names = [e.get("Name") for e in host.history(urls["id"]) if e["EventType"] == EventType.TASK_SCHEDULED]
    assert names == ["E3_TooManyOpenIssues", "E3_SendAlert"]
