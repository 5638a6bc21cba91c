"""Timer-triggered functions: NCRONTAB schedules, %setting% schedules, the host's
clock (time skipping moves timers too), the Durable client binding, manual runs."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import aiohttp
import azure.durable_functions as df
import azure.functions as func
import pytest

from durable_devhost.testing import DevHost
from durable_devhost.timer_triggers import CronSchedule, ScheduleError, resolve_settings

T0 = datetime(2026, 12, 1, 11, 34, 20, tzinfo=UTC)  # a Tuesday


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("*/5 * * * * *", datetime(2026, 12, 1, 11, 34, 25, tzinfo=UTC)),
        ("0 7 * * * *", datetime(2026, 12, 1, 12, 7, 0, tzinfo=UTC)),
        ("0 0 3 * * *", datetime(2026, 12, 2, 3, 0, 0, tzinfo=UTC)),
        ("0 30 9 * * Mon-Fri", datetime(2026, 12, 2, 9, 30, 0, tzinfo=UTC)),
        ("0 0 0 1 Jan *", datetime(2027, 1, 1, tzinfo=UTC)),
        ("0 0 12 * * 0", datetime(2026, 12, 6, 12, tzinfo=UTC)),  # Sunday is 0
        ("0 0 12 * * 7", datetime(2026, 12, 6, 12, tzinfo=UTC)),  # and 7
        ("35 * * * *", datetime(2026, 12, 1, 11, 35, 0, tzinfo=UTC)),  # five fields: no seconds
        ("0 0 0 13 * 5", datetime(2027, 8, 13, tzinfo=UTC)),  # day AND weekday: Friday the 13th
    ],
)
def test_next_occurrence(expression: str, expected: datetime) -> None:
    assert CronSchedule.parse(expression).next_after(T0) == expected


@pytest.mark.parametrize("expression", ["", "* * *", "61 * * * * *", "0 0 25 * * *", "00:05:00", "0 0 0 31 2 *"])
def test_schedules_the_host_refuses(expression: str) -> None:
    with pytest.raises(ScheduleError):
        CronSchedule.parse(expression).next_after(T0)


def test_app_setting_expressions() -> None:
    assert resolve_settings("%PURGE%", {"PURGE": "0 7 * * * *"}) == "0 7 * * * *"
    with pytest.raises(ScheduleError, match="does not resolve"):
        resolve_settings("%MISSING%", {})


def timer_app(calls: list[tuple[bool, int]]) -> df.DFApp:
    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.orchestration_trigger(context_name="context")
    def noop(context):
        return "done"
        yield  # pragma: no cover

    @app.timer_trigger(schedule="0 0 * * * *", arg_name="timer")
    @app.durable_client_input(client_name="client")
    async def hourly(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
        finished = await client.get_status_by(runtime_status=[df.OrchestrationRuntimeStatus.Completed])
        calls.append((timer.past_due, len(finished)))

    return app


async def test_a_timer_function_runs_on_the_host_clock_with_a_durable_client() -> None:
    calls: list[tuple[bool, int]] = []
    async with DevHost(timer_app(calls)) as host:
        instance = await host.start_orchestration("noop")
        await host.wait(instance)
        assert calls == [], "not before its first occurrence"
        await host.skip(timedelta(hours=1, seconds=1))
        for _ in range(50):
            if calls:
                break
            await asyncio.sleep(0.1)
        assert calls and calls[0][1] == 1, "the client binding reaches this host's task hub"

        # The host's manual-run API (POST /admin/functions/{name}) and DevHost.run_timer.
        async with aiohttp.ClientSession() as http, http.post(f"{host.url}/admin/functions/hourly", json={}) as r:
            assert r.status == 202
        await host.run_timer("hourly")
        for _ in range(50):
            if len(calls) >= 3:
                break
            await asyncio.sleep(0.1)
        assert len(calls) == 3
        async with aiohttp.ClientSession() as http, http.post(f"{host.url}/admin/functions/nope", json={}) as r:
            assert r.status == 404


def override_app() -> df.DFApp:
    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.orchestration_trigger(context_name="context")
    def greet(context):
        first = yield context.call_activity("hello", "a")
        second = yield context.call_activity("shout", "b")
        return [first, second]

    @app.activity_trigger(input_name="name")
    def hello(name: str) -> str:
        return f"real {name}"

    @app.activity_trigger(input_name="name")
    def shout(name: str) -> str:
        return name.upper()

    return app


async def test_activity_overrides_replace_one_activity_for_one_host() -> None:
    async def fake_hello(name: str) -> str:  # async stands in for sync, and the other way round
        return f"fake {name}"

    async with DevHost(override_app(), activity_overrides={"hello": fake_hello}) as host:
        iid = await host.start_orchestration("greet")
        status = await host.wait(iid, timeout=10)
    assert status["output"] == ["fake a", "B"]
    async with DevHost(override_app()) as host:  # the app itself is untouched
        status = await host.wait(await host.start_orchestration("greet"), timeout=10)
    assert status["output"] == ["real a", "B"]
    with pytest.raises(ValueError, match="no activity named 'helo'"):
        async with DevHost(override_app(), activity_overrides={"helo": fake_hello}):
            pass
    with pytest.raises(ValueError, match="processes=0"):
        DevHost(override_app(), activity_overrides={"hello": fake_hello}, processes=2)
