"""Peak memory of one ``render_image`` per source format at the pixel cap:
``python -m bench.memory [--quick] [--only NAME ...] [--backend auto|pillow|libvips ...]``.

Why a benchmark of its own: a Functions worker runs several activities in one
process, so what one image can cost in memory decides how many fit at once
(``IMAGE_MEMORY_BUDGET_MB``, docs/design.md §7). Timing noise does not matter
here, but memory that a previous variant freed and the allocator kept would, so
**every variant runs in a fresh process**: it imports the app, loads libvips,
reads the file, resets the kernel's peak counter (``/proc/self/clear_refs``) and
reports ``VmHWM - VmRSS`` around a single ``render_image`` call ("peak growth").
The source bytes themselves are not counted (the activity holds them anyway).

Inputs are generated once (with libvips, which writes 16-bit RGB PNGs and
tiled/stripped TIFFs that Pillow cannot) and cached under
``bench.common.cache_dir()/memory``; at the 100 MP default cap they take a
couple of minutes to build the first time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import REPO_ROOT, cache_dir, format_table, machine_info, results_dir, write_json

BOUND_MIB = 256
MIB = 2**20

# name -> (width, height, writer); the sizes are just under the 100 MP default cap.
_CAP = (11_500, 8_600)  # 98.9 MP


def _vips() -> Any:
    import pyvips

    return pyvips


def _rgb(width: int, height: int) -> Any:
    """A smooth colour image with some structure (not a flat field that compresses to nothing)."""
    vips = _vips()
    xyz = vips.Image.xyz(width, height)
    x, y = xyz[0], xyz[1]
    r = (x * (255.0 / width)).cast("uchar")
    g = (y * (255.0 / height)).cast("uchar")
    b = ((x + y * 3) % 251).cast("uchar")
    return r.bandjoin([g, b]).copy(interpretation="srgb")


def _write_pillow(image: Any, path: Path, fmt: str, mode: str, **params: Any) -> None:
    from PIL import Image

    raw = image.write_to_memory()
    pil = Image.frombytes("RGB" if image.bands == 3 else "L", (image.width, image.height), raw)
    del raw
    if mode == "P":
        pil = pil.convert("L").convert("P")
        pil.putpalette([(i * 7) % 256 for i in range(768)])
    pil.save(path, fmt, **params)


_INPUTS: dict[str, tuple[tuple[int, int], Callable[[Any, Path], None]]] = {
    "jpeg": (_CAP, lambda im, p: im.jpegsave(str(p), Q=85)),
    "png-rgb": (_CAP, lambda im, p: im.pngsave(str(p), compression=1)),
    "png-rgba": (_CAP, lambda im, p: im.bandjoin(255).pngsave(str(p), compression=1)),
    "png-rgb16": (
        _CAP,
        lambda im, p: (
            (im.cast("ushort") * 257)
            .cast("ushort")
            .copy(interpretation="rgb16")
            .pngsave(str(p), compression=1, bitdepth=16)
        ),
    ),
    "png-grey16": (
        _CAP,
        lambda im, p: (
            (im[0].cast("ushort") * 257)
            .cast("ushort")
            .copy(interpretation="grey16")
            .pngsave(str(p), compression=1, bitdepth=16)
        ),
    ),
    "png-palette": (_CAP, lambda im, p: _write_pillow(im, p, "PNG", "P", compress_level=1)),
    "gif": (_CAP, lambda im, p: _write_pillow(im, p, "GIF", "P")),
    "tiff-deflate": (_CAP, lambda im, p: im.tiffsave(str(p), compression="deflate")),
    "webp": ((16_383, 6_000), lambda im, p: im.webpsave(str(p), Q=80, effort=0)),
    "bmp-palette": (_CAP, lambda im, p: _write_pillow(im, p, "BMP", "P")),
    # 24-bit BMP: the default MAX_SOURCE_BYTES (256 MiB) admits at most ~89 MP of it.
    "bmp-rgb": ((9_600, 9_000), lambda im, p: _write_pillow(im, p, "BMP", "RGB")),
}
_QUICK_SIZE = (2_000, 1_500)
_EXT = {"jpeg": "jpg", "gif": "gif", "webp": "webp"}


def _input(name: str, quick: bool) -> Path:
    size, write = _INPUTS[name]
    if quick:
        size = _QUICK_SIZE
    folder = cache_dir() / "memory"
    folder.mkdir(parents=True, exist_ok=True)
    ext = _EXT.get(name) or name.split("-")[0]
    path = folder / f"{name}-{size[0]}x{size[1]}.{ext}"
    if not path.exists():
        started = time.perf_counter()
        partial = path.with_suffix(".partial." + ext)
        write(_rgb(*size), partial)
        partial.rename(path)
        print(f"  made {path.name} ({path.stat().st_size / MIB:.1f} MiB) in {time.perf_counter() - started:.0f} s")
    return path


# ----------------------------------------------------------------- child


def _status(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _child(path: str, backend: str) -> None:
    from imagebatch import libvips
    from imagebatch.imaging import ImageProcessingError, render_image
    from imagebatch.specs import RenderSpec

    libvips.resolve("auto")  # a warm worker has libvips loaded already
    data = Path(path).read_bytes()
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # reset VmHWM to the current RSS
    before = _status("VmRSS")
    started = time.perf_counter()
    try:
        result = render_image(data, RenderSpec(), backend=backend)
        outcome = "ok " + "/".join(str(r.width) for r in result.renditions)
    except ImageProcessingError as error:
        outcome = f"{error.kind}: {error.message}"
    except MemoryError as error:
        outcome = f"MemoryError: {error}"
    seconds = time.perf_counter() - started
    peak = _status("VmHWM")
    print(json.dumps({"growth": peak - before, "before": before, "outcome": outcome, "seconds": seconds}))


def _measure(path: Path, backend: str, pythonpath: str | None) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": pythonpath or str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "bench.memory", "--child", str(path), backend],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=600,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"growth": None, "outcome": f"crashed (exit {done.returncode}): {done.stderr.strip()[-200:]}"}
    return json.loads(lines[-1])


# ----------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2000x1500 inputs: a smoke run, not the bound")
    parser.add_argument("--only", action="append", choices=sorted(_INPUTS), metavar="NAME")
    parser.add_argument("--backend", action="append", choices=["auto", "pillow", "libvips"])
    parser.add_argument(
        "--code", metavar="DIR", help="import imagebatch from DIR instead (e.g. an older checkout, for 'before')"
    )
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(*args.child)
        return 0
    names = args.only or list(_INPUTS)
    backends = args.backend or ["auto", "pillow"]
    pythonpath = f"{Path(args.code).resolve()}{os.pathsep}{REPO_ROOT}" if args.code else None
    rows, results = [], []
    over = 0
    for name in names:
        path = _input(name, args.quick)
        size = path.stem.rsplit("-", 1)[-1]
        for backend in backends:
            measured = _measure(path, backend, pythonpath)
            growth = measured.get("growth")
            mib = None if growth is None else growth / MIB
            verdict = "-" if mib is None else ("ok" if mib <= BOUND_MIB else "OVER")
            if verdict == "OVER":
                over += 1
            outcome = measured["outcome"]
            rows.append(
                [
                    name,
                    size,
                    f"{path.stat().st_size / MIB:.1f}",
                    backend,
                    "-" if mib is None else f"{mib:,.0f}",
                    verdict,
                    outcome if len(outcome) <= 70 else outcome[:67] + "...",
                ]
            )
            results.append({"input": name, "size": size, "backend": backend, **measured})
            print(f"  {name:<13} {backend:<7} {'-' if mib is None else f'{mib:7,.0f} MiB'}  {outcome[:90]}", flush=True)
    print()
    print(f"Peak RSS growth of one render_image (fresh process each), bound {BOUND_MIB} MiB:")
    print(format_table(["input", "size", "file MiB", "backend", "peak growth MiB", "bound", "outcome"], rows))
    print(f"RESULT {over} of {len(rows)} variants over the {BOUND_MIB} MiB bound")
    write_json(
        results_dir() / f"memory{'-quick' if args.quick else ''}.json",
        {"machine": machine_info(), "bound_mib": BOUND_MIB, "code": args.code or "HEAD", "results": results},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
