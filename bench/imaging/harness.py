"""How the imaging benchmark measures: inputs, interleaved timing, quality, peak memory, profiling.

The same functions run in the parent (1 process) and in spawned pool workers (N processes), so
both measure exactly the same code; see :mod:`bench.imaging` for why it is built this way.
"""

from __future__ import annotations

import cProfile
import io
import json
import os
import pstats
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from PIL import Image

from bench.common import REPO_ROOT, cache_dir, current_rss_kb, peak_rss_kb, ssim_luma, summarize
from bench.imaging.variants import _EXT, _PIL_FORMATS, OURS, RENDERERS, _ours_backend, _vips
from devtools.sample_images import encode, make_photo
from imagebatch.imaging import render_image
from imagebatch.specs import DEFAULT_QUALITY, DEFAULT_RENDITIONS, RenderSpec, Rendition


@dataclass(frozen=True)
class Cell:
    """One input kind x output format, measured at each process count in ``procs``."""

    source: str  # "jpeg" | "png"
    out: str  # "jpeg" | "webp" | "png"
    procs: tuple[int, ...]

    @property
    def label(self) -> str:
        return f"{self.source}->{self.out}"


@dataclass(frozen=True)
class Config:
    """Sizes and counts; :data:`FULL` is what docs/benchmarks.md reports."""

    photo_size: tuple[int, int]
    rss_size: tuple[int, int]
    renditions: tuple[Rendition, ...]
    images: int
    repeats: int
    cells: tuple[Cell, ...]
    quality: int = DEFAULT_QUALITY
    seed: int = 2026


_CELLS = (
    Cell("jpeg", "jpeg", (1, 2)),
    Cell("png", "jpeg", (1, 2)),
    Cell("jpeg", "webp", (1,)),
    Cell("jpeg", "png", (1,)),
)
FULL = Config((4000, 3000), (8000, 6000), DEFAULT_RENDITIONS, images=6, repeats=3, cells=_CELLS)
QUICK = Config(
    (1000, 750),
    (2000, 1500),
    (Rendition("large", 400), Rendition("medium", 200), Rendition("thumb", 80)),
    images=1,
    repeats=1,
    cells=_CELLS,
)


# ---------------------------------------------------------------------- inputs


def _input_path(kind: str, size: tuple[int, int], seed: int) -> Path:
    """Generate (once) and cache a photo-like source; JPEGs at q90, PNGs lossless."""
    path = cache_dir() / f"photo-{size[0]}x{size[1]}-{seed}.{_EXT[kind]}"
    if not path.exists():
        photo = make_photo(size[0], size[1], seed)
        data = encode(photo, "JPEG", quality=90) if kind == "jpeg" else encode(photo, "PNG")
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path


def _inputs(config: Config, kind: str) -> list[str]:
    return [str(_input_path(kind, config.photo_size, config.seed + i)) for i in range(config.images)]


# ---------------------------------------------------------------- worker state
# The same functions run in the parent (1 process) and in pool workers
# (N processes), so both measure exactly the same code.

_DATA: list[bytes] = []
_PATHS: list[str] = []


def _init_worker(paths: Sequence[str], variants: Sequence[str], fmt: str, renditions: Sequence[Rendition]) -> None:
    """Load inputs into memory and warm every variant up on a small image (imports, codec init)."""
    _PATHS[:] = list(paths)
    _DATA[:] = [Path(p).read_bytes() for p in paths]
    kind = "png" if paths and paths[0].endswith(".png") else "jpeg"
    warm = _input_path(kind, (320, 240), 1)
    for variant in variants:
        RENDERERS[variant](warm.read_bytes(), str(warm), fmt, renditions, DEFAULT_QUALITY)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


TaskResult = tuple[float, float, int, list[bytes] | None]


def _task(variant: str, index: int, fmt: str, renditions: Sequence[Rendition], quality: int, keep: bool) -> TaskResult:
    """Render image ``index`` once.

    Returns (wall seconds, CPU seconds, output bytes, outputs if ``keep``).
    CPU time (this process's threads plus finished children, i.e. the CLI) is
    reported next to wall time because other work on a shared box inflates
    wall time but barely moves CPU time.
    """
    data, path = _DATA[index], _PATHS[index]
    cpu0, children0 = time.process_time(), _children_cpu()
    start = time.perf_counter()
    outs = RENDERERS[variant](data, path, fmt, renditions, quality)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu0 + _children_cpu() - children0
    return elapsed, cpu, sum(len(o) for o in outs), outs if keep else None


def _start_worker(_: int) -> int:
    """Occupy a worker briefly so every pool process gets started (and warmed) before timing."""
    time.sleep(0.05)
    return os.getpid()


# -------------------------------------------------------------------- timing


def _rotated(variants: Sequence[str], k: int) -> list[str]:
    k %= len(variants)
    return [*variants[k:], *variants[:k]]


def time_cell(cell: Cell, procs: int, variants: Sequence[str], config: Config) -> dict[str, dict[str, Any]]:
    """Time every variant on one cell; per-image samples and per-repeat walls."""
    paths = _inputs(config, cell.source)
    samples: dict[str, list[float]] = {v: [] for v in variants}
    cpu: dict[str, list[float]] = {v: [] for v in variants}
    walls: dict[str, list[float]] = {v: [] for v in variants}
    sizes: dict[str, int] = {}
    n = len(paths)

    def record(variant: str, results: list[TaskResult], wall: float) -> None:
        samples[variant] += [r[0] for r in results]
        cpu[variant] += [r[1] for r in results]
        walls[variant].append(wall)
        sizes[variant] = sum(r[2] for r in results) // n

    if procs == 1:
        _init_worker(paths, variants, cell.out, config.renditions)
        for rep in range(config.repeats):
            for variant in _rotated(variants, rep):
                start = time.perf_counter()
                results = [_task(variant, i, cell.out, config.renditions, config.quality, False) for i in range(n)]
                record(variant, results, time.perf_counter() - start)
    else:
        init = (paths, variants, cell.out, config.renditions)
        ctx = get_context("spawn")
        with ProcessPoolExecutor(max_workers=procs, mp_context=ctx, initializer=_init_worker, initargs=init) as pool:
            list(pool.map(_start_worker, range(procs * 2)))
            for rep in range(config.repeats):
                for variant in _rotated(variants, rep):
                    start = time.perf_counter()
                    futures = [
                        pool.submit(_task, variant, i, cell.out, config.renditions, config.quality, False)
                        for i in range(n)
                    ]
                    results = [f.result() for f in futures]
                    record(variant, results, time.perf_counter() - start)

    out: dict[str, dict[str, Any]] = {}
    for variant in variants:
        walls_summary = summarize(walls[variant])
        out[variant] = {
            "per_image_s": summarize(samples[variant]),
            "cpu_per_image_s": summarize(cpu[variant]),
            "wall_s": walls_summary,
            "images_per_s": n / walls_summary["median"],
            "mean_output_bytes": sizes[variant],
            "samples_s": samples[variant],
            "cpu_samples_s": cpu[variant],
        }
    return out


# ------------------------------------------------------------------- quality


def quality_cell(cell: Cell, variants: Sequence[str], config: Config) -> dict[str, dict[str, Any]]:
    """SSIM of each variant's renditions of image 0 vs a full-resolution LANCZOS reference."""
    path = _inputs(config, cell.source)[0]
    _init_worker([path], variants, cell.out, config.renditions)
    full = Image.open(path).convert("RGB")
    references: dict[tuple[int, int], Image.Image] = {}
    encoder_only: dict[tuple[int, int], float] = {}
    params: dict[str, object] = {} if cell.out == "png" else {"quality": config.quality}
    out: dict[str, dict[str, Any]] = {}
    for variant in variants:
        outs = _task(variant, 0, cell.out, config.renditions, config.quality, True)[3]
        per: list[dict[str, Any]] = []
        for rendition, blob in zip(config.renditions, outs or [], strict=True):
            got = Image.open(io.BytesIO(blob))
            got.load()
            if got.size not in references:
                ref = full.resize(got.size, Image.Resampling.LANCZOS)
                references[got.size] = ref
                reenc = Image.open(io.BytesIO(encode(ref, _PIL_FORMATS[cell.out], **params)))
                encoder_only[got.size] = ssim_luma(reenc, ref)
            per.append(
                {
                    "rendition": rendition.name,
                    "size": list(got.size),
                    "ssim": ssim_luma(got, references[got.size]),
                    "encoder_only_ssim": encoder_only[got.size],
                    "bytes": len(blob),
                }
            )
        scores = [p["ssim"] for p in per]
        out[variant] = {
            "ssim_mean": sum(scores) / len(scores),
            "ssim_min": min(scores),
            "encoder_only_mean": sum(p["encoder_only_ssim"] for p in per) / len(per),
            "renditions": per,
        }
    return out


# -------------------------------------------------------------------- memory


def _rss_child(variant: str, path: str, fmt: str, widths: str) -> int:
    """Entry point of the fresh interpreter that measures one variant's peak RSS."""
    renditions = [Rendition(f"r{i}", int(w)) for i, w in enumerate(widths.split(","))]
    data = Path(path).read_bytes()
    if variant in ("pyvips", "pyvips-cascade", "pyvips-2thr"):
        _vips()
    elif variant == OURS:
        _ours_backend()  # loads pyvips when render_image would, so its import is not counted as growth
    baseline = current_rss_kb()
    start = time.perf_counter()
    RENDERERS[variant](data, path, fmt, renditions, DEFAULT_QUALITY)
    elapsed = time.perf_counter() - start
    result = {
        "baseline_kb": baseline,
        "peak_kb": peak_rss_kb(),
        "children_peak_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
        "seconds": elapsed,
    }
    print(json.dumps(result))
    return 0


def measure_rss(variants: Sequence[str], config: Config) -> dict[str, dict[str, Any]]:
    """Peak RSS per variant rendering one ``rss_size`` JPEG, each in a fresh interpreter.

    For the CLI the number is the largest ``vipsthumbnail`` process; for the
    others the interpreter's own peak (``peak_mb``) and the growth over its
    state just before rendering (``delta_mb``: imports and the input bytes
    excluded).
    """
    path = str(_input_path("jpeg", config.rss_size, config.seed))
    widths = ",".join(str(r.width) for r in config.renditions)
    out: dict[str, dict[str, Any]] = {}
    for variant in variants:
        cmd = [sys.executable, "-m", "bench.imaging", "--rss-child", variant, path, "jpeg", widths]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, timeout=600)
        if proc.returncode != 0:
            out[variant] = {"error": proc.stderr.strip().splitlines()[-1:] or ["failed"]}
            continue
        raw = json.loads(proc.stdout.strip().splitlines()[-1])
        if variant == "vipsthumbnail":
            peak = delta = raw["children_peak_kb"]
        else:
            peak, delta = raw["peak_kb"], raw["peak_kb"] - raw["baseline_kb"]
        out[variant] = {"peak_mb": peak / 1024, "delta_mb": delta / 1024, "seconds": raw["seconds"], "raw": raw}
    return out


# ------------------------------------------------------------------ profiling


def profile_ours_pillow(config: Config, repeats: int = 10) -> str:
    """cProfile of ``render_image(backend="pillow")`` (the Pillow recipe) on the benchmark JPEG, top by own time."""
    path = _inputs(config, "jpeg")[0]
    data = Path(path).read_bytes()
    spec = RenderSpec(renditions=config.renditions, format="jpeg", quality=config.quality)
    render_image(data, spec, backend="pillow")
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(repeats):
        render_image(data, spec, backend="pillow")
    profiler.disable()
    buf = io.StringIO()
    pstats.Stats(profiler, stream=buf).sort_stats("tottime").print_stats(12)
    return buf.getvalue()
