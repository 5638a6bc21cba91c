"""``python -m durable_devhost`` in a child process: start-up banner, kill -9, restart, resume."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp

from durable_devhost.testing import SubprocessDevHost, subprocess_devhost_factory  # noqa: F401

APP = Path(__file__).parent / "apps" / "slow_fanout"


async def _status(http, url: str) -> dict:
    async with http.get(url) as r:
        return await r.json()


async def test_kill_9_mid_fan_out_then_restart_completes(subprocess_devhost_factory, tmp_path):  # noqa: F811
    host: SubprocessDevHost = subprocess_devhost_factory(APP, env={"SLOW_SQUARE_SECONDS": "0.4"})
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{host.url}/api/orchestrators/fan_out", json=10) as r:
            assert r.status == 202
            urls = await r.json()
        history_url = urls["statusQueryGetUri"] + "&showHistory=true"
        for _ in range(300):
            events = (await _status(http, history_url)).get("historyEvents", [])
            done = [e for e in events if e["EventType"] == "TaskCompleted"]
            if len(done) >= 2:
                break
            await asyncio.sleep(0.02)
        assert 2 <= len(done) < 10, "kill must happen mid fan-out"

        await asyncio.to_thread(host.kill)
        assert host.proc is not None and host.proc.returncode == -9
        await asyncio.to_thread(host.restart)

        for _ in range(600):
            status = await _status(http, urls["statusQueryGetUri"])
            if status["runtimeStatus"] != "Running":
                break
            await asyncio.sleep(0.05)
    assert status["runtimeStatus"] == "Completed", status
    assert status["output"] == [i * i for i in range(10)]


def test_cli_prints_functions_and_stops_on_sigterm(tmp_path):
    log = tmp_path / "out.log"
    host = SubprocessDevHost(APP, state_path=tmp_path / "s.sqlite", log_path=log).start()
    try:
        with __import__("urllib.request").request.urlopen(f"{host.url}/admin/host/status") as r:
            assert json.load(r)["taskHubName"] == "SlowFanOut"
    finally:
        code = host.stop()
    assert code == 0
    text = log.read_text()
    assert "Functions:" in text
    assert f"http_start: [POST] {host.url}/api/orchestrators/{{functionName}}" in text
    assert "fan_out: orchestrationTrigger" in text
    assert "slow_square: activityTrigger" in text
    assert (tmp_path / "s.sqlite").exists()


def test_cli_function_key_from_env(tmp_path):
    import urllib.error
    import urllib.request

    host = SubprocessDevHost(
        Path(__file__).parent / "apps" / "http_basics",
        state_path=tmp_path / "s.sqlite",
        env={"DEVHOST_FUNCTION_KEY": "envkey"},
        log_path=tmp_path / "out.log",
    ).start()
    try:
        try:
            urllib.request.urlopen(f"{host.url}/api/secret")
            raise AssertionError("expected 401")
        except urllib.error.HTTPError as e:
            assert e.code == 401
        with urllib.request.urlopen(f"{host.url}/api/secret?code=envkey") as r:
            assert r.read() == b"function level"
        with urllib.request.urlopen(f"{host.url}/api/hello") as r:  # anonymous stays open
            assert r.status == 200
    finally:
        assert host.stop() == 0
    assert "Keys are required. Master key:" in (tmp_path / "out.log").read_text()


async def test_cli_worker_processes(subprocess_devhost_factory):  # noqa: F811
    host = subprocess_devhost_factory(APP, args=["--processes", "2"], env={"SLOW_SQUARE_SECONDS": "0"})
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{host.url}/api/orchestrators/fan_out", json=4) as r:
            urls = await r.json()
        for _ in range(400):
            status = await _status(http, urls["statusQueryGetUri"])
            if status["runtimeStatus"] != "Running":
                break
            await asyncio.sleep(0.05)
    assert status["output"] == [0, 1, 4, 9]


def _children(pid: int) -> set[int]:
    """Live processes whose parent is ``pid`` (from /proc; zombies excluded)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def test_sigkill_of_a_multi_process_host_takes_its_workers_and_resource_tracker_along(subprocess_devhost_factory):  # noqa: F811
    import sys

    if not sys.platform.startswith("linux"):
        import pytest

        pytest.skip("prctl(PR_SET_PDEATHSIG) is Linux only")
    host = subprocess_devhost_factory(APP, args=["--processes", "2"], env={"SLOW_SQUARE_SECONDS": "0"})
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{host.url}/api/orchestrators/fan_out", json=4) as r:
            urls = await r.json()
        for _ in range(400):
            status = await _status(http, urls["statusQueryGetUri"])
            if status["runtimeStatus"] != "Running":
                break
            await asyncio.sleep(0.05)
    assert status["runtimeStatus"] == "Completed"
    assert host.proc is not None
    children = _children(host.proc.pid)
    assert len(children) >= 3, children  # 2 workers + the resource tracker
    await asyncio.to_thread(host.kill)
    for _ in range(100):
        if not any(_alive(pid) for pid in children):
            break
        await asyncio.sleep(0.05)
    assert not [pid for pid in children if _alive(pid)], "orphaned worker / resource tracker processes"
