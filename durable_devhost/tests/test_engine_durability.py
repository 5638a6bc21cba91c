"""Persistence (stop / kill -9 and resume), worker processes and throughput."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from devhost_helpers import client_input, running

from durable_devhost import FunctionIndex, SqliteStore
from durable_devhost.history import EventType

APP_SOURCE = textwrap.dedent("""
    import os
    import time

    import azure.durable_functions as df

    app = df.DFApp()


    @app.orchestration_trigger(context_name="context")
    def fan(context):
        n = context.get_input()
        return (yield context.task_all([context.call_activity("slow_square", i) for i in range(n)]))


    @app.orchestration_trigger(context_name="context")
    def fast_fan(context):
        n = context.get_input()
        results = yield context.task_all([context.call_activity("square", i) for i in range(n)])
        return sum(results)


    @app.orchestration_trigger(context_name="context")
    def whoami(context):
        return (yield context.call_activity("pid", None))


    @app.activity_trigger(input_name="n")
    def slow_square(n: int) -> int:
        time.sleep(0.02)
        return n * n


    @app.activity_trigger(input_name="n")
    def square(n: int) -> int:
        return n * n


    @app.orchestration_trigger(context_name="context")
    def crashy(context):
        return (yield context.call_activity("crash_once", context.get_input()))


    @app.activity_trigger(input_name="marker")
    def crash_once(marker: str) -> str:
        if not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(3)              # the worker process dies mid-activity
        return f"survived in {os.getpid()}"


    @app.activity_trigger(input_name="x")
    def pid(x, context) -> dict:
        return {"pid": os.getpid(), "function": context.function_name}
""")

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def app_file(tmp_path: Path) -> Path:
    path = tmp_path / "function_app.py"
    path.write_text(APP_SOURCE)
    return path


async def test_stop_mid_fan_out_and_resume(tmp_path: Path, app_file: Path):
    index = FunctionIndex.load(str(app_file))
    db = str(tmp_path / "state.sqlite")
    store = SqliteStore(db)
    async with running(index, store=store, max_concurrent_activities=2) as engine:
        iid = await engine.start_orchestration("fan", client_input(30))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            left = len(store.pending_work())
            if 0 < left < 25:
                break
            await asyncio.sleep(0.01)
    store.close()

    store = SqliteStore(db)
    assert store.get_instance(iid).status == "Running"
    assert 0 < len(store.pending_work()) < 30
    async with running(index, store=store, max_concurrent_activities=4) as engine:
        status = await engine.wait_for_completion(iid, 10)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == [i * i for i in range(30)]
    store.close()


async def test_kill_9_and_resume(tmp_path: Path, app_file: Path):
    db = str(tmp_path / "state.sqlite")
    script = textwrap.dedent(f"""
        import asyncio, json
        from durable_devhost import Engine, EngineOptions, FunctionIndex, SqliteStore

        async def main():
            engine = Engine(FunctionIndex.load({str(app_file)!r}), SqliteStore({db!r}),
                            options=EngineOptions(max_concurrent_activities=2))
            await engine.start()
            await engine.start_orchestration("fan", json.dumps(json.dumps(40)), "victim")
            print("started", flush=True)
            await asyncio.sleep(60)

        asyncio.run(main())
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env, cwd=str(tmp_path))
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"started"
        probe = SqliteStore(db)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            done = sum(e["EventType"] == EventType.TASK_COMPLETED for e in probe.history("victim"))
            if done >= 5:
                break
            await asyncio.sleep(0.01)
        probe.close()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    store = SqliteStore(db)
    assert store.get_instance("victim").status == "Running"
    assert store.pending_work(), "the kill should have left unfinished activities"
    async with running(FunctionIndex.load(str(app_file)), store=store) as engine:
        status = await engine.wait_for_completion("victim", 10)
    assert status["output"] == [i * i for i in range(40)]
    store.close()


async def test_worker_processes_run_activities_in_another_process(app_file: Path):
    index = FunctionIndex.load(str(app_file))
    async with running(index, worker_processes=1) as engine:
        iid = await engine.start_orchestration("whoami")
        status = await engine.wait_for_completion(iid, 30)
    assert status["runtimeStatus"] == "Completed", status
    assert status["output"]["pid"] != os.getpid()
    assert status["output"]["function"] == "pid"


async def test_thousand_activity_fan_out_is_fast(app_file: Path):
    index = FunctionIndex.load(str(app_file))
    async with running(index) as engine:
        t0 = time.monotonic()
        iid = await engine.start_orchestration("fast_fan", client_input(1000))
        status = await engine.wait_for_completion(iid, 30)
        elapsed = time.monotonic() - t0
    assert status["output"] == sum(i * i for i in range(1000))
    assert elapsed < 10, f"1,000-activity fan-out took {elapsed:.1f}s"


async def test_dead_worker_process_is_replaced_and_activity_rerun(tmp_path: Path, app_file: Path):
    index = FunctionIndex.load(str(app_file))
    async with running(index, worker_processes=1) as engine:
        iid = await engine.start_orchestration("crashy", client_input(str(tmp_path / "crashed-once")))
        status = await engine.wait_for_completion(iid, 30)
    assert status["runtimeStatus"] == "Completed", status
    assert status["output"].startswith("survived in ")
