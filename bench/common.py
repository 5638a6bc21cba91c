"""Plumbing shared by the benchmark modules.

Why these helpers exist:

* The reference machine (and CI) has 2 cores shared with other work, so single
  timings are noise. Benchmarks report **medians and p90 over repeats** and
  **ratios against a baseline measured in the same run**; absolute numbers are
  only comparable within one run.
* Every result file carries the machine and library versions it was produced
  with (:func:`machine_info`), because a Pillow or libjpeg-turbo upgrade moves
  the numbers more than most code changes do.
* Ratio lines have one fixed, greppable shape (:func:`ratio_line`) so the smoke
  test and a reader of CI logs can find them without parsing tables.
"""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

REPO_ROOT = Path(__file__).resolve().parent.parent


def results_dir() -> Path:
    """Where result JSON goes; ``BENCH_RESULTS_DIR`` redirects it (tests use a tmp dir)."""
    return Path(os.environ.get("BENCH_RESULTS_DIR") or REPO_ROOT / "bench" / "results")


def cache_dir() -> Path:
    """Generated inputs are cached here: a 12 MP PNG takes ~3.5 s to encode.

    Keyed by Pillow version, since the encoded bytes (and so the benchmark
    input) can change with it. ``BENCH_CACHE_DIR`` overrides the location.
    """
    base = os.environ.get("BENCH_CACHE_DIR") or os.path.join(tempfile.gettempdir(), "imagebatch-bench")
    path = Path(base) / f"pillow-{Image.__version__}"
    path.mkdir(parents=True, exist_ok=True)
    return path


# ------------------------------------------------------------------ statistics


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (``q`` in 0-100), like numpy's default."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summarize(samples: Sequence[float]) -> dict[str, float]:
    """Median, p90, min and count of a list of timings (seconds)."""
    if not samples:
        return {"median": math.nan, "p90": math.nan, "min": math.nan, "n": 0}
    return {
        "median": statistics.median(samples),
        "p90": percentile(samples, 90),
        "min": min(samples),
        "n": len(samples),
    }


# ---------------------------------------------------------------------- memory


def peak_rss_kb() -> int:
    """This process's peak resident set (VmHWM) in KiB.

    ``/proc/self/status`` is exact on Linux; ``ru_maxrss`` (KiB on Linux) is
    the portable fallback.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def current_rss_kb() -> int:
    """Current resident set (VmRSS) in KiB, 0 where /proc is unavailable."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


# ---------------------------------------------------------------- machine facts


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_mib() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def machine_info() -> dict[str, Any]:
    """CPU, memory and the library versions that decide imaging speed."""
    from PIL import features

    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "mem_total_mib": _mem_total_mib(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "pillow": Image.__version__,
        "pillow_libjpeg": features.version("jpg"),
        "pillow_libjpeg_turbo": bool(features.check_feature("libjpeg_turbo")),
        "pillow_libwebp": features.version("webp"),
        "pillow_zlib": features.version("zlib"),
    }
    return info


# -------------------------------------------------------------------- printing


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain fixed-width table (also valid-looking Markdown when pasted)."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        padded = (c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        return "| " + " | ".join(padded) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), sep, *(line(r) for r in cells[1:])])


def ratio_line(subject: str, context: str, value: float, goal: float | None = None) -> str:
    """``RATIO <subject> [<context>]: 3.61x (goal >= 2.5x: met)``.

    ``value`` > 1 always means "ours is better"; the subject says what was
    divided by what (e.g. ``naive/ours per-image median``).
    """
    text = f"RATIO {subject} [{context}]: {value:.2f}x"
    if goal is not None:
        verdict = "met" if value >= goal else "NOT met"
        text += f" (goal >= {goal:g}x: {verdict})"
    return text


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write results with a trailing newline; parents are created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")


# ------------------------------------------------------------------------- SSIM


def ssim_luma(a: Image.Image, b: Image.Image, window: int = 7) -> float:
    """Mean SSIM of the luma (Pillow ``L``, BT.601) of two same-size images.

    Uniform ``window`` x ``window`` windows at every position (scikit-image's
    default geometry) and the constants of Wang et al. 2004, computed with
    integral images so a 1600x1200 comparison takes tens of milliseconds.
    Luma only, because that is where resampling and JPEG differences show.
    """
    import numpy as np

    if a.size != b.size:
        raise ValueError(f"SSIM needs equal sizes, got {a.size} and {b.size}")
    x = np.asarray(a.convert("L"), dtype=np.float64)
    y = np.asarray(b.convert("L"), dtype=np.float64)
    w = max(1, min(window, *x.shape))

    def box_mean(v: Any) -> Any:
        c = np.pad(v, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
        return (c[w:, w:] - c[:-w, w:] - c[w:, :-w] + c[:-w, :-w]) / (w * w)

    mx, my = box_mean(x), box_mean(y)
    vx = box_mean(x * x) - mx * mx
    vy = box_mean(y * y) - my * my
    cxy = box_mean(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    ssim_map = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(ssim_map.mean())
