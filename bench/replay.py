"""Benchmark 3: replay cost of the orchestration, flat vs sharded.

Runs the real orchestrator code on the local dev host with CPU-light stand-in
activities (no storage, no Pillow), so the numbers are the orchestration's
own cost: SDK replay CPU per image, episodes, and the largest history any one
instance reaches. "flat" is one orchestration fanning out every image through
the same ``bounded_fan_out``; "sharded" is ``ImageProcessing_Orchestrator``
with its shard lanes. The baseline for the ratio is one image's activity CPU
(the real ``ProcessImage`` on a realistic held-out 12 MP camera JPEG from
``bench/corpus.py`` against Azurite, and the stricter ``render_image`` alone),
measured in the same run; the drawn synthetic photo earlier runs used is
measured beside it for comparison.

    python -m bench.replay [--quick] [--sizes 100,1000,10000] [--flat-max 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import azure.durable_functions as df
import azure.functions as func

import orchestrators
from devtools.sample_images import make_photo
from durable_devhost import orchestration_dispatch
from durable_devhost.functions import IndexedFunction
from durable_devhost.testing import DevHost
from imagebatch.function_names import (
    IMAGE_PROCESSING_ORCHESTRATOR,
    LIST_IMAGES,
    LOAD_SHARD,
    NOTIFY_COMPLETION,
    PROCESS_IMAGE,
    RECORD_SHARD_RESULTS,
)
from imagebatch.imaging import render_image
from imagebatch.jsonvalue import json_object
from imagebatch.messages import (
    BatchInput,
    BatchSummary,
    LoadShardInput,
    NotifyInput,
    ProcessImageInput,
    RecordResultsInput,
    RecordResultsResult,
    ShardPlan,
    ShardSegment,
)
from imagebatch.results import image_result, output_entry
from imagebatch.sharding import shard_sizes
from imagebatch.specs import BatchRequest, RenderSpec, SourceBlob
from orchestrators.bounded_fan_out import RetryPolicy, bounded_fan_out

CONCURRENCY = 10
SEGMENT_OVERRIDE: int | None = None  # --segment-size: images per shard execution (default: the shard's own)
RESULTS = Path(os.environ.get("BENCH_RESULTS_DIR") or Path(__file__).resolve().parent / "results")


class ReplayMeter:
    """Sums the CPU time the SDK spends replaying (what the Python worker pays
    in production), by wrapping the dev host's orchestrator invocation."""

    def __init__(self) -> None:
        self.cpu = 0.0
        self.episodes = 0
        self._lock = threading.Lock()
        self._original = orchestration_dispatch.invoke_orchestrator

    def __enter__(self) -> ReplayMeter:
        def timed(fn: IndexedFunction, payload_json: str) -> dict[str, Any]:
            start = time.thread_time()
            try:
                return self._original(fn, payload_json)
            finally:
                with self._lock:
                    self.cpu += time.thread_time() - start
                    self.episodes += 1

        orchestration_dispatch.invoke_orchestrator = timed
        return self

    def __exit__(self, *exc: object) -> None:
        orchestration_dispatch.invoke_orchestrator = self._original


def _fake_result(name: str) -> dict[str, Any]:
    outputs = [
        output_entry(r, f"web/{name}/{r}.jpg", 1600 // (i + 1), 1067 // (i + 1), 200_000 // (i + 1))
        for i, r in enumerate(("large", "medium", "thumb"))
    ]
    return image_result(name, "processed", outputs=outputs, duration_ms=150)


def bench_app(total: int, shard_size: int | None) -> df.DFApp:
    """The real orchestrators with stand-in activities (no I/O)."""
    sizes = shard_sizes(total, CONCURRENCY, shard_size)
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
    app.register_functions(orchestrators.bp)

    @app.function_name(LIST_IMAGES)
    @app.activity_trigger(input_name="payload")
    def ListImages(payload: dict) -> dict:
        return ShardPlan(total=total, shards=tuple(sizes), plan="plan/", pages=0).to_dict()

    @app.function_name(LOAD_SHARD)
    @app.activity_trigger(input_name="payload")
    def LoadShard(payload: dict) -> dict:
        wanted = LoadShardInput.from_dict(payload)
        shard = int(wanted.blob.rsplit("/", 1)[1].split(".")[0])
        images = [SourceBlob(f"img{starts[shard] + i:06d}.jpg", "0x1", 1) for i in range(sizes[shard])]
        start, count = wanted.start, wanted.count or len(images)
        segment = ShardSegment(BENCH_REQUEST, tuple(images[start : start + count]), len(images))
        return segment.to_dict()

    @app.function_name(PROCESS_IMAGE)
    @app.activity_trigger(input_name="payload")
    def ProcessImage(payload: dict) -> dict:
        return _fake_result(ProcessImageInput.from_dict(payload).source.name)

    @app.function_name(RECORD_SHARD_RESULTS)
    @app.activity_trigger(input_name="payload")
    def RecordShardResults(payload: dict) -> dict:
        record = RecordResultsInput.from_dict(payload)
        return RecordResultsResult(record.blob, len(record.results)).to_dict()

    @app.function_name(NOTIFY_COMPLETION)
    @app.activity_trigger(input_name="payload")
    def NotifyCompletion(payload: dict) -> dict:
        notify = NotifyInput.from_dict(payload)
        summary = BatchSummary(
            notify.instance_id,
            notify.run,
            notify.status,
            notify.progress,
            0.0,
            notify.started,
            notify.finished,
            "out/manifest.json",
        )
        return summary.to_dict()

    @app.orchestration_trigger(context_name="context")
    def flat_batch(context: df.DurableOrchestrationContext) -> Generator[Any, Any, int]:
        count = json_object(context.get_input())["total"]
        done: list[int] = []
        yield from bounded_fan_out(
            context,
            [f"img{i:06d}.jpg" for i in range(count)],
            lambda name: context.call_activity(PROCESS_IMAGE, _work(name)),
            CONCURRENCY,
            lambda index, task, attempts: done.append(index),
            retry=RetryPolicy(),
        )
        return len(done)

    return app


BENCH_REQUEST = BatchRequest(
    source_container="in", source_prefix="", output_container="out", output_prefix="web/", max_concurrency=CONCURRENCY
)


def _work(name: str) -> dict[str, Any]:
    """ProcessImage's input for one image of the flat variant."""
    return ProcessImageInput("in", SourceBlob(name), "out", "web/", RenderSpec()).to_dict()


def batch_input(total: int, shard_size: int | None) -> dict[str, Any]:
    batch = BatchInput(
        BENCH_REQUEST, "20261201T000000Z-000000", shard_size=shard_size, segment_size=SEGMENT_OVERRIDE or None
    )
    return {**batch.to_dict(), "total": total}  # "total": the flat variant's input (ignored by BatchInput)


async def run_variant(variant: str, total: int, shard_size: int | None) -> dict[str, Any]:
    name = "flat_batch" if variant == "flat" else IMAGE_PROCESSING_ORCHESTRATOR
    with ReplayMeter() as meter:
        async with DevHost(bench_app(total, shard_size)) as host:
            start = time.perf_counter()
            instance_id = await host.start_orchestration(name, batch_input(total, shard_size))
            status = await host.wait(instance_id, timeout=3600)
            wall = time.perf_counter() - start
            instances = await host.engine.list_instances()
            largest = max(len(host.history(i["instanceId"])) for i in instances)
    assert status["runtimeStatus"] == "Completed", status.get("output")
    return {
        "variant": variant,
        "images": total,
        "wall_s": round(wall, 3),
        "orchestrator_cpu_s": round(meter.cpu, 4),
        "episodes": meter.episodes,
        "cpu_per_image_ms": round(1000 * meter.cpu / total, 4),
        "largest_history": largest,
        "instances": len(instances),
    }


def synthetic_photo(size: tuple[int, int]) -> bytes:
    """The drawn photo earlier figures used as the baseline (decodes ~35 % faster than a
    real camera JPEG: see bench/corpus.py); kept for comparison and for ``--quick``."""
    buffer = io.BytesIO()
    make_photo(*size, seed=7).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def realistic_photo() -> bytes:
    """A held-out 12 MP camera-like JPEG q90 from bench/corpus.py: the goal's baseline,
    because an image's real work is decoding a real photo's bit budget."""
    from bench import corpus

    usable, why = corpus.available()
    if not usable:
        raise SystemExit(why)
    return corpus.path(corpus.items("heldout", 1)[0]).read_bytes()


def activity_cpu_per_image_ms(repeats: int, data: bytes) -> tuple[float, float]:
    """CPU of one image's real work on ``data``, ``(ProcessImage, render_image alone)`` in ms.

    ProcessImage is the activity itself against a real Azurite: the idempotency
    HEAD, the download, ``render_image`` (default renditions and backend) and
    the three uploads, measured with ``process_time`` in this process (Azurite's
    own CPU is another process, as Azure Storage would be). ``render_image``
    alone is timed in the same loop, interleaved, as the stricter baseline.
    """
    from azure.storage.blob import BlobServiceClient

    from activities.process_image import process_image
    from imagebatch.settings import AppSettings
    from tests.azurite import connection_string, running_azurite

    spec = RenderSpec()
    activity, render = [], []
    with running_azurite() as endpoint:
        service = BlobServiceClient.from_connection_string(connection_string(endpoint))
        service.create_container("photos")
        service.create_container("web")
        for i in range(repeats + 1):  # the first round warms up clients, codecs and libvips
            name = f"photo-{i}.jpg"
            service.get_blob_client("photos", name).upload_blob(data)
            work = ProcessImageInput("photos", SourceBlob(name), "web", "", spec)
            start = time.process_time()
            result = process_image(work, service, AppSettings())
            spent = time.process_time() - start
            assert result["status"] == "processed", result
            start = time.process_time()
            render_image(data, spec)
            if i:
                activity.append(spent)
                render.append(time.process_time() - start)
    return 1000 * statistics.median(activity), 1000 * statistics.median(render)


def extrapolate_flat(rows: list[dict[str, Any]], total: int) -> float:
    """Quadratic growth from the two largest measured flat runs: cpu ~ a * n^2."""
    measured = sorted((r for r in rows if r["variant"] == "flat"), key=lambda r: r["images"])
    last = measured[-1]
    return last["orchestrator_cpu_s"] * (total / last["images"]) ** 2


def plot(rows: list[dict[str, Any]], activity_ms: float, path: Path, render_ms: float | None = None) -> None:
    """Orchestrator CPU per image vs batch size, flat vs sharded (log-log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for variant, style in (("flat", "o--"), ("sharded", "s-")):
        points = sorted((r["images"], r["cpu_per_image_ms"]) for r in rows if r["variant"] == variant)
        if points:
            ax.plot(*zip(*points, strict=True), style, label=variant)
    ax.axhline(
        0.05 * activity_ms,
        color="grey",
        linewidth=0.8,
        linestyle=":",
        label=f"5 % of one image's activity CPU ({activity_ms:.0f} ms)",
    )
    if render_ms:
        ax.axhline(
            0.05 * render_ms,
            color="grey",
            linewidth=0.8,
            linestyle="-.",
            label=f"5 % of render_image alone ({render_ms:.0f} ms)",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("images in the batch")
    ax.set_ylabel("orchestrator CPU per image (ms)")
    ax.set_title("Replay cost: flat fan-out vs shard lanes")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 images only (CI smoke test)")
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--flat-max", type=int, default=1000, help="largest flat run; larger ones are extrapolated")
    parser.add_argument(
        "--shard-size", type=int, default=None, help="explicit SHARD_SIZE (default: sized for the batch, like the app)"
    )
    parser.add_argument("--segment-size", type=int, default=None, help="images per shard execution (tuning)")
    parser.add_argument("--out", type=Path, default=RESULTS / "replay.json")
    parser.add_argument("--chart", type=Path, default=None, help="write a PNG chart (default: docs/bench/replay.png)")
    parser.add_argument("--chart-from", type=Path, default=None, help="only redraw the chart from a results JSON")
    args = parser.parse_args(argv)
    global SEGMENT_OVERRIDE
    SEGMENT_OVERRIDE = args.segment_size
    chart = args.chart or Path(__file__).resolve().parent.parent / "docs" / "bench" / "replay.png"
    if args.chart_from:
        saved = json.loads(args.chart_from.read_text())
        plot(saved["rows"], saved["activity_cpu_ms"], chart, saved.get("render_cpu_ms"))
        print(f"chart: {chart}")
        return 0
    sizes = [100] if args.quick else [int(s) for s in args.sizes.split(",")]
    if args.quick:
        baseline_name, photo = "800x600 synthetic JPEG", synthetic_photo((800, 600))
        activity_ms, render_ms = activity_cpu_per_image_ms(1, photo)
        synthetic_ms = None
    else:
        baseline_name, photo = "held-out 12 MP camera-like JPEG q90 (bench/corpus.py)", realistic_photo()
        activity_ms, render_ms = activity_cpu_per_image_ms(7, photo)
        synthetic_ms = activity_cpu_per_image_ms(7, synthetic_photo((4000, 3000)))

    rows = []
    for total in sizes:
        for variant in ("flat", "sharded"):
            if variant == "flat" and total > args.flat_max:
                continue
            row = asyncio.run(run_variant(variant, total, args.shard_size))
            row["vs_activity_cpu_percent"] = round(100 * row["cpu_per_image_ms"] / activity_ms, 3)
            row["vs_render_cpu_percent"] = round(100 * row["cpu_per_image_ms"] / render_ms, 3)
            rows.append(row)
            print(
                f"{variant:8} {total:>6} images: orchestrator CPU {row['orchestrator_cpu_s']:8.2f} s "
                f"({row['cpu_per_image_ms']:.3f} ms/image = {row['vs_activity_cpu_percent']:.2f}% of activity CPU, "
                f"{row['vs_render_cpu_percent']:.2f}% of render_image alone), "
                f"episodes {row['episodes']}, largest history {row['largest_history']} events, "
                f"wall {row['wall_s']:.1f} s",
                flush=True,
            )

    print(
        f"\nbaseline: activity CPU per image (ProcessImage on Azurite, {baseline_name}, "
        f"{len(photo) / 1e6:.1f} MB) = {activity_ms:.1f} ms; render_image alone = {render_ms:.1f} ms"
    )
    if synthetic_ms is not None:
        print(
            f"for comparison, the earlier synthetic 4000x3000 photo: ProcessImage {synthetic_ms[0]:.1f} ms, "
            f"render_image alone {synthetic_ms[1]:.1f} ms"
        )
    sharded = [r for r in rows if r["variant"] == "sharded"]
    flat = [r for r in rows if r["variant"] == "flat"]
    for row in sharded:
        match = next((f for f in flat if f["images"] == row["images"]), None)
        if match:
            print(
                f"ratio flat/sharded orchestrator CPU at {row['images']} images: "
                f"{match['orchestrator_cpu_s'] / max(row['orchestrator_cpu_s'], 1e-9):.2f}x"
            )
        else:
            estimate = extrapolate_flat(rows, row["images"])
            print(
                f"ratio flat/sharded orchestrator CPU at {row['images']} images: "
                f"~{estimate / max(row['orchestrator_cpu_s'], 1e-9):.0f}x (flat extrapolated quadratically: "
                f"~{estimate:.0f} s)"
            )
    if len(sharded) > 1:
        print(
            f"ratio sharded CPU per image, largest/smallest batch: "
            f"{sharded[-1]['cpu_per_image_ms'] / max(sharded[0]['cpu_per_image_ms'], 1e-9):.2f}x "
            "(flat is the goal: ~1)"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for row in sharded:
        verdict = "met" if row["vs_activity_cpu_percent"] < 5 else "NOT met"
        print(
            f"RATIO sharded orchestrator/activity CPU per image [{row['images']} images]: "
            f"{row['vs_activity_cpu_percent'] / 100:.3f} (goal < 0.05: {verdict}; "
            f"vs render_image alone {row['vs_render_cpu_percent'] / 100:.3f})"
        )
    saved = {
        "baseline": baseline_name,
        "activity_cpu_ms": activity_ms,
        "render_cpu_ms": render_ms,
        "synthetic_cpu_ms": synthetic_ms,
        "rows": rows,
    }
    args.out.write_text(json.dumps(saved, indent=2))
    print(f"results: {args.out}")
    if not args.quick:
        plot(rows, activity_ms, chart, render_ms)
        print(f"chart: {chart}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
