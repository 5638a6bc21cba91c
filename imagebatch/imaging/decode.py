"""Identify a file, check its declared size, read its orientation and decode its pixels.

The pixel limit is local (``max_pixels``, checked right after ``Image.open``,
before any pixel is decoded); Pillow's process-wide ``MAX_IMAGE_PIXELS`` is
never relied on or changed. ``warnings.catch_warnings`` mutates global state,
so those short blocks hold :data:`_OPEN_LOCK`. JPEGs are draft-decoded
(libjpeg's 1/2-1/8 DCT scaling) and re-checked for damage libjpeg only warns
about (:func:`_check_jpeg_scan`).
"""

from __future__ import annotations

import io
import math
import threading
import warnings

from PIL import ExifTags, Image

from imagebatch import libvips
from imagebatch.imaging.colour import _grey_extrema, _matching_profile, _normalise, _to_8bit
from imagebatch.imaging.errors import ACCEPTED_FORMATS, ImageProcessingError, _decode_errors, _raise_jpeg_damage
from imagebatch.imaging.geometry import _Frame, _Plan, _upright_size

# 100 MP: above every mainstream camera and phone's default output (24-61 MP
# full frame, 48-50 MP phones in full-resolution mode) with room to spare, yet a
# decoded RGBA frame stays below ~400 MB on a Functions worker. JPEGs rarely get
# near that in memory thanks to draft decoding.
MAX_PIXELS_DEFAULT = 100_000_000

# Keep this many times the largest rendition's linear size when draft-decoding
# a JPEG; the rest of the reduction is done by Lanczos. See the module docstring.
DRAFT_MARGIN = 1.0
_MIB = 2**20

_OPEN_LOCK = threading.Lock()


def _open(data: bytes, max_pixels: int) -> Image.Image:
    """Identify the file and check its declared size before decoding pixels."""
    with _decode_errors(data), _OPEN_LOCK, warnings.catch_warnings():
        # Our limit below is authoritative; Pillow's other open-time warnings
        # are about damaged metadata we are going to drop anyway.
        warnings.simplefilter("ignore")
        im = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    width, height = im.size
    if width * height > max_pixels:
        raise ImageProcessingError(
            "too_large",
            f"The image is {width}x{height} ({width * height:,} pixels), more than the {max_pixels:,}-pixel limit.",
        )
    return im


def _orientation_and_size(im: Image.Image, data: bytes) -> tuple[int, tuple[int, int]]:
    """EXIF orientation (1 when absent or bogus) and the upright size.

    Non-JPEG formats may keep EXIF after the pixel data (PNG eXIf), so reading
    it loads them; that load is routed through the error classifier here.
    """
    if im.format not in ("JPEG", "MPO"):
        with _decode_errors(data):
            im.load()
    orientation = _read_orientation(im)
    return orientation, _upright_size(im.size, orientation)


def _read_orientation(im: Image.Image, *, header_only: bool = False) -> int:
    """Broken EXIF only costs the orientation, so its warnings are silenced too.

    ``header_only`` reads what the header already holds without decoding (the
    PNG plugin's own ``getexif`` loads the whole image to look for chunks after
    the pixels; callers guarantee there are none, see ``libvips.png_mode``).
    """
    try:
        with _OPEN_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exif = Image.Image.getexif(im) if header_only else im.getexif()
            value = exif.get(ExifTags.Base.Orientation)
    except Exception:
        return 1
    return value if type(value) is int and 1 <= value <= 8 else 1


def _decode(
    im: Image.Image, data: bytes, plans: list[_Plan], fmt: str, strip: int = 1
) -> tuple[Image.Image, _Frame, bytes | None]:
    """Load pixels (draft-reduced for JPEG) and normalise the mode once.

    Returns the working image, where the full source lies in it (see
    :func:`_draft`) and the ICC profile to write.
    """
    with _decode_errors(data):
        frame: _Frame = (0.0, 0.0, float(im.width), float(im.height))
        jpeg = im.format in ("JPEG", "MPO")
        if jpeg:
            frame = _draft(im, max(plan.scale for plan in plans)) or frame
        im.load()
        if jpeg:
            _check_jpeg_scan(data)
        if strip > 1:
            return _reduce_in_strips(im, strip, fmt)
        working, icc = _normalise(im, fmt)
        return working, frame, icc


def _reduce_in_strips(im: Image.Image, factor: int, fmt: str) -> tuple[Image.Image, _Frame, bytes | None]:
    """Normalise and box-reduce ``im`` by ``factor`` a strip of rows at a time.

    Converting a 99 MP palette frame to RGB at once takes 400 MB on top of the
    frame; a strip at a time takes a few MB and the reduced result. Every step
    of :func:`_normalise` is per pixel except the 16-bit range, which is taken
    from the whole frame first. Like a JPEG draft, the last row and column are
    partial pixels, so the frame is the exact fractional extent.
    """
    width, height = im.size
    extrema = _grey_extrema(im) if (im.mode.startswith("I") or im.mode == "F") else None

    def normalise(part: Image.Image) -> tuple[Image.Image, bytes | None]:
        if extrema is not None:
            return _to_8bit(part, extrema), _matching_profile(im.info.get("icc_profile") or None, "L")
        return _normalise(part, fmt)

    probe, icc = normalise(im.crop((0, 0, 1, 1)))
    out = Image.new(probe.mode, (-(-width // factor), -(-height // factor)))
    rows = factor * max(1, (4 * _MIB) // (width * 4 * factor))
    for top in range(0, height, rows):
        part, _ = normalise(im.crop((0, top, width, min(height, top + rows))))
        out.paste(part.reduce(factor), (0, top // factor))
    return out, (0.0, 0.0, width / factor, height / factor), icc


def _check_jpeg_scan(data: bytes) -> None:
    """Refuse a JPEG whose scan libjpeg only *warned* about (see :func:`libvips.jpeg_scan_damage`).

    Pillow gives no hook for libjpeg warnings, so when Pillow decodes a JPEG
    (the Pillow backend, CMYK, images under :data:`LIBVIPS_MIN_PIXELS`, the
    fallback after a libvips error), libvips (``fail_on="warning"``) decodes
    the scan once more; the libvips backend's own JPEG decode
    (route ``"jpeg"``) is the check itself and skips this. Without pyvips (or in a
    forked child, where libvips may not run) the check is skipped and such a
    file renders as Pillow decodes it, grey where its data is missing.
    Runs after Pillow's own decode so Pillow's classification of what it does
    detect (a file that ends early, a broken header) is kept.
    """
    vips = libvips.resolve("auto")
    if vips is None:
        return
    _raise_jpeg_damage(libvips.jpeg_scan_damage(vips, data))


def _stream_orientation(im: Image.Image, data: bytes) -> int:
    """EXIF orientation without decoding: a PNG's eXIf chunk may follow the pixels."""
    if im.format != "PNG":
        return _read_orientation(im, header_only=True)
    payload = libvips.png_exif(data)
    if payload is None:
        return 1
    try:
        with _OPEN_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exif = Image.Exif()
            exif.load(payload)
            value = exif.get(ExifTags.Base.Orientation)
    except Exception:
        return 1
    return value if type(value) is int and 1 <= value <= 8 else 1


def _draft(im: Image.Image, scale: float) -> _Frame | None:
    """Let libjpeg scale by 1/2, 1/4 or 1/8 during decoding while keeping margin."""
    target = min(1.0, scale * DRAFT_MARGIN)
    if target >= 0.5:
        return None
    width, height = im.size
    result = im.draft(None, (max(1, math.ceil(width * target)), max(1, math.ceil(height * target))))
    if result is None:
        return None
    left, top, right, bottom = result[1]
    return float(left), float(top), float(right), float(bottom)
