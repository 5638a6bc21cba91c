"""``python -m bench.imaging``: run every cell, print the report, write the JSON and the chart."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import REPO_ROOT, format_table, machine_info, results_dir, write_json
from bench.imaging.harness import (
    FULL,
    QUICK,
    Config,
    _rss_child,
    measure_rss,
    profile_ours_pillow,
    quality_cell,
    time_cell,
)
from bench.imaging.report import TABLE_HEADERS, _ms, build_rows, make_chart, ratio_lines
from bench.imaging.variants import BASELINE, OURS, OURS_PILLOW, _ours_backend, vips_status, vipsthumbnail_status
from imagebatch.imaging import DEFAULT_BACKEND


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
    parser = argparse.ArgumentParser(
        prog="python -m bench.imaging", description="Our imaging pipeline against naive Pillow and libvips."
    )
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (1 small image, 1 repeat)")
    parser.add_argument("--out", type=Path, help="result JSON (default bench/results/imaging[-quick].json)")
    parser.add_argument("--images", type=int, help="images per cell")
    parser.add_argument("--repeats", type=int, help="repeats per cell")
    parser.add_argument("--chart", type=Path, help="chart PNG (default docs/bench/imaging.png; none with --quick)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also cProfile ours-pillow (the Pillow recipe); per-stage recipe experiments are "
        "python -m bench.experiments.pillow_recipes",
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
