"""Where the Pillow recipe's time goes, per stage, and what recipe changes would buy.

    python -m bench.experiments.pillow_recipes [--quick] [--repeats 9]

Rebuilds ``render_image(backend="pillow")`` by hand for the imaging benchmark's inputs so each
stage (decode, each resize, encode) can be timed, and tries variations (``reducing_gap``,
BICUBIC, no JPEG draft) against pyvips-cascade measured in the same loop. docs/benchmarks.md
("Where the Pillow recipe's time goes") reports a run of it.
"""

from __future__ import annotations

import argparse
import io
import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from bench.common import format_table, ssim_luma
from bench.imaging.harness import FULL, QUICK, Config, _inputs, _rotated
from bench.imaging.variants import RENDERERS, vips_status
from devtools.sample_images import encode
from imagebatch.imaging import plan_size
from imagebatch.specs import Rendition


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
    RENDERERS["pyvips-cascade"](data, "", "jpeg", renditions, quality)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.experiments.pillow_recipes", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="the imaging benchmark's quick inputs, 3 repeats")
    parser.add_argument("--repeats", type=int, help="repeats per recipe (default 9, 3 with --quick)")
    args = parser.parse_args(argv)
    config = QUICK if args.quick else FULL
    rows = recipe_experiments(config, repeats=args.repeats or (3 if args.quick else 9))
    print("recipe experiments: median CPU time per stage (1 thread) and SSIM vs full-resolution LANCZOS:")
    print(format_recipes(rows, config.renditions))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
