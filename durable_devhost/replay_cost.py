"""``python -m durable_devhost.replay_cost [N]``: what one replay costs per history event.

Builds the history of an orchestrator that fanned out ``N`` activities (default 500) and times the
SDK's invocation over it (what the Python worker does on every episode), with the dev host's
timestamp cache off (the default, like the worker) and on (``--fast-replay``). Prints µs per event.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Generator
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.durable_functions as df

from . import history as h
from .functions import FunctionIndex
from .invoke import invoke_orchestrator, orchestrator_payload, set_fast_replay


def _app() -> df.DFApp:
    app = df.DFApp()

    @app.orchestration_trigger(context_name="context")
    def fan(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
        n = context.get_input()
        assert isinstance(n, int)
        return (yield context.task_all([context.call_activity("work", i) for i in range(n)]))

    @app.activity_trigger(input_name="i")
    def work(i: int) -> int:
        return i

    return app


def _client_input(n: int) -> str:
    return json.dumps(json.dumps(n))  # what the Python client's start_new stores (double encoded)


def history_of(n: int) -> list[dict]:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    started = h.execution_started(t0, name="fan", instance_id="i", execution_id="e", input_json=_client_input(n))
    events = [h.orchestrator_started(t0), started]
    events += [h.task_scheduled(t0, k, "work", json.dumps([json.dumps(k)])) for k in range(n)]
    events.append(h.orchestrator_completed(t0))
    for k in range(n):  # one episode per completion: distinct timestamps, as in a real history
        t = t0 + timedelta(milliseconds=10 * (k + 1))
        events += [h.orchestrator_started(t), h.task_completed(t, k, json.dumps(k)), h.orchestrator_completed(t)]
    for ev in events:
        ev["IsPlayed"] = True
    return events


def measure(n: int = 500, repeats: int = 5) -> dict[str, float]:
    fn = FunctionIndex.from_app(_app()).orchestrator("fan")
    assert fn is not None
    events = history_of(n)
    payload = orchestrator_payload(
        history=events, input_json=_client_input(n), instance_id="i", parent_instance_id=None
    )
    out: dict[str, float] = {"events": float(len(events))}
    for label, fast in (("uncached_us_per_event", False), ("cached_us_per_event", True)):
        set_fast_replay(fast)
        invoke_orchestrator(fn, payload)  # warm-up (fills the cache when on)
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            state = invoke_orchestrator(fn, payload)
            best = min(best, time.perf_counter() - t0)
        assert state.get("isDone"), state
        out[label] = best / len(events) * 1e6
    set_fast_replay(False)
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    n = int(args[0]) if args else 500
    r = measure(n)
    print(
        f"{int(r['events'])} history events: {r['uncached_us_per_event']:.1f} µs/event uncached (default, "
        f"like the worker), {r['cached_us_per_event']:.1f} µs/event cached (--fast-replay)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
