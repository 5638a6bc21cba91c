"""Deterministic, offline sample images for tests, benchmarks and the demo (never deployed).

Everything here is generated from a seed with Pillow alone (no files, no network,
no external fonts), so a test failure or a benchmark number can be reproduced
byte for byte on another machine with the same Pillow build.

``make_photo`` aims at *photographic-like* content rather than flat test cards:
smooth gradients compress and resample very differently from real photos, which
would make speed and quality measurements meaningless. It therefore mixes a sky
gradient, soft shapes, fine texture, text with sharp edges and sensor-like noise.

``hostile_corpus`` is the contract for the pipeline's error handling: each entry
names the exact outcome (``"ok"`` or an ``ImageProcessingError.kind``) expected
from ``imagebatch.imaging.render_image``.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Callable

from PIL import Image, ImageChops, ImageCms, ImageDraw, ImageFilter, ImageFont

# EXIF orientation -> the transpose that turns the *stored* pixels upright
# (same table as ImageOps.exif_transpose). Used to build stored images whose
# upright rendering is known.
_UPRIGHT_OPS: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Inverse of each upright transform: every one is its own inverse except the
# two quarter turns, which undo each other.
_STORE_OPS: dict[int, Image.Transpose] = {
    **_UPRIGHT_OPS,
    6: Image.Transpose.ROTATE_90,
    8: Image.Transpose.ROTATE_270,
}


# --------------------------------------------------------------------------- photos


def make_photo(width: int, height: int, seed: int, *, text: str | None = None) -> Image.Image:
    """Return an RGB image that behaves like a photo under resampling and JPEG.

    Deterministic for ``(width, height, seed, text)``: only ``random.Random(seed)``
    drives the content (Pillow's ``effect_noise`` uses C ``rand()`` and is not
    reproducible, so noise comes from ``randbytes`` instead).
    """
    rng = random.Random(seed)
    im = _sky(width, height, rng)
    draw = ImageDraw.Draw(im)
    _hills(draw, width, height, rng)
    _blobs(draw, width, height, rng)
    _texture(draw, width, height, rng)
    # A slight optical blur before text and noise: real lenses never produce the
    # perfectly hard edges ImageDraw does, and those would exaggerate ringing.
    im = im.filter(ImageFilter.GaussianBlur(radius=max(0.6, min(width, height) / 1500)))
    _caption(ImageDraw.Draw(im), width, height, rng, text)
    return _add_noise(im, rng, amplitude=10)


def _sky(width: int, height: int, rng: random.Random) -> Image.Image:
    """A vertical two-colour gradient, the cheapest way to get smooth areas."""
    top = (rng.randint(40, 120), rng.randint(90, 170), rng.randint(170, 250))
    bottom = (rng.randint(180, 250), rng.randint(150, 220), rng.randint(100, 180))
    ramp = Image.linear_gradient("L").resize((width, height), Image.Resampling.BILINEAR)
    return Image.composite(Image.new("RGB", (width, height), bottom), Image.new("RGB", (width, height), top), ramp)


def _hills(draw: ImageDraw.ImageDraw, width: int, height: int, rng: random.Random) -> None:
    for layer in range(3):
        base = height * (0.45 + 0.15 * layer)
        points = [(0.0, float(height))]
        steps = 12
        for i in range(steps + 1):
            points.append((width * i / steps, base - rng.uniform(0, height * 0.15)))
        points.append((float(width), float(height)))
        shade = 60 + 40 * layer
        draw.polygon(points, fill=(rng.randint(20, 80), shade + rng.randint(0, 40), rng.randint(20, 70)))


def _blobs(draw: ImageDraw.ImageDraw, width: int, height: int, rng: random.Random) -> None:
    scale = min(width, height)
    cx, cy, r = width * rng.uniform(0.6, 0.9), height * rng.uniform(0.1, 0.3), scale * 0.08 + 1
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(255, 236, 160))
    for _ in range(25):
        x, y = rng.uniform(0, width), rng.uniform(height * 0.4, height)
        w, h = rng.uniform(0.02, 0.12) * scale + 1, rng.uniform(0.02, 0.12) * scale + 1
        colour = (rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255))
        if rng.random() < 0.5:
            draw.ellipse((x, y, x + w, y + h), fill=colour)
        else:
            draw.rectangle((x, y, x + w, y + h), fill=colour, outline=(0, 0, 0))


def _texture(draw: ImageDraw.ImageDraw, width: int, height: int, rng: random.Random) -> None:
    """Grass-like strokes: high-frequency detail that resampling must preserve."""
    count = max(50, width * height // 6000)
    stroke = max(1, min(width, height) // 400)
    for _ in range(count):
        x, y = rng.uniform(0, width), rng.uniform(height * 0.55, height)
        length = rng.uniform(3, 18) * stroke
        shade = rng.randint(30, 140)
        draw.line(
            (x, y, x + rng.uniform(-4, 4) * stroke, y - length), fill=(shade // 2, shade, shade // 3), width=stroke
        )


def _caption(draw: ImageDraw.ImageDraw, width: int, height: int, rng: random.Random, text: str | None) -> None:
    size = max(8, min(width, height) // 14)
    font = ImageFont.load_default(size=size)
    label = text if text is not None else f"sample #{rng.randint(1000, 9999)}"
    draw.text(
        (width * 0.05, height * 0.05),
        label,
        fill=(255, 255, 255),
        font=font,
        stroke_width=max(1, size // 12),
        stroke_fill=(0, 0, 0),
    )


def _add_noise(im: Image.Image, rng: random.Random, *, amplitude: int) -> Image.Image:
    """Add uniform per-channel noise in [-amplitude/2, amplitude/2), like sensor grain."""
    noise = Image.frombytes("RGB", im.size, rng.randbytes(im.width * im.height * 3))
    noise = noise.point(lambda v: v * amplitude // 256)
    return ImageChops.add(im, noise, scale=1.0, offset=-(amplitude // 2))


# ------------------------------------------------------------------------ encoding


def encode(im: Image.Image, fmt: str, **params: object) -> bytes:
    """Encode ``im`` with Pillow and return the bytes."""
    buf = io.BytesIO()
    im.save(buf, format=fmt, **params)
    return buf.getvalue()


def exif_bytes(orientation: int) -> bytes:
    """An EXIF block carrying only an orientation tag (any int, even bogus)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def store_with_orientation(upright: Image.Image, orientation: int) -> Image.Image:
    """Return the pixels a camera would store so that ``orientation`` shows ``upright``."""
    op = _STORE_OPS.get(orientation)
    return upright.copy() if op is None else upright.transpose(op)


def oriented_jpeg(upright: Image.Image, orientation: int, *, quality: int = 90, **params: object) -> bytes:
    """A JPEG whose EXIF orientation must be applied to display ``upright``."""
    stored = store_with_orientation(upright, orientation)
    return encode(stored, "JPEG", quality=quality, exif=exif_bytes(orientation), **params)


# ---------------------------------------------------------------------- sample set


def sample_set(seed: int = 0) -> list[tuple[str, bytes]]:
    """About a dozen modest (<= 1600 px) files for the demo, one of them broken."""
    rng = random.Random(seed)

    def photo(w: int, h: int, label: str) -> Image.Image:
        return make_photo(w, h, rng.randrange(1 << 30), text=label)

    items: list[tuple[str, bytes]] = [
        ("beach.jpg", encode(photo(1600, 1067, "beach"), "JPEG", quality=88)),
        ("mountains.jpg", encode(photo(1200, 800, "mountains"), "JPEG", quality=85)),
        ("portrait-rotated-6.jpg", oriented_jpeg(photo(900, 1200, "portrait"), 6)),
        ("upside-down-3.jpg", oriented_jpeg(photo(1200, 900, "upside down"), 3)),
        ("rotated-8.jpg", oriented_jpeg(photo(800, 1200, "rotated 8"), 8)),
        ("progressive.jpg", encode(photo(1400, 933, "progressive"), "JPEG", quality=85, progressive=True)),
        ("greyscale.jpg", encode(photo(1000, 750, "greyscale").convert("L"), "JPEG", quality=85)),
        ("panorama.jpg", encode(photo(1600, 480, "panorama"), "JPEG", quality=85)),
        ("square.webp", encode(photo(1000, 1000, "square"), "WEBP", quality=85)),
        ("small.jpg", encode(photo(240, 180, "small"), "JPEG", quality=85)),
        ("logo-alpha.png", encode(_alpha_logo(600, 400), "PNG")),
        ("scan.png", encode(photo(700, 500, "scan"), "PNG")),
    ]
    broken = encode(photo(800, 600, "broken"), "JPEG", quality=85)
    items.append(("broken.jpg", broken[: len(broken) // 2]))
    return items


def _alpha_logo(width: int, height: int) -> Image.Image:
    im = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(im)
    draw.rounded_rectangle((20, 20, width - 20, height - 20), radius=40, fill=(30, 120, 200, 255))
    draw.ellipse((width // 3, height // 4, width * 2 // 3, height * 3 // 4), fill=(255, 200, 0, 160))
    font = ImageFont.load_default(size=height // 8)
    draw.text((40, 40), "logo", fill=(255, 255, 255, 255), font=font)
    return im


# ------------------------------------------------------------------ hostile corpus


def _png_chunk(tag: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_bomb(width: int, height: int) -> bytes:
    """A tiny, well-formed PNG whose header declares ``width`` x ``height``."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        _PNG_SIGNATURE
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\0" * 4096))
        + _png_chunk(b"IEND", b"")
    )


def _png_with_ztxt_bomb() -> bytes:
    """An 8x8 PNG with a ~20 KB zTXt chunk that inflates to 20 MB of text."""
    ihdr = _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 0, 0, 0, 0))
    ztxt = _png_chunk(b"zTXt", b"Comment\0\0" + zlib.compress(b"A" * (20 * 1024 * 1024), 9))
    raw = b"".join(b"\0" + b"\x80" * 8 for _ in range(8))
    return _PNG_SIGNATURE + ihdr + ztxt + _png_chunk(b"IDAT", zlib.compress(raw)) + _png_chunk(b"IEND", b"")


def _jpeg_declaring(data: bytes, width: int, height: int) -> bytes:
    """Patch a baseline JPEG's frame header to claim another size (pixel flood)."""
    sof = data.index(b"\xff\xc0")
    return data[: sof + 5] + struct.pack(">HH", height, width) + data[sof + 9 :]


def _gif_declaring(data: bytes, width: int, height: int) -> bytes:
    """Patch a GIF's logical screen size, which Pillow reports as the image size."""
    return data[:6] + struct.pack("<HH", width, height) + data[10:]


def _flip_bytes(data: bytes, start: int, stop: int) -> bytes:
    out = bytearray(data)
    for i in range(start, min(stop, len(out))):
        out[i] ^= 0x5A
    return bytes(out)


def _bad_png_crc(data: bytes) -> bytes:
    out = bytearray(data)
    out[29] ^= 0xFF  # last byte of the IHDR CRC
    return bytes(out)


def _jpeg_undefined_huffman_table(data: bytes) -> bytes:
    """Point the first scan component at a Huffman table that was never defined.

    libjpeg tolerates random garbage in entropy-coded data (it only warns and
    fills with grey), so a reliably *fatal* corruption has to hit the scan
    header instead.
    """
    sos = data.index(b"\xff\xda")
    out = bytearray(data)
    out[sos + 6] = 0x33  # Td/Ta of component 1 -> tables 3/3
    return bytes(out)


def _cmyk_jpeg(*, with_profile: bool = False) -> bytes:
    cmyk = make_photo(160, 120, 7).convert("CMYK")
    if with_profile:
        return encode(cmyk, "JPEG", quality=90, icc_profile=cmyk_icc_profile())
    return encode(cmyk, "JPEG", quality=90)


def _animated_gif(frames: int) -> bytes:
    images = [Image.new("P", (48, 32), i % 200) for i in range(frames)]
    for i, im in enumerate(images):
        ImageDraw.Draw(im).rectangle((i % 40, 4, i % 40 + 6, 20), fill=255)
    return encode(images[0], "GIF", save_all=True, append_images=images[1:], duration=20, loop=0)


def _palette_transparency_png() -> bytes:
    im = Image.new("P", (40, 30), 0)
    im.putpalette([255, 255, 255, 200, 30, 30, 30, 30, 200] + [0] * (256 * 3 - 9))
    ImageDraw.Draw(im).rectangle((10, 5, 30, 25), fill=1)
    return encode(im, "PNG", transparency=0)


def _sixteen_bit_png() -> bytes:
    ramp = Image.linear_gradient("L").resize((64, 48)).convert("I")
    return encode(ramp.point(lambda v: v * 257).convert("I;16"), "PNG")


def _small_photo(fmt: str, **params: object) -> bytes:
    return encode(make_photo(200, 150, 11), fmt, **params)


def hostile_corpus() -> list[tuple[str, bytes, str]]:
    """``(name, bytes, expected)``: awkward or malicious inputs and their outcome.

    ``expected`` is ``"ok"`` or the ``ImageProcessingError.kind`` that
    ``render_image`` must raise. Built on demand (about 0.3 s) rather than at
    import time.
    """
    jpeg = _small_photo("JPEG", quality=85)
    png = _small_photo("PNG")
    gif = encode(make_photo(200, 150, 11).convert("P"), "GIF")
    webp = _small_photo("WEBP", quality=80)
    tiff = _small_photo("TIFF")  # uncompressed: the IFD precedes the pixel data
    tiff_deflate = encode(_noise_image(128, 128, 3), "TIFF", compression="tiff_deflate")
    cases: list[tuple[str, Callable[[], bytes], str]] = [
        ("empty.jpg", lambda: b"", "empty"),
        ("notes.jpg", lambda: b"These are my holiday notes, not a picture.\n" * 20, "unsupported"),
        (
            "page.jpg",
            lambda: b"<!DOCTYPE html><html><head><title>404</title></head><body>Not found</body></html>",
            "unsupported",
        ),
        ("postscript.jpg", lambda: b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n", "unsupported"),
        ("truncated.jpg", lambda: jpeg[: len(jpeg) // 2], "truncated"),
        ("corrupt.jpg", lambda: _jpeg_undefined_huffman_table(jpeg), "corrupt"),
        ("header-only.jpg", lambda: jpeg[:40], "truncated"),
        ("truncated.png", lambda: png[: len(png) * 2 // 3], "truncated"),
        ("bad-crc.png", lambda: _bad_png_crc(png), "corrupt"),
        ("corrupt.png", lambda: _flip_bytes(png, len(png) // 3, len(png) // 3 + 64), "corrupt"),
        ("truncated.gif", lambda: gif[: len(gif) // 2], "truncated"),
        ("corrupt.gif", lambda: _flip_bytes(gif, len(gif) // 3, len(gif) // 3 + 64), "corrupt"),
        ("truncated.webp", lambda: webp[: len(webp) // 2], "truncated"),
        ("corrupt.webp", lambda: _flip_bytes(webp, 40, len(webp) - 4), "corrupt"),
        ("truncated.tiff", lambda: tiff[: len(tiff) // 2], "truncated"),
        ("corrupt.tiff", lambda: _flip_bytes(tiff_deflate, 16, len(tiff_deflate) // 2), "corrupt"),
        ("bomb-100000x100000.png", lambda: _png_bomb(100_000, 100_000), "too_large"),
        # 108 MP: over our 100 MP default but under Pillow's own hard stop, so
        # only the pipeline's local limit catches it.
        ("bomb-12000x9000.jpg", lambda: _jpeg_declaring(jpeg, 12_000, 9_000), "too_large"),
        ("bomb-60000x60000.gif", lambda: _gif_declaring(gif, 60_000, 60_000), "too_large"),
        ("cut-in-header.png", lambda: png[:20], "truncated"),
        ("huge-text-chunk.png", _png_with_ztxt_bomb, "corrupt"),
        ("tall-1x65535.png", lambda: encode(Image.new("L", (1, 65535), 128), "PNG"), "ok"),
        ("wide-65535x1.png", lambda: encode(Image.new("L", (65535, 1), 128), "PNG"), "ok"),
        ("one-pixel.png", lambda: encode(Image.new("RGB", (1, 1), (255, 0, 0)), "PNG"), "ok"),
        ("one-pixel.jpg", lambda: encode(Image.new("RGB", (1, 1), (255, 0, 0)), "JPEG"), "ok"),
        ("sixteen-bit.png", _sixteen_bit_png, "ok"),
        ("cmyk.jpg", _cmyk_jpeg, "ok"),
        ("cmyk-with-profile.jpg", lambda: _cmyk_jpeg(with_profile=True), "ok"),
        ("palette-transparency.png", _palette_transparency_png, "ok"),
        ("animated-300-frames.gif", lambda: _animated_gif(300), "ok"),
        ("exif-orientation-9.jpg", lambda: encode(make_photo(64, 48, 3), "JPEG", exif=exif_bytes(9)), "ok"),
        ("exif-orientation-0.jpg", lambda: encode(make_photo(64, 48, 3), "JPEG", exif=exif_bytes(0)), "ok"),
        ("exif-garbage.jpg", lambda: encode(make_photo(64, 48, 3), "JPEG", exif=b"Exif\0\0MM\0*garbage"), "ok"),
    ]
    return [(name, build(), expected) for name, build, expected in cases]


def _noise_image(width: int, height: int, seed: int) -> Image.Image:
    return Image.frombytes("RGB", (width, height), random.Random(seed).randbytes(width * height * 3))


def srgb_profile_bytes() -> bytes:
    """The sRGB ICC profile LittleCMS builds, as bytes (for tagging test images)."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def cmyk_icc_profile() -> bytes:
    """A minimal but valid ICC v2 CMYK input profile (CMYK -> Lab, 2-point grid).

    No CMYK profile ships with Pillow or LittleCMS and tests must stay offline,
    so one is built here. Its colours deliberately differ from Pillow's naive
    CMYK formula (inks are slightly impure) so a test can tell which
    conversion ran.
    """
    inks = ((0.0, 0.9, 0.8), (0.95, 0.05, 0.6), (1.0, 0.95, 0.0))  # RGB left by pure C, M, Y
    clut = b""
    for c in (0, 1):
        for m in (0, 1):
            for y in (0, 1):
                for k in (0, 1):
                    rgb = [1.0 - k, 1.0 - k, 1.0 - k]
                    for amount, ink in zip((c, m, y), inks, strict=True):
                        if amount:
                            rgb = [v * t for v, t in zip(rgb, ink, strict=True)]
                    clut += _lab8(*_srgb_to_lab(*rgb))
    identity = b"".join(_s15(1.0 if i == j else 0.0) for i in range(3) for j in range(3))
    ramp = bytes(range(256))
    a2b0 = b"mft1" + b"\0" * 4 + bytes((4, 3, 2, 0)) + identity + ramp * 4 + clut + ramp * 3
    desc_text = b"imagebatch test CMYK\0"
    desc = b"desc" + b"\0" * 4 + struct.pack(">I", len(desc_text)) + desc_text + b"\0" * 79
    wtpt = b"XYZ " + b"\0" * 4 + _D50
    cprt = b"text" + b"\0" * 4 + b"public domain\0"
    return _icc_file(b"scnr", b"CMYK", [(b"desc", desc), (b"wtpt", wtpt), (b"cprt", cprt), (b"A2B0", a2b0)])


def _icc_file(device_class: bytes, space: bytes, tags: list[tuple[bytes, bytes]]) -> bytes:
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for sig, payload in tags:
        table += sig + struct.pack(">II", offset + len(body), len(payload))
        body += payload + b"\0" * (-len(payload) % 4)
    header = (
        struct.pack(">I", offset + len(body))
        + b"lcms"
        + bytes((2, 0x10, 0, 0))
        + device_class
        + space
        + b"Lab "
        + b"\0" * 12
        + b"acsp"
        + b"\0" * 28
        + _D50
        + b"\0" * 48
    )
    return header + struct.pack(">I", len(tags)) + table + body


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


_D50 = _s15(0.9642) + _s15(1.0) + _s15(0.8249)


def _lab8(lightness: float, a: float, b: float) -> bytes:
    """Lab in the ICC lut8 encoding (L 0-100 -> 0-255, a/b offset by 128)."""

    def clamp(v: float) -> int:
        return max(0, min(255, round(v)))

    return bytes((clamp(lightness * 2.55), clamp(a + 128), clamp(b + 128)))


def _srgb_to_lab(r: float, g: float, b: float) -> tuple[float, float, float]:
    """sRGB (0-1) to CIE Lab relative to D50, the ICC connection space."""

    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = linear(r), linear(g), linear(b)
    x = (0.4360747 * r + 0.3850649 * g + 0.1430804 * b) / 0.9642
    y = 0.2225045 * r + 0.7168786 * g + 0.0606169 * b
    z = (0.0139322 * r + 0.0971045 * g + 0.7141733 * b) / 0.8249

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 216 / 24389 else (24389 / 27 * t + 16) / 116

    return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))


__all__ = [
    "cmyk_icc_profile",
    "encode",
    "exif_bytes",
    "hostile_corpus",
    "make_photo",
    "oriented_jpeg",
    "sample_set",
    "srgb_profile_bytes",
    "store_with_orientation",
]
