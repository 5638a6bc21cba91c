"""Imaging speed and quality on the realistic corpus (``bench.corpus``).

``python -m bench.photos`` times, in one process and interleaved (the order of
the variants rotates every repeat), the CPU time (``time.process_time``) of

* ``naive``: full decode, a full-resolution LANCZOS per rendition, Pillow's default encoders;
* ``ours``: ``render_image`` with the default backend (what production runs);
* ``ours-pillow``: ``render_image(backend="pillow")``, the fallback;
* ``pyvips-cascade``: libvips doing the same steps (shrink-on-load to the largest
  rendition, the others from it in memory), 1 thread, libvips encoders with our settings;

on JPEG q90 12 MP photos to JPEG q85 and WebP q85 (large 1600 / medium 800 /
thumb 320). It reports medians per split (``dev``: what choices were tuned on,
``heldout``: only measured) and for both together, the ratios against the goals
(ours >= 4x naive and >= 1x pyvips-cascade on JPEG -> JPEG), and the load average
with every result line.

Quality, per rendition, against a LANCZOS resize of the full-resolution decode:
the *pre-encode* PSNR of ours (the pixels handed to the encoder, i.e. the same
render to lossless PNG) and of pyvips-cascade, and the SSIM (luma) of the
encoded renditions of every variant. For WebP the goal is ours within 0.01 SSIM
of naive at every rendition; ``--webp-methods`` also measures what each libwebp
``method`` costs and gives.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

from PIL import Image

from bench import corpus
from bench.common import machine_info, ratio_line, results_dir, ssim_luma, write_json
from imagebatch.imaging import encode as imaging_encode
from imagebatch.imaging import render_image
from imagebatch.specs import DEFAULT_RENDITIONS, RenderSpec, Rendition

QUALITY = 85
GOAL_VS_NAIVE = 4.0
GOAL_VS_VIPS = 1.0
GOAL_PSNR_DB = 44.0
WEBP_SSIM_SLACK = 0.01
VARIANTS = ("naive", "ours", "ours-pillow", "pyvips-cascade")
QUICK_RENDITIONS = (Rendition("large", 400), Rendition("medium", 200), Rendition("thumb", 80))


def _load() -> str:
    return f"load {os.getloadavg()[0]:.2f}"


def _renderers() -> dict[str, Any]:
    from bench.imaging.variants import RENDERERS, vips_status

    names = ["naive", "ours", "ours-pillow"] + (["pyvips-cascade"] if vips_status()[0] else [])
    return {name: RENDERERS[name] for name in names}


# ---------------------------------------------------------------------- timing


def time_variants(
    datas: list[tuple[str, bytes]], fmt: str, renditions: Sequence[Rendition], repeats: int
) -> dict[str, dict[str, list[float]]]:
    """CPU seconds per image, ``{variant: {split: [samples]}}``, variants interleaved."""
    renderers = _renderers()
    names = list(renderers)
    for name in names:  # warm-up: imports, codec set-up, libvips start
        renderers[name](datas[0][1], "", fmt, renditions, QUALITY)
    cpu: dict[str, dict[str, list[float]]] = {n: {} for n in names}
    for rep in range(repeats):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for name in order:
            for split, data in datas:
                start = time.process_time()
                renderers[name](data, "", fmt, renditions, QUALITY)
                cpu[name].setdefault(split, []).append(time.process_time() - start)
    return cpu


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000 if samples else math.nan


# --------------------------------------------------------------------- quality


def _psnr(a: Image.Image, b: Image.Image) -> float:
    import numpy as np

    x = np.asarray(a.convert("RGB"), dtype=np.float64)
    y = np.asarray(b.convert("RGB"), dtype=np.float64)
    mse = float(((x - y) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def _reference(data: bytes, sizes: list[tuple[int, int]]) -> list[Image.Image]:
    full = Image.open(io.BytesIO(data)).convert("RGB")
    return [full.resize(size, Image.Resampling.LANCZOS) for size in sizes]


def _vips_pre_encode(data: bytes, renditions: Sequence[Rendition]) -> list[Image.Image]:
    import pyvips

    big = 10_000_000
    large = pyvips.Image.thumbnail_buffer(data, renditions[0].width, height=big, size="down").copy_memory()
    images = [large] + [large.thumbnail_image(r.width, height=big, size="down") for r in renditions[1:]]
    return [Image.frombytes("RGB", (i.width, i.height), i.write_to_memory()) for i in images]


def quality(datas: list[tuple[str, bytes]], renditions: Sequence[Rendition]) -> dict[str, Any]:
    """Per image and rendition: pre-encode PSNR (ours, pyvips-cascade) and encoded SSIM per variant."""
    renderers = _renderers()
    rows: list[dict[str, Any]] = []
    for split, data in datas:
        lossless = render_image(data, RenderSpec(renditions=tuple(renditions), format="png"))
        ours_px = [Image.open(io.BytesIO(r.data)) for r in lossless.renditions]
        reference = _reference(data, [im.size for im in ours_px])
        row: dict[str, Any] = {
            "split": split,
            "psnr_ours": [_psnr(a, b) for a, b in zip(ours_px, reference, strict=True)],
        }
        if "pyvips-cascade" in renderers:
            vips_px = _vips_pre_encode(data, renditions)
            row["psnr_vips"] = [_psnr(a, b) for a, b in zip(vips_px, reference, strict=True)]
        for fmt in ("jpeg", "webp"):
            for name, render in renderers.items():
                outs = render(data, "", fmt, renditions, QUALITY)
                decoded = [Image.open(io.BytesIO(o)) for o in outs]
                row[f"ssim_{fmt}_{name}"] = [
                    ssim_luma(d, r.resize(d.size)) for d, r in zip(decoded, reference, strict=True)
                ]
        rows.append(row)
    return {"rows": rows}


def webp_methods(datas: list[tuple[str, bytes]], renditions: Sequence[Rendition], repeats: int) -> list[dict]:
    """What each libwebp ``method`` costs (ours' CPU per image) and gives (SSIM vs naive, worst rendition)."""
    naive = _renderers()["naive"]
    original = imaging_encode.WEBP_METHOD
    rows = []
    naive_ssim: dict[int, list[float]] = {}
    refs: dict[int, list[Image.Image]] = {}
    for i, (_, data) in enumerate(datas):
        outs = [Image.open(io.BytesIO(o)) for o in naive(data, "", "webp", renditions, QUALITY)]
        refs[i] = _reference(data, [o.size for o in outs])
        naive_ssim[i] = [ssim_luma(o, r) for o, r in zip(outs, refs[i], strict=True)]
    spec = RenderSpec(renditions=tuple(renditions), format="webp", quality=QUALITY)
    try:
        for method in range(0, 7):
            imaging_encode.WEBP_METHOD = method
            cpu, worst, size = [], math.inf, 0
            for _ in range(repeats):
                for _, data in datas:
                    start = time.process_time()
                    render_image(data, spec)
                    cpu.append(time.process_time() - start)
            for i, (_, data) in enumerate(datas):
                result = render_image(data, spec)
                size += sum(len(r.data) for r in result.renditions)
                for k, r in enumerate(result.renditions):
                    score = ssim_luma(Image.open(io.BytesIO(r.data)), refs[i][k])
                    worst = min(worst, score - naive_ssim[i][k])
            rows.append(
                {
                    "method": method,
                    "cpu_ms": _median_ms(cpu),
                    "worst_ssim_vs_naive": worst,
                    "kib": size / 1024 / len(datas),
                }
            )
            print(
                f"webp method {method}: ours CPU median {rows[-1]['cpu_ms']:.1f} ms/image, "
                f"worst rendition SSIM vs naive {worst:+.4f}, {rows[-1]['kib']:.0f} KiB/image, {_load()}",
                flush=True,
            )
    finally:
        imaging_encode.WEBP_METHOD = original
    return rows


# ------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.photos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 small images, 1 repeat (smoke)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--split", choices=("dev", "heldout", "all"), default="all")
    parser.add_argument("--webp-methods", action="store_true", help="also sweep libwebp method 0-6 (ours)")
    args = parser.parse_args(argv)
    ok, reason = corpus.available()
    if not ok:
        print(f"SKIP photos: {reason}")
        return 0
    size = (1000, 750) if args.quick else corpus.SIZE
    renditions = QUICK_RENDITIONS if args.quick else DEFAULT_RENDITIONS
    repeats = 1 if args.quick else args.repeats
    chosen = corpus.items(None if args.split == "all" else args.split)
    if args.quick:
        chosen = [corpus.items("dev")[0], corpus.items("heldout")[0]]
    print(f"building/reading the realistic corpus ({len(chosen)} images {size[0]}x{size[1]}), {_load()}", flush=True)
    datas = [(item.split, corpus.path(item, size).read_bytes()) for item in chosen]
    sizes = [len(d) / 2**20 for _, d in datas]
    print(f"sources: JPEG q90, {min(sizes):.2f}-{max(sizes):.2f} MiB, {_load()}")
    results: dict[str, Any] = {"benchmark": "photos", "quick": args.quick, "machine": machine_info(), "cells": {}}
    results["machine"]["loadavg_start"] = os.getloadavg()
    context = "photos 12 MP" if not args.quick else "photos quick"
    for fmt in ("jpeg", "webp"):
        cpu = time_variants(datas, fmt, renditions, repeats)
        results["cells"][fmt] = cpu
        for split in ("dev", "heldout", "all"):
            if split != "all" and not any(s == split for s, _ in datas):
                continue
            medians = {
                name: _median_ms([v for s, vs in per.items() if split in ("all", s) for v in vs])
                for name, per in cpu.items()
            }
            line = ", ".join(f"{name} {ms:.1f}" for name, ms in medians.items())
            print(f"jpeg->{fmt} q{QUALITY} [{split}] CPU median ms/image: {line}; {_load()}")
            if split == "all":
                ctx = f"{context} jpeg->{fmt} q{QUALITY}, CPU, {_load()}"
                goal = GOAL_VS_NAIVE if fmt == "jpeg" else None
                print(ratio_line("naive/ours per-image CPU median", ctx, medians["naive"] / medians["ours"], goal))
                print(
                    ratio_line("naive/ours-pillow per-image CPU median", ctx, medians["naive"] / medians["ours-pillow"])
                )
                if "pyvips-cascade" in medians:
                    goal = GOAL_VS_VIPS if fmt == "jpeg" else None
                    value = medians["pyvips-cascade"] / medians["ours"]
                    print(ratio_line("pyvips-cascade/ours per-image CPU median", ctx, value, goal))
    q = quality(datas, renditions)
    results["quality"] = q
    psnr_ours = min(v for row in q["rows"] for v in row["psnr_ours"])
    line = f"pre-encode PSNR vs full-resolution LANCZOS, worst rendition: ours {psnr_ours:.1f} dB"
    if all("psnr_vips" in row for row in q["rows"]):
        line += f", pyvips-cascade {min(v for row in q['rows'] for v in row['psnr_vips']):.1f} dB"
    verdict = "met" if psnr_ours >= GOAL_PSNR_DB else "NOT met"
    print(f"{line} (goal >= {GOAL_PSNR_DB:g} dB: {verdict}); {_load()}")
    for fmt in ("jpeg", "webp"):
        names = [k.removeprefix(f"ssim_{fmt}_") for k in q["rows"][0] if k.startswith(f"ssim_{fmt}_")]
        means = {n: statistics.mean(v for row in q["rows"] for v in row[f"ssim_{fmt}_{n}"]) for n in names}
        worst = min(
            o - n for row in q["rows"] for o, n in zip(row[f"ssim_{fmt}_ours"], row[f"ssim_{fmt}_naive"], strict=True)
        )
        print(
            f"SSIM {fmt} mean: "
            + ", ".join(f"{n} {m:.4f}" for n, m in means.items())
            + f"; worst rendition ours - naive {worst:+.4f}"
            + (
                f" (goal >= -{WEBP_SSIM_SLACK}: {'met' if worst >= -WEBP_SSIM_SLACK else 'NOT met'})"
                if fmt == "webp"
                else ""
            )
        )
    if args.webp_methods:
        results["webp_methods"] = webp_methods(datas, renditions, repeats)
    results["machine"]["loadavg_end"] = os.getloadavg()
    out = results_dir() / ("photos-quick.json" if args.quick else "photos.json")
    write_json(out, results)
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
