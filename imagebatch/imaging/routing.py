"""Which way of decoding an image fits its memory bound, estimated from the header alone.

Each way (Pillow with JPEG draft or strip-by-strip reduction, libvips streaming
PNG/TIFF rows or WebP scaled by libwebp) has an estimate; :func:`_route` picks
the cheapest that fits ``max_decode_bytes`` (IMAGE_MAX_DECODE_MB), and what
nothing can bound is ``too_large``. :func:`imagebatch.imaging.decode_estimate`
gives the same estimate to the activity's per-worker budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from PIL import Image

from imagebatch import libvips
from imagebatch.imaging.colour import _PASSTHROUGH
from imagebatch.imaging.decode import _MIB, DRAFT_MARGIN, _stream_orientation
from imagebatch.imaging.errors import _SOURCE_FORMAT_NAMES, ImageProcessingError
from imagebatch.imaging.geometry import _plans, _upright_size
from imagebatch.imaging.resample import REDUCING_GAP
from imagebatch.specs import RenderSpec

# Peak memory one render_image may take (IMAGE_MAX_DECODE_MB). Each way of
# decoding has an estimate from the header (see _route); an image none of them
# can decode within it is refused as too_large. 256 MiB holds every accepted
# format at the 100 MP default cap when libvips is installed
# (``python -m bench.memory``, docs/benchmarks.md).
MAX_DECODE_BYTES_DEFAULT = 256 * 2**20
# Non-JPEG Pillow frames above this are box-reduced strip by strip while their
# mode is normalised, instead of converting (and copying) the whole frame.
STRIP_MIN_BYTES = 32 * 2**20


@dataclass(frozen=True)
class _Route:
    """How one image is decoded, and what that is estimated to cost in memory.

    ``stream`` names a libvips streamed decode (:data:`libvips.STREAM_KINDS`),
    ``None`` for Pillow; ``strip`` is the integer box reduction Pillow applies
    strip by strip while normalising (1: the whole frame at once); ``scale`` is
    the factor libwebp decodes at.
    """

    stream: str | None
    strip: int
    scale: float
    cost: int


def _route(im: Image.Image, data: bytes, spec: RenderSpec, vips: ModuleType | None, limit: int) -> _Route:
    """Pick the way of decoding whose estimated memory fits ``limit``, from the header.

    * Plain 8-bit PNGs stream through libvips whenever it is in use (faster),
      and so do RGB/grey JPEGs that fit: libvips decodes them once at full
      scale with ``fail_on="warning"``, which is at the same time the check
      for damaged scans (:func:`_check_jpeg_scan`) and the decode the
      renditions are resampled from.
    * Otherwise the cheaper of Pillow and libvips streaming, if it fits.
      Pillow: JPEG draft-decodes at 1/2-1/8; other frames above
      :data:`STRIP_MIN_BYTES` are box-reduced strip by strip, so only the
      decoded frame is ever full size (a 99 MP GIF or palette BMP: its 1-byte
      frame); but Pillow's frame of a 99 MP RGB(A) image alone is 4 bytes a
      pixel, and libwebp allocates two more RGBA canvases while decoding.
      libvips (:func:`libvips.stream_kind`): PNG of any depth, 8-bit TIFF, WebP
      scaled while decoding; it holds a strip of rows, not the frame.
    * Nothing fits: ``too_large``, saying what it would take.
    """
    orientation = _stream_orientation(im, data)  # from the header: nothing is decoded yet
    plans = _plans(_upright_size(im.size, orientation), spec)
    largest = max(plans, key=lambda plan: plan.scale)
    scale = largest.scale
    stream = libvips.stream_kind(im, data) if vips is not None else None
    plain_png = stream == "png" and libvips.png_mode(im, data) is not None
    if stream is not None:
        pre_scale = 1.0
        if stream == "webp" or (stream == "jpeg" and not largest.full_frame):
            pre_scale = min(1.0, scale * REDUCING_GAP)
        streamed = _Route(stream, 1, pre_scale, libvips.stream_bytes(im, stream, scale) + _coefficient_bytes(im))
        if plain_png or (stream == "jpeg" and streamed.cost <= limit):
            return streamed
    pillow = _pillow_route(im, scale, spec.format, adopt=vips is not None)
    cheapest = pillow if stream is None or pillow.cost <= streamed.cost else streamed
    if cheapest.cost <= limit:
        return cheapest
    cost = cheapest.cost
    name = _SOURCE_FORMAT_NAMES.get(im.format or "", im.format or "image")
    raise ImageProcessingError(
        "too_large",
        f"Decoding this {im.width}x{im.height} {name} would take about {cost / _MIB:,.0f} MB, "
        f"more than the {limit / _MIB:,.0f} MB per-image limit (IMAGE_MAX_DECODE_MB).",
    )


# Bytes per pixel of Pillow's storage: 2- to 4-band modes use 4 bytes a pixel.
def _pillow_bpp(mode: str) -> int:
    if mode in ("1", "L", "P"):
        return 1
    if mode.startswith("I;16"):
        return 2
    return 4


def _draft_divisor(scale: float) -> int:
    """The 1/d scale :func:`_draft` asks libjpeg for."""
    target = min(1.0, scale * DRAFT_MARGIN)
    if target >= 0.5:
        return 1
    return 8 if target <= 0.125 else 4 if target <= 0.25 else 2


def _strip_factor(scale: float) -> int:
    """Box reduction that still leaves :data:`REDUCING_GAP` times the largest rendition."""
    return max(1, int(1.0 / (scale * REDUCING_GAP))) if scale > 0 else 1


def _pillow_route(im: Image.Image, scale: float, fmt: str, *, adopt: bool) -> _Route:
    """Pillow's decode and its estimated peak (``adopt``: libvips then copies the working image)."""
    width, height = im.size
    base = 16 * _MIB  # codec state, row buffers, the encoded outputs
    if im.format in ("JPEG", "MPO"):
        d = _draft_divisor(scale)
        pixels = -(-width // d) * -(-height // d)
        bpp = _pillow_bpp(im.mode)
        cost = pixels * bpp * 2 + (pixels * 4 if im.mode == "CMYK" else 0) + (pixels * 3 if adopt else 0)
        return _Route(None, 1, 1.0, base + cost + _coefficient_bytes(im))
    pixels = width * height
    frame = pixels * _pillow_bpp(im.mode)
    if im.format == "WEBP":
        frame += pixels * 8  # libwebp's animation decoder: two RGBA canvases
    factor = _strip_factor(scale)
    if factor >= 2 and pixels * _pillow_bpp(im.mode) > STRIP_MIN_BYTES:
        out = -(-width // factor) * -(-height // factor) * 4
        return _Route(None, factor, 1.0, base + frame + out * (3 if adopt else 2))
    converted = pixels * 4 if im.mode not in _PASSTHROUGH else 0
    if fmt == "jpeg" and ("A" in im.mode or im.mode == "P"):
        converted += pixels * 8  # flattening: a white background and the alpha channel
    return _Route(None, 1, 1.0, base + frame + converted + (pixels * 4 if adopt else 0) + frame // 2)


def _coefficient_bytes(im: Image.Image) -> int:
    """What libjpeg holds for a progressive JPEG whatever the scale: every DCT
    coefficient of the image (2 bytes a sample: 3 B/px at 4:2:0, 6 at 4:4:4),
    because each scan refines all of them. Baseline JPEGs need none of it.
    Measured with ``bench.memory`` (docs/benchmarks.md, "Memory per image")."""
    if im.format not in ("JPEG", "MPO") or not im.info.get("progressive"):
        return 0
    layers = getattr(im, "layer", None) or [("", 1, 1, 0)] * len(im.getbands())
    h_max = max(layer[1] for layer in layers) or 1
    v_max = max(layer[2] for layer in layers) or 1
    samples = sum(layer[1] * layer[2] for layer in layers) / (h_max * v_max)
    return int(im.width * im.height * samples * 2)
