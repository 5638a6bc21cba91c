"""A realistic benchmark corpus: 12 MP JPEG q90 "camera" photos of 2-6 MB.

Why not ``devtools.sample_images.make_photo``: its drawn gradients, shapes
and text compress to ~1.5 MB at 12 MP q90 and decode ~35 % faster than a real
12 MP camera JPEG, because most of their 8x8 blocks have few non-zero AC
coefficients. Decode time is dominated by entropy decoding, i.e. by how many
coefficients the file holds, so a speed benchmark needs the bit budget of a
real photo (2-3 bits a pixel at q90, 3-5 MB for 12 MP) spread the way a real
photo spreads it.

How each image is made (deterministic for its name and seed; only numpy's
``default_rng(seed)`` draws random numbers):

1. **Scene**: a real photograph bundled with scikit-image (``skimage.data``:
   astronaut, coffee, chelsea, rocket... all in the wheel, nothing is
   downloaded), a random 4:3 crop of it, mirrored at random, upscaled to
   4000x3000 with bicubic. That gives real colour statistics, real edges and
   real smooth regions, but no detail above the source's resolution.
2. **Detail**: real textures (scikit-image's ``brick``, ``grass`` and
   ``gravel`` photographs) high-passed, tiled at two scales and multiplied into
   the luma, weighted by how textured the scene is locally (so skies and skin
   stay smooth and foliage, fur and fabric get the fine detail a 12 MP sensor
   resolves). Two octaves give the ~1/f spectrum of natural images.
3. **Sensor**: signal-dependent noise (shot noise, variance growing with the
   signal, plus a read-noise floor), mostly in luma with weaker chroma noise,
   slightly blurred as demosaicing correlates neighbouring pixels; then a mild
   unsharp mask, as camera pipelines apply.
4. **File**: JPEG q90, 4:2:0 (what phones and most cameras write), with a small
   EXIF block (make, model, date) as cameras add.

The corpus has a **held-out split**: ``dev`` images are built from four source
photos and are what decisions are tuned on; ``heldout`` images use four other
source photos (and other seeds) and are only measured, to check that a choice
made on ``dev`` carries over.

Files are cached under :func:`bench.common.cache_dir` (keyed by the Pillow
version and :data:`VERSION`); building one takes ~2-4 s of CPU.

``python -m bench.corpus`` builds the corpus and prints each file's size,
bits per pixel and decode CPU next to the synthetic corpus's.
"""

from __future__ import annotations

import io
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageFilter

from bench.common import cache_dir

VERSION = 1
SIZE = (4000, 3000)
QUALITY = 90


@dataclass(frozen=True)
class Item:
    name: str
    source: str  # a skimage.data function
    seed: int
    split: str  # "dev" | "heldout"


# Tuning happens on "dev"; "heldout" uses other source photos and seeds.
DEV_SOURCES = ("astronaut", "coffee", "chelsea", "rocket")
HELDOUT_SOURCES = ("hubble_deep_field", "immunohistochemistry", "camera", "retina")
ITEMS: tuple[Item, ...] = (
    *(Item(f"dev-{src}-{k}", src, 100 + 10 * i + k, "dev") for i, src in enumerate(DEV_SOURCES) for k in range(2)),
    *(Item(f"heldout-{src}", src, 900 + i, "heldout") for i, src in enumerate(HELDOUT_SOURCES)),
)
TEXTURES = ("brick", "grass", "gravel")


def items(split: str | None = None, limit: int | None = None) -> list[Item]:
    """Corpus items, ``split`` "dev", "heldout" or None (all); dev images first."""
    chosen = [item for item in ITEMS if split is None or item.split == split]
    return chosen[:limit] if limit is not None else chosen


def available() -> tuple[bool, str]:
    """Whether scikit-image (the source photos) is installed, and why not."""
    try:
        import skimage.data  # noqa: F401
    except Exception as exc:  # ImportError, or a broken install
        return False, f"scikit-image unavailable ({type(exc).__name__}: {exc}); pip install -r requirements-dev.txt"
    return True, ""


def path(item: Item, size: tuple[int, int] = SIZE) -> Path:
    """The cached JPEG of ``item`` at ``size``, built on first use."""
    target = cache_dir() / f"corpus-v{VERSION}-{item.name}-{size[0]}x{size[1]}.jpg"
    if not target.exists():
        data = build(item, size)
        tmp = target.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(data)
        tmp.replace(target)
    return target


def paths(split: str | None = None, limit: int | None = None, size: tuple[int, int] = SIZE) -> list[str]:
    return [str(path(item, size)) for item in items(split, limit)]


# ------------------------------------------------------------------- building


def _source_rgb(name: str) -> Any:
    import numpy as np
    import skimage.data

    array = np.asarray(getattr(skimage.data, name)())
    if array.ndim == 2:  # a grey photograph: give it a mild warm/cool tone, as a colour camera would
        grey = array.astype(np.float32)
        array = np.clip(np.stack([grey * 1.04, grey, grey * 0.93], axis=-1), 0, 255).astype(np.uint8)
    return array[..., :3]


def _texture(rng: Any, size: tuple[int, int], scale: float) -> Any:
    """A zero-mean high-pass texture field from a real texture photograph, tiled (mirrored)."""
    import numpy as np
    import skimage.data

    width, height = size
    name = TEXTURES[int(rng.integers(len(TEXTURES)))]
    tile = Image.fromarray(np.asarray(getattr(skimage.data, name)()))
    if rng.random() < 0.5:
        tile = tile.transpose(Image.Transpose.TRANSPOSE)
    side = max(8, round(tile.width * scale))
    tile = tile.resize((side, side), Image.Resampling.BICUBIC)
    t = np.asarray(tile, dtype=np.float32)
    t = np.concatenate([t, t[:, ::-1]], axis=1)
    t = np.concatenate([t, t[::-1, :]], axis=0)
    reps = (-(-height // t.shape[0]), -(-width // t.shape[1]))
    off = (int(rng.integers(t.shape[0])), int(rng.integers(t.shape[1])))
    field = np.tile(t, (reps[0] + 1, reps[1] + 1))[off[0] : off[0] + height, off[1] : off[1] + width]
    blurred = Image.fromarray(np.clip(field, 0, 255).astype(np.uint8)).filter(ImageFilter.BoxBlur(6 * scale))
    low = np.asarray(blurred, dtype=np.float32)
    high = field - low
    return high / (high.std() + 1e-6)


def build(item: Item, size: tuple[int, int] = SIZE) -> bytes:
    """The JPEG bytes of ``item`` (deterministic for the item and size)."""
    import numpy as np

    rng = np.random.default_rng(item.seed)
    width, height = size
    src = _source_rgb(item.source)
    sh, sw = src.shape[:2]
    # 1. a random 4:3 crop (70-100 % of the largest one), mirrored at random, upscaled
    aspect = width / height
    cw, ch = (sw, sw / aspect) if sw / sh < aspect else (sh * aspect, sh)
    frac = float(rng.uniform(0.7, 1.0))
    cw, ch = cw * frac, ch * frac
    x0, y0 = float(rng.uniform(0, sw - cw)), float(rng.uniform(0, sh - ch))
    scene = Image.fromarray(src).resize(size, Image.Resampling.BICUBIC, box=(x0, y0, x0 + cw, y0 + ch))
    if rng.random() < 0.5:
        scene = scene.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    rgb = np.asarray(scene, dtype=np.float32)
    luma = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)

    # 2. real texture where the scene is textured: local contrast of the upscaled scene
    small = Image.fromarray(np.clip(luma, 0, 255).astype(np.uint8)).resize((width // 16, height // 16))
    s = np.asarray(small, dtype=np.float32)
    local = np.abs(s - np.asarray(small.filter(ImageFilter.BoxBlur(2)), dtype=np.float32))
    mask_small = Image.fromarray(np.clip(local * 12, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(3))
    mask = np.asarray(mask_small.resize(size, Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
    mask = 0.25 + 0.75 * np.clip(mask * 1.6, 0, 1)  # a floor: nothing real is perfectly smooth at 12 MP
    strength = float(rng.uniform(0.13, 0.17))
    detail = _texture(rng, size, float(rng.uniform(0.9, 1.3))) + 0.6 * _texture(rng, size, float(rng.uniform(2.2, 3.0)))
    bright = np.clip(luma / 255.0, 0.08, 1.0)  # texture modulates light: less of it in the shadows
    rgb *= (1.0 + strength * mask * detail * (0.5 + 0.5 * bright))[..., None]

    # 3. sensor noise: shot noise (variance ~ signal) + read noise, luma-heavy, demosaic-correlated
    gain = float(rng.uniform(0.06, 0.1))
    sigma = np.sqrt(gain * np.clip(luma, 0, 255) + 5.0)
    luma_noise = rng.standard_normal((height, width), dtype=np.float32) * sigma
    chroma = rng.standard_normal((height, width, 3), dtype=np.float32) * (0.45 * sigma[..., None])
    noise = luma_noise[..., None] + chroma
    noisy = np.clip(rgb + noise, 0, 255).astype(np.uint8)
    im = Image.fromarray(noisy).filter(ImageFilter.GaussianBlur(0.45))
    im = im.filter(ImageFilter.UnsharpMask(radius=1.6, percent=45, threshold=2))

    # 4. the file a camera would write
    exif = Image.Exif()
    exif[0x010F] = "Imagebatch"  # Make
    exif[0x0110] = f"Corpus {item.source}"  # Model
    exif[0x0132] = "2026:01:01 12:00:00"  # DateTime
    out = io.BytesIO()
    im.save(out, "JPEG", quality=QUALITY, subsampling="4:2:0", exif=exif.tobytes())
    return out.getvalue()


# ----------------------------------------------------------------------- CLI


def _decode_cpu(data: bytes, repeats: int = 5) -> float:
    samples = []
    for _ in range(repeats):
        t = time.process_time()
        Image.open(io.BytesIO(data)).load()
        samples.append(time.process_time() - t)
    samples.sort()
    return samples[len(samples) // 2]


def main(argv: list[str] | None = None) -> int:
    ok, reason = available()
    if not ok:
        print(f"SKIP corpus: {reason}")
        return 0
    from devtools.sample_images import encode, make_photo

    print(f"load average {os.getloadavg()[0]:.2f}")
    rows = []
    for item in ITEMS:
        data = path(item).read_bytes()
        rows.append((item.name, item.split, data))
    for seed in range(2026, 2029):
        synthetic = encode(make_photo(*SIZE, seed), "JPEG", quality=90)
        rows.append((f"synthetic make_photo seed {seed}", "synthetic", synthetic))
    pixels = SIZE[0] * SIZE[1]
    for name, split, data in rows:
        cpu = _decode_cpu(data)
        print(
            f"{name:38} {split:9} {len(data) / 2**20:5.2f} MiB  {8 * len(data) / pixels:4.2f} bit/px  "
            f"full decode {cpu * 1000:5.1f} ms CPU ({cpu * 1e9 / pixels:4.2f} ns/px)  load {os.getloadavg()[0]:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
