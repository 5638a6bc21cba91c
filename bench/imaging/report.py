"""What the imaging benchmark prints and draws: the table, the RATIO verdict lines, the docs chart."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import ratio_line
from bench.imaging.variants import (
    ALL_VARIANTS,
    BASELINE,
    GOAL_VS_NAIVE,
    GOAL_VS_VIPS,
    OURS,
    OURS_PILLOW,
    RENDERERS,
    VIPS_VARIANTS,
)


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
