"""Benchmark 1: our pipeline (libvips and Pillow backends) against naive Pillow and libvips.

    python -m bench.imaging [--quick] [--out bench/results/imaging.json]
                            [--images 6] [--repeats 3] [--chart docs/bench/imaging.png]
                            [--profile]

Why it is built this way:

* **Same machine, same run.** The reference box has 2 shared cores, so
  absolute times drift by 10-20 % between runs. Every variant is timed in the
  same run, interleaved repeat by repeat (the variant order rotates each
  repeat), and the verdicts are *ratios* against the naive baseline and
  against libvips measured alongside it.
* **Variants** (all produce the same renditions, same format, quality 82):

  - ``naive``: what a first implementation does: ``open`` -> ``convert("RGB")``
    -> a LANCZOS ``resize`` of the *full* image per rendition -> ``save`` with
    Pillow's default encoder settings. This is the baseline of every ratio.
  - ``ours``: :func:`imagebatch.imaging.render_image` with its default
    backend (``auto``), i.e. what production runs: libvips resamples every
    rendition (and decodes plain 8-bit PNGs) when pyvips is installed, Pillow
    still identifies, draft-decodes JPEGs and encodes. Without pyvips it is
    the Pillow recipe, the same as ``ours-pillow`` (the header says which).
  - ``ours-pillow``: ``render_image(..., backend="pillow")``, the pure-Pillow
    recipe (JPEG draft, ``reduce``, LANCZOS cascade largest first): the
    fallback when libvips is missing. Always measured, so the ratios show both
    what libvips saves and where the fallback stands.
  - ``pyvips``: ``thumbnail_buffer`` once per rendition (libvips's own
    shrink-on-load for each), libvips limited to 1 thread so a process uses one
    core, like Pillow.
  - ``pyvips-cascade``: ``thumbnail_buffer`` for the largest rendition, then
    ``thumbnail_image`` of that in-memory result for the smaller ones (our own
    cascading, in libvips). 1 thread.
  - ``pyvips-2thr``: as ``pyvips`` with libvips's thread pool at its default
    size (= cores): what a pyvips user gets out of the box; with 2 processes
    it oversubscribes the cores.
  - ``vipsthumbnail``: the Debian ``libvips-tools`` CLI, one invocation per
    rendition reading the file from disk (process start-up included), with
    ``VIPS_CONCURRENCY=1``. Skipped, with the reason, when it is not installed.

  libvips encoders get *our* settings (no Huffman optimisation, 4:2:0 below
  q90, WebP effort 2, PNG compression 4) and libvips's operation cache is
  disabled, so repeats are real work and "faster" means the pipeline, not
  encoder tuning or caching.
* **Quality at equal settings.** For the first image of every cell each
  variant's renditions are decoded and compared (luma SSIM,
  :func:`bench.common.ssim_luma`) with a LANCZOS resize of the *full
  resolution* decode to the same size. "enc-only" is that reference pushed
  through Pillow's encoder at the same settings: the floor any lossy variant
  can reach.
* **Throughput** with 2 processes uses a ``ProcessPoolExecutor`` (spawned, so
  libvips threads in the parent are never forked) over N images; images/s is
  N divided by the wall time of a repeat, per-image times are measured inside
  the workers.
* **Peak memory** is measured for an 8000x6000 JPEG in a fresh interpreter per
  variant (``VmHWM``; the CLI's own ``ru_maxrss``), because a long-lived
  benchmark process never gives memory back.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import os
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from PIL import Image

from bench.common import (
    REPO_ROOT,
    cache_dir,
    current_rss_kb,
    format_table,
    machine_info,
    peak_rss_kb,
    ratio_line,
    results_dir,
    ssim_luma,
    summarize,
    write_json,
)
from devtools.sample_images import encode, make_photo
from imagebatch import libvips
from imagebatch.imaging import DEFAULT_BACKEND, plan_size, render_image
from imagebatch.specs import DEFAULT_QUALITY, DEFAULT_RENDITIONS, RenderSpec, Rendition

BASELINE = "naive"
OURS = "ours"
OURS_PILLOW = "ours-pillow"
VIPS_VARIANTS = ("pyvips", "pyvips-cascade", "pyvips-2thr", "vipsthumbnail")
ALL_VARIANTS = (BASELINE, OURS, OURS_PILLOW, *VIPS_VARIANTS)
GOAL_VS_NAIVE = 2.5
GOAL_VS_VIPS = 1.0

_PIL_FORMATS = {"jpeg": "JPEG", "webp": "WEBP", "png": "PNG"}
_EXT = {"jpeg": "jpg", "webp": "webp", "png": "png"}
_VIPS_MAX_COORD = 10_000_000


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


# ------------------------------------------------------------------ availability


def vips_status() -> tuple[str | None, str]:
    """``(version, "")`` when pyvips works, else ``(None, reason)``."""
    try:
        import pyvips
    except Exception as exc:  # ImportError, or OSError/cffi errors when libvips is missing
        return None, f"pyvips unavailable ({type(exc).__name__}: {exc}); pip install 'pyvips[binary]'"
    libvips = ".".join(str(pyvips.version(i)) for i in range(3))
    return f"pyvips {pyvips.__version__}, libvips {libvips}", ""


def vipsthumbnail_status() -> tuple[str | None, str]:
    """``(version, "")`` when the CLI runs, else ``(None, reason)``."""
    exe = shutil.which("vipsthumbnail")
    if exe is None:
        return None, "vipsthumbnail not on PATH (Debian package libvips-tools: apt-get install libvips-tools)"
    try:
        out = subprocess.run([exe, "--vips-version"], capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"vipsthumbnail does not run ({exc})"
    return out.stdout.strip() or "vipsthumbnail (unknown version)", ""


def _ours_backend() -> str:
    """What ``ours`` (``render_image``'s default backend) runs in this environment, in one line."""
    line = libvips.availability()
    try:
        vips = libvips.resolve(DEFAULT_BACKEND)
    except libvips.LibvipsUnavailableError:
        return f"backend {DEFAULT_BACKEND!r} fails here ({line})"
    if vips is None:
        return f"Pillow only, same as ours-pillow ({line})"
    return f"libvips resampling + plain-PNG decoding ({line})"


# ------------------------------------------------------------------- renderers

Renderer = Callable[[bytes, str, str, Sequence[Rendition], int], list[bytes]]
_VIPS: Any = None


def _vips() -> Any:
    """Import pyvips lazily (the memory children of other variants must not load
    libvips) and switch off its operation cache so repeats do real work."""
    global _VIPS
    if _VIPS is None:
        import pyvips

        pyvips.cache_set_max(0)
        _VIPS = pyvips
    return _VIPS


def _naive(data: bytes, path: str, fmt: str, renditions: Sequence[Rendition], quality: int) -> list[bytes]:
    """The baseline: full decode, one full-resolution LANCZOS per rendition, default encoders."""
    im = Image.open(io.BytesIO(data)).convert("RGB")
    params: dict[str, object] = {} if fmt == "png" else {"quality": quality}
    outs = []
    for rendition in renditions:
        (w, h), (cw, ch) = plan_size(im.size, rendition, fmt)
        box = ((im.width - cw) / 2, (im.height - ch) / 2, (im.width + cw) / 2, (im.height + ch) / 2)
        outs.append(encode(im.resize((w, h), Image.Resampling.LANCZOS, box=box), _PIL_FORMATS[fmt], **params))
    return outs


def _ours(data: bytes, path: str, fmt: str, renditions: Sequence[Rendition], quality: int) -> list[bytes]:
    """What production runs: ``render_image`` with its default backend."""
    spec = RenderSpec(renditions=tuple(renditions), format=fmt, quality=quality)  # type: ignore[arg-type]
    return [r.data for r in render_image(data, spec).renditions]


def _ours_pillow(data: bytes, path: str, fmt: str, renditions: Sequence[Rendition], quality: int) -> list[bytes]:
    """The pure-Pillow recipe, the fallback without libvips."""
    spec = RenderSpec(renditions=tuple(renditions), format=fmt, quality=quality)  # type: ignore[arg-type]
    return [r.data for r in render_image(data, spec, backend="pillow").renditions]


def _vips_save(image: Any, fmt: str, quality: int) -> bytes:
    """libvips encoders with the same settings as ours (see the module docstring)."""
    if fmt == "jpeg":
        return bytes(image.jpegsave_buffer(Q=quality, optimize_coding=False, interlace=False, subsample_mode="auto"))
    if fmt == "webp":
        return bytes(image.webpsave_buffer(Q=quality, effort=2))
    return bytes(image.pngsave_buffer(compression=4))


def _thumb_args(rendition: Rendition) -> tuple[int, dict[str, object]]:
    kwargs: dict[str, object] = {"height": rendition.height or _VIPS_MAX_COORD, "size": "down"}
    if rendition.fit == "cover":
        kwargs["crop"] = "centre"
    return rendition.width, kwargs


def _pyvips_per_rendition(threads: int) -> Renderer:
    def render(data: bytes, path: str, fmt: str, renditions: Sequence[Rendition], quality: int) -> list[bytes]:
        pyvips = _vips()
        pyvips.concurrency_set(threads)
        outs = []
        for rendition in renditions:
            width, kwargs = _thumb_args(rendition)
            outs.append(_vips_save(pyvips.Image.thumbnail_buffer(data, width, **kwargs), fmt, quality))
        return outs

    return render


def _pyvips_cascade(data: bytes, path: str, fmt: str, renditions: Sequence[Rendition], quality: int) -> list[bytes]:
    """Largest first from the buffer, then each smaller one from the in-memory largest.

    Only valid for contain renditions (ours are); a cover crop of the cascade
    would need the crop geometry mapped, which is not worth it here.
    """
    pyvips = _vips()
    pyvips.concurrency_set(1)
    order = sorted(range(len(renditions)), key=lambda i: renditions[i].width, reverse=True)
    outs: dict[int, bytes] = {}
    first = renditions[order[0]]
    width, kwargs = _thumb_args(first)
    large = pyvips.Image.thumbnail_buffer(data, width, **kwargs).copy_memory()
    outs[order[0]] = _vips_save(large, fmt, quality)
    for i in order[1:]:
        width, kwargs = _thumb_args(renditions[i])
        outs[i] = _vips_save(large.thumbnail_image(width, **kwargs), fmt, quality)
    return [outs[i] for i in range(len(renditions))]


def _vipsthumbnail(data: bytes, path: str, fmt: str, renditions: Sequence[Rendition], quality: int) -> list[bytes]:
    """One CLI run per rendition (it makes one size per run), reading ``path``."""
    options = {"jpeg": f"Q={quality},optimize_coding=false,strip", "webp": f"Q={quality},effort=2,strip"}
    opts = options.get(fmt, "compression=4,strip")
    env = {**os.environ, "VIPS_CONCURRENCY": "1"}
    outs = []
    with tempfile.TemporaryDirectory(prefix="vt-") as tmp:
        for i, rendition in enumerate(renditions):
            size = f"{rendition.width}x{rendition.height or ''}" + ("" if rendition.fit == "cover" else ">")
            target = os.path.join(tmp, f"r{i}.{_EXT[fmt]}")
            cmd = ["vipsthumbnail", path, "--size", size, "-o", f"{target}[{opts}]"]
            if rendition.fit == "cover":
                cmd += ["--smartcrop", "centre"]
            subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            with open(target, "rb") as fh:
                outs.append(fh.read())
    return outs


RENDERERS: dict[str, Renderer] = {
    BASELINE: _naive,
    OURS: _ours,
    OURS_PILLOW: _ours_pillow,
    "pyvips": _pyvips_per_rendition(1),
    "pyvips-cascade": _pyvips_cascade,
    "pyvips-2thr": _pyvips_per_rendition(os.cpu_count() or 1),
    "vipsthumbnail": _vipsthumbnail,
}


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


@dataclass(frozen=True)
class Recipe:
    """A variation of our Pillow recipe, rebuilt by hand so each stage can be timed.

    Mirrors ``render_image(backend="pillow")`` for the benchmark's inputs (RGB, no EXIF, contain
    renditions): optional JPEG draft to the smallest DCT scale that keeps the
    largest rendition, then a cascade largest-first with ``resample`` and
    ``reducing_gap`` (``first_gap`` for the first step only), encoded with our
    encoder settings.
    """

    name: str
    resample: Image.Resampling = Image.Resampling.LANCZOS
    reducing_gap: float | None = 2.0
    first_gap: float | None = None
    draft: bool = True


RECIPES: tuple[Recipe, ...] = (
    Recipe("current: LANCZOS, gap 2.0"),
    Recipe("gap 1.0 on first step only", first_gap=1.0),
    Recipe("gap 1.0 on every step", reducing_gap=1.0),
    Recipe("BICUBIC, gap 2.0", resample=Image.Resampling.BICUBIC),
    Recipe("BICUBIC, gap 1.0 on first step", resample=Image.Resampling.BICUBIC, first_gap=1.0),
    Recipe("no JPEG draft", draft=False),
)
VIPS_REFERENCE = "pyvips-cascade (1 thread), for reference"


def _run_recipe(
    data: bytes, recipe: Recipe, renditions: Sequence[Rendition], quality: int
) -> tuple[dict[str, float], list[bytes]]:
    """One render; returns (CPU seconds per stage, encoded renditions in input order)."""
    stages: dict[str, float] = {}
    clock = time.process_time
    t = clock()
    im = Image.open(io.BytesIO(data))
    size = im.size
    plans = [(i, plan_size(size, r, "jpeg")[0]) for i, r in enumerate(renditions)]
    plans.sort(key=lambda p: p[1][0], reverse=True)
    scale = max(p[1][0] / size[0] for p in plans)
    if recipe.draft and im.format == "JPEG" and scale < 0.5:
        im.draft(None, (math.ceil(size[0] * scale), math.ceil(size[1] * scale)))
    im.load()
    working = im if im.mode == "RGB" else im.convert("RGB")
    stages["decode"] = clock() - t
    outs: dict[int, bytes] = {}
    params = {"quality": quality, "optimize": False, "progressive": False, "subsampling": "4:2:0"}
    for step, (i, out_size) in enumerate(plans):
        t = clock()
        gap = recipe.first_gap if step == 0 and recipe.first_gap is not None else recipe.reducing_gap
        working = working.resize(out_size, recipe.resample, reducing_gap=gap)
        stages[f"resize {renditions[i].width}"] = clock() - t
        t = clock()
        outs[i] = encode(working, "JPEG", **params)
        stages["encode"] = stages.get("encode", 0.0) + clock() - t
    return stages, [outs[i] for i in range(len(renditions))]


def _vips_cascade_cpu(data: bytes, renditions: Sequence[Rendition], quality: int) -> float:
    t = time.process_time()
    _pyvips_cascade(data, "", "jpeg", renditions, quality)
    return time.process_time() - t


def _recipe_quality(
    outs: list[bytes], full: Image.Image, refs: dict[tuple[int, int], tuple[Image.Image, float]], quality: int
) -> tuple[list[float], list[float]]:
    """Per-rendition SSIM vs the full-resolution reference, and the encoder-only floor."""
    scores, floors = [], []
    for blob in outs:
        got = Image.open(io.BytesIO(blob)).convert("RGB")
        if got.size not in refs:
            ref = full.resize(got.size, Image.Resampling.LANCZOS)
            reenc = Image.open(io.BytesIO(encode(ref, "JPEG", quality=quality)))
            refs[got.size] = (ref, ssim_luma(reenc, ref))
        scores.append(ssim_luma(got, refs[got.size][0]))
        floors.append(refs[got.size][1])
    return scores, floors


def recipe_experiments(config: Config, repeats: int = 9) -> list[dict[str, Any]]:
    """Where the Pillow recipe's time goes, per stage, and what recipe changes would buy.

    CPU time (``process_time``; Pillow is single-threaded here) rather than
    wall time, and recipes interleaved repeat by repeat (order rotating), so a
    busy machine inflates all of them alike. SSIM per rendition against the
    full-resolution LANCZOS reference, with the encoder-only floor.
    pyvips-cascade (1 thread) is timed in the same loop as the bar to reach.
    """
    rows: list[dict[str, Any]] = []
    vips_ok = vips_status()[0] is not None
    for kind in ("jpeg", "png"):
        path = _inputs(config, kind)[0]
        data = Path(path).read_bytes()
        full = Image.open(path).convert("RGB")
        refs: dict[tuple[int, int], tuple[Image.Image, float]] = {}
        recipes = [r for r in RECIPES if r.draft or kind == "jpeg"]  # only JPEG has a draft to switch off
        names = [r.name for r in recipes] + ([VIPS_REFERENCE] if vips_ok else [])
        per_stage: dict[str, dict[str, list[float]]] = {n: {} for n in names}
        totals: dict[str, list[float]] = {n: [] for n in names}
        outputs: dict[str, list[bytes]] = {}
        for recipe in recipes:  # warm-up, and the outputs for SSIM
            outputs[recipe.name] = _run_recipe(data, recipe, config.renditions, config.quality)[1]
        if vips_ok:
            _vips_cascade_cpu(data, config.renditions, config.quality)
        for rep in range(repeats):
            for name in _rotated(names, rep):
                if name == VIPS_REFERENCE:
                    totals[name].append(_vips_cascade_cpu(data, config.renditions, config.quality))
                    continue
                recipe = next(r for r in recipes if r.name == name)
                stages, _ = _run_recipe(data, recipe, config.renditions, config.quality)
                totals[name].append(sum(stages.values()))
                for key, value in stages.items():
                    per_stage[name].setdefault(key, []).append(value)
        for name in names:
            row: dict[str, Any] = {
                "source": kind,
                "recipe": name,
                "stages_cpu_ms": {k: statistics.median(v) * 1000 for k, v in per_stage[name].items()},
                "cpu_ms": statistics.median(totals[name]) * 1000,
                "cpu_ms_min": min(totals[name]) * 1000,
            }
            if name in outputs:
                scores, floors = _recipe_quality(outputs[name], full, refs, config.quality)
                row.update(ssim=scores, encoder_only_ssim=floors)
            rows.append(row)
    return rows


def format_recipes(rows: list[dict[str, Any]], renditions: Sequence[Rendition]) -> str:
    """One table: stage CPU medians, total, speed-up vs current, SSIM per rendition."""
    stage_names = ["decode", *[f"resize {r.width}" for r in renditions], "encode"]
    names = "/".join(r.name for r in renditions)
    headers = [
        "source",
        "recipe",
        *[f"{k} ms" for k in stage_names],
        "CPU ms",
        "vs current",
        f"SSIM {names}",
        "enc-only floor",
    ]
    table = []
    current: dict[str, float] = {}
    for r in rows:
        if r["recipe"] == RECIPES[0].name:
            current[r["source"]] = r["cpu_ms"]
        stages = r["stages_cpu_ms"]
        table.append(
            [
                r["source"],
                r["recipe"],
                *[f"{stages[k]:.0f}" if k in stages else "" for k in stage_names],
                f"{r['cpu_ms']:.0f}",
                f"{current[r['source']] / r['cpu_ms']:.2f}x",
                "/".join(f"{v:.4f}" for v in r.get("ssim", [])),
                "/".join(f"{v:.4f}" for v in r.get("encoder_only_ssim", [])),
            ]
        )
    return format_table(headers, table)


# -------------------------------------------------------------------- report


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def build_rows(results: dict[str, Any], variants: Sequence[str]) -> list[list[object]]:
    rows: list[list[object]] = []
    for key, cell in results["cells"].items():
        quality = cell["quality"]
        for procs, timing in cell["timing"].items():
            base = timing[BASELINE]["per_image_s"]["median"]
            for variant in variants:
                if variant not in timing:
                    continue
                t = timing[variant]
                q = quality.get(variant, {})
                rows.append(
                    [
                        key,
                        procs,
                        variant,
                        _ms(t["per_image_s"]["median"]),
                        _ms(t["per_image_s"]["p90"]),
                        _ms(t["cpu_per_image_s"]["median"]),
                        f"{t['images_per_s']:.2f}",
                        f"{base / t['per_image_s']['median']:.2f}x",
                        f"{q.get('ssim_mean', float('nan')):.4f}",
                        f"{q.get('ssim_min', float('nan')):.4f}",
                        f"{q.get('encoder_only_mean', float('nan')):.4f}",
                        f"{t['mean_output_bytes'] / 1024:.0f}",
                    ]
                )
    return rows


TABLE_HEADERS = (
    "input->out",
    "procs",
    "variant",
    "median ms",
    "p90 ms",
    "CPU ms",
    "img/s",
    "speed vs naive",
    "SSIM mean",
    "SSIM min",
    "enc-only",
    "KiB/img",
)


def _ours_ratio_lines(
    timing: dict[str, Any], procs: str, context: str, mine: str, others: Sequence[str], vips_goal: float | None
) -> list[str]:
    """``mine`` (ours or ours-pillow) against the baseline and against each of ``others`` (goal ``vips_goal``)."""
    ours = timing[mine]
    base = timing[BASELINE]
    lines = [
        ratio_line(
            f"naive/{mine} per-image median",
            context,
            base["per_image_s"]["median"] / ours["per_image_s"]["median"],
            GOAL_VS_NAIVE,
        )
    ]
    if procs != "1":
        lines.append(ratio_line(f"{mine}/naive images/s", context, ours["images_per_s"] / base["images_per_s"]))
    lines.append(
        ratio_line(
            f"naive/{mine} per-image CPU median",
            context,
            base["cpu_per_image_s"]["median"] / ours["cpu_per_image_s"]["median"],
            GOAL_VS_NAIVE,
        )
    )
    for variant in others:
        if variant not in timing:
            continue
        other = timing[variant]
        for label, metric in (("median", "per_image_s"), ("CPU median", "cpu_per_image_s")):
            lines.append(
                ratio_line(
                    f"{variant}/{mine} per-image {label}",
                    context,
                    other[metric]["median"] / ours[metric]["median"],
                    vips_goal,
                )
            )
    return lines


def ratio_lines(results: dict[str, Any], variants: Sequence[str]) -> list[str]:
    """Per cell and process count: ours vs the baseline and each libvips variant, ours-pillow likewise.

    ``ours`` carries both goals. ``ours-pillow`` (the fallback) carries the
    goal against naive and is compared with ``pyvips`` without a goal, so its
    standing stays visible; ``ours-pillow/ours`` is what libvips saves us.
    """
    vips = [v for v in variants if v in VIPS_VARIANTS]
    lines = []
    for key, cell in results["cells"].items():
        for procs, timing in cell["timing"].items():
            context = f"{key}, {procs} proc"
            lines += _ours_ratio_lines(timing, procs, context, OURS, vips, GOAL_VS_VIPS)
            if OURS_PILLOW in timing:
                pyvips = [v for v in vips if v == "pyvips"]
                lines += _ours_ratio_lines(timing, procs, context, OURS_PILLOW, pyvips, None)
                lines.append(
                    ratio_line(
                        f"{OURS_PILLOW}/{OURS} per-image CPU median",
                        context,
                        timing[OURS_PILLOW]["cpu_per_image_s"]["median"] / timing[OURS]["cpu_per_image_s"]["median"],
                    )
                )
    return lines


def make_chart(results: dict[str, Any], path: Path) -> str | None:
    """Bar chart for the docs: 1-process latency, 2-process throughput, peak RSS."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        return f"chart skipped: matplotlib unavailable ({exc})"
    variants = [v for v in results["variants"] if v in RENDERERS]
    palette = ("#9e9e9e", "#1565c0", "#64b5f6", "#ef6c00", "#ffa726", "#ffcc80", "#6d4c41")
    colours = dict(zip(ALL_VARIANTS, palette, strict=True))
    cells = results["cells"]
    fig, axes = plt.subplots(1, 3, figsize=(17, 5.2), gridspec_kw={"width_ratios": [4, 2, 1.6]})

    def grouped(ax: Any, keys: list[str], procs: str, metric: str, title: str, ylabel: str) -> None:
        width = 0.8 / len(variants)
        for j, variant in enumerate(variants):
            xs, ys, cpu = [], [], []
            for i, key in enumerate(keys):
                timing = cells[key]["timing"].get(procs, {})
                if variant in timing:
                    t = timing[variant]
                    xs.append(i + (j - (len(variants) - 1) / 2) * width)
                    ys.append(t["per_image_s"]["median"] * 1000 if metric == "ms" else t["images_per_s"])
                    if "cpu_per_image_s" in t:
                        cpu.append(t["cpu_per_image_s"]["median"] * 1000)
            bars = ax.bar(xs, ys, width, label=variant, color=colours[variant])
            ax.bar_label(bars, fmt="%.0f" if metric == "ms" else "%.1f", fontsize=7, padding=1)
            if metric == "ms" and len(cpu) == len(xs):
                # CPU time per image: the part of the bar that is not waiting for a busy machine.
                ax.scatter(xs, cpu, marker="_", s=120, color="black", linewidths=1.5, zorder=3)
        ax.set_xticks(range(len(keys)), keys)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel)

    one = [k for k in cells if "1" in cells[k]["timing"]]
    two = [k for k in cells if "2" in cells[k]["timing"]]
    grouped(
        axes[0],
        one,
        "1",
        "ms",
        "Per-image median wall time, 1 process (lower is better); black tick = median CPU time",
        "ms per image (3 renditions)",
    )
    grouped(axes[1], two, "2", "ips", "Throughput, 2 processes (higher is better)", "images/s")
    axes[0].legend(fontsize=8, ncols=2)
    rss = results.get("rss", {})
    names = [v for v in variants if "peak_mb" in rss.get(v, {})]
    bars = axes[2].bar(range(len(names)), [rss[v]["peak_mb"] for v in names], color=[colours[v] for v in names])
    axes[2].bar_label(bars, fmt="%.0f", fontsize=7, padding=1)
    axes[2].set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    w, h = results["config"]["rss_size"]
    axes[2].set_title(f"Peak RSS, one {w}x{h} JPEG", fontsize=10)
    axes[2].set_ylabel("MiB")
    m = results["machine"]
    fig.suptitle(
        f"imagebatch imaging benchmark: {results['config']['photo_size'][0]}x{results['config']['photo_size'][1]} "
        f"photo-like sources, renditions {results['config']['widths']}, q{results['config']['quality']}; "
        f"{m['nproc']} cores {m['cpu_model']}, Pillow {m['pillow']}",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


# ---------------------------------------------------------------------- main


def run(config: Config, *, quick: bool) -> dict[str, Any]:
    """Measure everything and return the JSON-ready results (printing as it goes)."""
    variants = [BASELINE, OURS, OURS_PILLOW]  # both run without pyvips (ours then is Pillow alone)
    skipped: dict[str, str] = {}
    vips_version, reason = vips_status()
    if vips_version:
        variants += ["pyvips", "pyvips-cascade", "pyvips-2thr"]
    else:
        skipped.update(dict.fromkeys(("pyvips", "pyvips-cascade", "pyvips-2thr"), reason))
    cli_version, reason = vipsthumbnail_status()
    if cli_version:
        variants.append("vipsthumbnail")
    else:
        skipped["vipsthumbnail"] = reason
    for variant, why in skipped.items():
        print(f"SKIP {variant}: {why}")

    machine = machine_info()
    machine["pyvips"] = vips_version
    machine["vipsthumbnail"] = cli_version
    machine["ours_backend"] = _ours_backend()
    machine["loadavg_start"] = os.getloadavg()
    results: dict[str, Any] = {
        "benchmark": "imaging",
        "quick": quick,
        "machine": machine,
        "config": {
            "photo_size": list(config.photo_size),
            "rss_size": list(config.rss_size),
            "widths": [r.width for r in config.renditions],
            "quality": config.quality,
            "images": config.images,
            "repeats": config.repeats,
        },
        "variants": variants,
        "skipped": skipped,
        "cells": {},
    }
    for cell in config.cells:
        started = time.perf_counter()
        timing = {str(p): time_cell(cell, p, variants, config) for p in cell.procs}
        quality = quality_cell(cell, variants, config)
        results["cells"][cell.label] = {"timing": timing, "quality": quality}
        print(f"... {cell.label} done in {time.perf_counter() - started:.1f}s", flush=True)
    results["rss"] = measure_rss(variants, config)
    machine["loadavg_end"] = os.getloadavg()
    return results


def main(argv: list[str] | None = None) -> int:
    """CLI entry point (also called by ``bench.run``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--rss-child"]:
        return _rss_child(*argv[1:5])
    parser = argparse.ArgumentParser(prog="python -m bench.imaging", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (1 small image, 1 repeat)")
    parser.add_argument("--out", type=Path, help="result JSON (default bench/results/imaging[-quick].json)")
    parser.add_argument("--images", type=int, help="images per cell")
    parser.add_argument("--repeats", type=int, help="repeats per cell")
    parser.add_argument("--chart", type=Path, help="chart PNG (default docs/bench/imaging.png; none with --quick)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also cProfile ours-pillow (the Pillow recipe) and time alternative Pillow recipes per stage",
    )
    args = parser.parse_args(argv)

    config = QUICK if args.quick else FULL
    if args.images or args.repeats:
        config = Config(
            config.photo_size,
            config.rss_size,
            config.renditions,
            images=args.images or config.images,
            repeats=args.repeats or config.repeats,
            cells=config.cells,
        )
    started = time.perf_counter()
    results = run(config, quick=args.quick)
    variants = results["variants"]

    m = results["machine"]
    print()
    print(f"machine: {m['nproc']} cores, {m['cpu_model']}, {m['mem_total_mib']} MiB; Python {m['python']}")
    load = max(m["loadavg_start"][0], m["loadavg_end"][0])
    if load > (m["nproc"] or 1):
        print(
            f"WARNING: load average reached {load:.1f} on {m['nproc']} cores: other processes competed for the CPU, "
            "so wall-clock times are inflated; compare the CPU ms column and the CPU ratios too."
        )
    print(
        f"Pillow {m['pillow']} (libjpeg {m['pillow_libjpeg']}, turbo={m['pillow_libjpeg_turbo']}, "
        f"libwebp {m['pillow_libwebp']}); {m['pyvips'] or 'no pyvips'}; {m['vipsthumbnail'] or 'no vipsthumbnail'}"
    )
    print(f"ours = render_image default backend {DEFAULT_BACKEND!r}: {m['ours_backend']}")
    print('ours-pillow = render_image(backend="pillow"): the pure-Pillow recipe (fallback)')
    cfg = results["config"]
    print(
        f"sources {cfg['photo_size'][0]}x{cfg['photo_size'][1]} (JPEG q90 / PNG), renditions {cfg['widths']} "
        f"q{cfg['quality']}, {cfg['images']} images x {cfg['repeats']} repeats"
    )
    print(format_table(TABLE_HEADERS, build_rows(results, variants)))
    print()
    rss = results["rss"]
    rss_rows = [
        [v, f"{rss[v]['peak_mb']:.0f}", f"{rss[v]['delta_mb']:.0f}", _ms(rss[v]["seconds"])]
        if "peak_mb" in rss[v]
        else [v, "error", str(rss[v].get("error")), ""]
        for v in variants
    ]
    w, h = cfg["rss_size"]
    print(f"peak RSS rendering one {w}x{h} JPEG (fresh process each):")
    print(format_table(("variant", "peak MiB", "growth MiB", "ms"), rss_rows))
    print()
    for line in ratio_lines(results, variants):
        print(line)
    if args.profile:
        print()
        print('cProfile of ours-pillow (render_image backend="pillow", JPEG source), top entries by own time:')
        print(profile_ours_pillow(config))
        results["recipes"] = recipe_experiments(config, repeats=3 if args.quick else 9)
        print("recipe experiments: median CPU time per stage (1 thread) and SSIM vs full-resolution LANCZOS:")
        print(format_recipes(results["recipes"], config.renditions))

    out = args.out or results_dir() / ("imaging-quick.json" if args.quick else "imaging.json")
    write_json(out, results)
    print(f"\nresults: {out}")
    chart = args.chart or (None if args.quick else REPO_ROOT / "docs" / "bench" / "imaging.png")
    if chart is not None:
        problem = make_chart(results, chart)
        print(problem or f"chart: {chart}")
    print(f"imaging benchmark took {time.perf_counter() - started:.1f}s")
    # The same comparison on the realistic corpus (bench/corpus.py), with the speed goals of issue 12.
    from bench import photos

    print("\n===== realistic corpus (bench.photos)", flush=True)
    return photos.main(["--quick"] if args.quick else [])


if __name__ == "__main__":
    raise SystemExit(main())
