"""The Azure-free image pipeline: one source file in, encoded renditions out.

Decisions worth knowing before changing anything here:

* **Only permanent input problems become errors.** ``render_image`` raises
  :class:`ImageProcessingError` with a ``kind`` (see :data:`ERROR_KINDS`) for
  anything wrong with the *bytes*; retrying cannot fix those, so the activity
  records them instead of retrying. Invalid *specs* are programming errors and
  raise ``ValueError``. Pillow exceptions never escape: they are classified by
  :func:`_classify` (see its table). Running out of memory is *not* a property
  of the bytes: ``MemoryError`` and every decoder's way of saying an allocation
  failed (see :func:`_is_out_of_memory`) are raised as ``MemoryError`` so the
  activity's retry policy tries again.

* **Damaged data is a failure, not a picture.** libjpeg only *warns* about a
  scan that stops early or holds a bad Huffman code and fills the rest with
  grey; Pillow discards those warnings. So the libvips backend decodes RGB and
  grey JPEGs itself, once, at full scale with ``fail_on="warning"`` and
  resamples from that decode (route ``"jpeg"``): the decode is the check.
  Wherever Pillow decodes a JPEG instead (Pillow backend, CMYK, small images),
  libvips decodes it once more only to check (:func:`_check_jpeg_scan`).

* **Pixel limit is local.** ``Image.MAX_IMAGE_PIXELS`` is a process-wide global
  that other code may change, so it is never relied on or modified. The size
  declared by the header is checked against ``max_pixels`` right after
  ``Image.open`` and before any pixel is decoded. Pillow's own
  ``DecompressionBombWarning`` is silenced while opening (our limit is the
  authoritative one) and ``DecompressionBombError`` -- Pillow's hard stop at
  twice its global -- maps to ``too_large`` as well (so a host that lowers the
  global below ``max_pixels / 2`` still gets the lower cap). Because
  ``warnings.catch_warnings`` mutates global state, that short block is
  serialised with a lock so concurrent activity threads cannot corrupt each
  other's warning filters. ``ImageFile.LOAD_TRUNCATED_IMAGES`` is never set: it
  would turn broken uploads into silently grey renditions.

* **Memory is bounded per image** (``max_decode_bytes``, IMAGE_MAX_DECODE_MB):
  each way of decoding has an estimate from the header and the cheapest that
  fits is used (:func:`_route`): Pillow with JPEG draft or strip-by-strip
  reduction (:func:`_reduce_in_strips`), or libvips streaming PNG/TIFF rows and
  WebP scaled by libwebp (:func:`libvips.open_stream`). What nothing can bound
  is ``too_large``. :func:`decode_estimate` gives the same estimate to the
  activity's per-worker budget (:mod:`imagebatch.memory_budget`).

* **Only photo formats are decoded** (:data:`ACCEPTED_FORMATS`). Pillow can open
  PostScript (through Ghostscript), fonts, icons and more; none of that belongs
  in a photo batch and each is extra attack surface.

* **Colour: keep the source ICC profile** on every rendition when it matches the
  output's colour space (RGB profile on RGB, grey profile on greyscale). This is
  lossless and costs nothing, and every current browser honours embedded
  profiles. CMYK sources are the exception: they are converted to RGB through
  their embedded profile with LittleCMS (or Pillow's naive formula when there is
  none or it is unusable) and tagged sRGB when converted by profile; CIELAB
  sources (scanner TIFFs) likewise become tagged sRGB. Profiles
  that do not match the output mode, or cannot be parsed, are dropped rather
  than written, because a wrong profile is worse than none.

* **Privacy: only the ICC profile is written.** EXIF (GPS, camera serials),
  XMP, comments and PNG text never reach an output: Pillow copies ``info``
  along every resize, so each rendition's ``info`` is cleared before encoding
  and the encoder gets nothing but pixels, quality settings and the profile.

* **Orientation is applied at the end.** The EXIF orientation is read first,
  the geometry is planned in upright coordinates and mapped to stored ones, and
  each small rendition is transposed after resizing: transposing a 320 px
  thumbnail is far cheaper than the 12 MP source (all crops are centred, so
  mapping them through any of the eight orientations is just an axis swap).
  Unknown orientation values (0, 9, garbage EXIF) are treated as 1.

* **Speed recipe** (on a 4000x3000 photo-like JPEG and the default renditions:
  ~130-150 ms against ~470-560 ms for open/convert/Lanczos-per-rendition, i.e.
  3.6-3.8x, with SSIM within 0.0006 of it): JPEG DCT-domain downscaling via ``draft`` to the
  smallest 1/2, 1/4, 1/8 scale that still keeps :data:`DRAFT_MARGIN` times the
  largest rendition's pixels; Lanczos with ``reducing_gap`` (integer box
  ``reduce`` first, then Lanczos over a much smaller image); renditions
  cascade from the previous full-frame rendition instead of the source; mode
  conversions happen once, before resizing; encoders are tuned for speed at
  equal quality (no JPEG ``optimize``, 4:2:0 below quality 90, low WebP
  ``method``, moderate PNG ``compress_level``).

* **Two backends, one behaviour.** With pyvips installed (``backend="auto"``,
  the default) libvips does the resampling above, decodes plain 8-bit PNGs
  while it shrinks them and decodes RGB/grey JPEGs at full scale (no draft:
  only a full-scale decode lets libjpeg report damage, and libvips's shrink of
  it costs what its own shrink-on-load does); Pillow still does everything else, and any libvips
  error redoes the image on Pillow alone, so outputs, privacy and error kinds
  are the same (``tests/test_imaging.py`` runs on both). Measured on the same
  12 MP inputs: 1.4-1.5x less CPU than the Pillow recipe on JPEG sources, 1.7x on PNG (see
  :mod:`imagebatch.libvips` and ``docs/benchmarks.md``).

* **Animated images** (GIF, APNG, WebP): the first frame only.
"""

from __future__ import annotations

import io
import math
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any, BinaryIO, Protocol

from PIL import ExifTags, Image, ImageCms, UnidentifiedImageError

from imagebatch import libvips
from imagebatch.specs import CONTENT_TYPES, EXTENSIONS, FITS, FORMATS, RenderSpec, Rendition

__all__ = [
    "ACCEPTED_FORMATS",
    "ERROR_KINDS",
    "MAX_DECODE_BYTES_DEFAULT",
    "MAX_PIXELS_DEFAULT",
    "EncodedRendition",
    "ImageProcessingError",
    "RenderResult",
    "decode_estimate",
    "plan_size",
    "render_image",
]

ERROR_KINDS: tuple[str, ...] = ("empty", "unsupported", "corrupt", "truncated", "too_large")

# 100 MP: above every mainstream camera and phone's default output (24-61 MP
# full frame, 48-50 MP phones in full-resolution mode) with room to spare, yet a
# decoded RGBA frame stays below ~400 MB on a Functions worker. JPEGs rarely get
# near that in memory thanks to draft decoding.
MAX_PIXELS_DEFAULT = 100_000_000

# Pillow plugin names. Multi-picture JPEGs (MPO, from many cameras) are opened
# by the JPEG plugin, so they need no entry of their own.
ACCEPTED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP")

# Keep this many times the largest rendition's linear size when draft-decoding
# a JPEG; the rest of the reduction is done by Lanczos. See the module docstring.
DRAFT_MARGIN = 1.0
# Pillow's own thumbnail() default: box-reduce by an integer factor while the
# remaining Lanczos step is at least this factor. Quality loss is invisible.
REDUCING_GAP = 2.0
# Sources with no draft shortcut (PNG, WebP, TIFF, GIF, small JPEGs) reach the
# first resize at full size; a tighter gap there lets Pillow's integer box
# reduction do more of the work: PNG sources 1.23x faster, SSIM -0.0006 on the
# largest rendition (measured by bench/imaging.py --profile, 2026-11-26).
UNDRAFTED_GAP = 1.0
RESAMPLE = Image.Resampling.LANCZOS
# libvips when pyvips is installed (see imagebatch/libvips.py), else Pillow.
DEFAULT_BACKEND = "auto"
# Below this many source pixels "auto" keeps to Pillow: libvips's fixed cost per
# call (~7 ms for three renditions) outweighs its faster resampler (crossover
# measured between 0.3 and 0.75 MP, 2026-11-26).
LIBVIPS_MIN_PIXELS = 500_000

# Peak memory one render_image may take (IMAGE_MAX_DECODE_MB). Each way of
# decoding has an estimate from the header (see _route); an image none of them
# can decode within it is refused as too_large. 256 MiB holds every accepted
# format at the 100 MP default cap when libvips is installed
# (``python -m bench.memory``, docs/benchmarks.md).
MAX_DECODE_BYTES_DEFAULT = 256 * 2**20
# Non-JPEG Pillow frames above this are box-reduced strip by strip while their
# mode is normalised, instead of converting (and copying) the whole frame.
STRIP_MIN_BYTES = 32 * 2**20
_MIB = 2**20

JPEG_SUBSAMPLING_LIMIT = 90  # quality at and above which chroma stays 4:4:4
WEBP_METHOD = 2
PNG_COMPRESS_LEVEL = 4

# Largest side each encoder accepts; bigger renditions are scaled down to fit.
_MAX_SIDE: dict[str, int] = {"jpeg": 65_500, "webp": 16_383, "png": 2**31 - 1}

_SOURCE_FORMAT_NAMES = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG", "GIF": "GIF", "WEBP": "WebP", "TIFF": "TIFF"}
_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "JPEG"),
    (b"\x89PNG\r\n\x1a\n", 0, "PNG"),
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"WEBP", 8, "WebP"),
    (b"II*\x00", 0, "TIFF"),
    (b"MM\x00*", 0, "TIFF"),
)

# EXIF orientation -> transpose that makes stored pixels upright (as in
# ImageOps.exif_transpose). Orientations 5-8 swap width and height.
_UPRIGHT: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

_OPEN_LOCK = threading.Lock()
_SRGB_PROFILE = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
_SRGB_BYTES = _SRGB_PROFILE.tobytes()
_LAB_PROFILE = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB"))


# ------------------------------------------------------------------ public types


class ImageProcessingError(Exception):
    """A permanent problem with the input bytes; retrying will not help.

    ``kind`` is machine-readable (one of :data:`ERROR_KINDS`), ``message`` a
    single human sentence suitable for a batch report.
    """

    def __init__(self, kind: str, message: str) -> None:
        if kind not in ERROR_KINDS:
            raise ValueError(f"unknown ImageProcessingError kind {kind!r}")
        super().__init__(message)
        self.kind = kind
        self.message = message

    def __reduce__(self) -> tuple[type[ImageProcessingError], tuple[str, str]]:
        # Exception pickles ``args`` (just the message) by default, which would
        # not round-trip through a two-argument __init__.
        return (type(self), (self.kind, self.message))


@dataclass(frozen=True)
class EncodedRendition:
    """One encoded output; ``width``/``height`` are the real encoded size, which
    is smaller than requested when the source was (nothing is upscaled)."""

    name: str
    width: int
    height: int
    data: bytes
    content_type: str
    extension: str


@dataclass(frozen=True)
class RenderResult:
    """Renditions in spec order; source size is the *upright* (displayed) size."""

    renditions: tuple[EncodedRendition, ...]
    source_width: int
    source_height: int
    source_format: str


# --------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class _Plan:
    """One rendition's geometry in upright coordinates.

    ``crop`` is the centred region of the source that ends up in the output, so
    ``scale`` (output / crop) is the linear reduction this rendition needs, and
    a ``full_frame`` result can serve as the source of smaller renditions.
    """

    index: int
    rendition: Rendition
    source: tuple[int, int]
    out: tuple[int, int]
    crop: tuple[float, float]

    @property
    def full_frame(self) -> bool:
        return self.crop[0] >= self.source[0] and self.crop[1] >= self.source[1]

    @property
    def scale(self) -> float:
        return max(self.out[0] / self.crop[0], self.out[1] / self.crop[1])


def plan_size(
    source: tuple[int, int], rendition: Rendition, fmt: str = "png"
) -> tuple[tuple[int, int], tuple[float, float]]:
    """Return ``(output size, centred crop size)`` for one rendition.

    Never upscales. Sizes round to the nearest pixel, minimum 1. ``cover`` fills
    the box exactly when the source is large enough in both directions;
    otherwise nothing is scaled and each side is the smaller of box and source
    (so a source smaller than the box keeps its own size). Sides are also kept
    within what the output format can encode.
    """
    width, height = source
    limit = _MAX_SIDE[fmt]
    box_w = min(rendition.width, limit)
    box_h = None if rendition.height is None else min(rendition.height, limit)
    if rendition.fit == "cover" and box_h is not None:
        return _cover(width, height, box_w, box_h)
    scale = min(1.0, box_w / width, limit / height)
    if box_h is not None:
        scale = min(scale, box_h / height)
    out = (_side(width * scale, box_w), _side(height * scale, box_h or limit))
    return out, (float(width), float(height))


def _cover(width: int, height: int, box_w: int, box_h: int) -> tuple[tuple[int, int], tuple[float, float]]:
    scale = max(box_w / width, box_h / height)
    if scale > 1.0:
        out = (min(box_w, width), min(box_h, height))
        return out, (float(out[0]), float(out[1]))
    return (box_w, box_h), (min(width, box_w / scale), min(height, box_h / scale))


def _side(value: float, limit: int) -> int:
    return max(1, min(limit, round(value)))


def _plans(source: tuple[int, int], spec: RenderSpec) -> list[_Plan]:
    plans = []
    for index, rendition in enumerate(spec.renditions):
        out, crop = plan_size(source, rendition, spec.format)
        plans.append(_Plan(index, rendition, source, out, crop))
    return plans


# ------------------------------------------------------------------ entry point


def render_image(
    source: bytes | BinaryIO,
    spec: RenderSpec,
    *,
    max_pixels: int = MAX_PIXELS_DEFAULT,
    backend: str | None = None,
    max_decode_bytes: int = MAX_DECODE_BYTES_DEFAULT,
) -> RenderResult:
    """Decode ``source`` once and encode every rendition of ``spec``.

    ``backend`` is ``"auto"`` (libvips resampling when pyvips is installed
    and the image has at least :data:`LIBVIPS_MIN_PIXELS`, see
    :mod:`imagebatch.libvips`), ``"pillow"`` or ``"libvips"`` (required, any
    size); ``None`` means :data:`DEFAULT_BACKEND`.
    Raises :class:`ImageProcessingError` for any problem with the input,
    ``ValueError`` for an invalid ``spec`` or ``backend`` and
    :class:`~imagebatch.libvips.LibvipsUnavailableError` when libvips is
    required but missing.

    ``max_decode_bytes`` bounds the memory of the decode: the way of decoding
    is chosen from the header (:func:`_route`) and an image that no available
    way can decode within it is refused as ``too_large``.
    """
    _validate_spec(spec)
    backend = backend or DEFAULT_BACKEND
    # "auto" loads libvips only for an image big enough to use it (small-image batches never import it).
    vips = None if backend == "auto" else libvips.resolve(backend)
    data = _read_all(source)
    if not data:
        raise ImageProcessingError("empty", "The file is empty (0 bytes).")
    im = _open(data, max_pixels)
    if backend == "auto" and im.width * im.height >= LIBVIPS_MIN_PIXELS:
        vips = libvips.resolve(backend)
    route = _route(im, data, spec, vips, max_decode_bytes)
    if vips is not None:
        try:
            return _render(im, data, spec, _LibvipsResampler(vips), route)
        except vips.Error as error:
            libvips.raise_if_out_of_memory(error)  # transient: Pillow would need more memory, not less
            if route.stream == "jpeg":
                _raise_jpeg_damage(libvips.jpeg_damage(error))  # Pillow would render it, grey where data is missing
            try:
                route = _route(im, data, spec, None, max_decode_bytes)
            except ImageProcessingError:  # Pillow cannot take over within the bound: libvips's verdict stands
                raise _classify(OSError(libvips.error_text(error)), data) from error
            im = _open(data, max_pixels)  # redo it with Pillow alone, which classifies what is wrong
    return _render(im, data, spec, _PILLOW, route)


def decode_estimate(
    source: bytes,
    spec: RenderSpec,
    *,
    max_pixels: int = MAX_PIXELS_DEFAULT,
    backend: str | None = None,
    max_decode_bytes: int = MAX_DECODE_BYTES_DEFAULT,
) -> int:
    """Estimated peak memory (bytes) :func:`render_image` will take for ``source``,
    from its header alone (nothing is decoded); 0 for a file it will refuse
    before decoding (not an image, too many pixels, over ``max_decode_bytes``)."""
    backend = backend or DEFAULT_BACKEND
    if not source:
        return 0
    try:
        im = _open(bytes(source), max_pixels)
        vips = None
        if backend != "pillow" and (backend == "libvips" or im.width * im.height >= LIBVIPS_MIN_PIXELS):
            vips = libvips.resolve("auto")
        return _route(im, bytes(source), spec, vips, max_decode_bytes).cost
    except ImageProcessingError:
        return 0


# --------------------------------------------------------------------- routing


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
    Measured: a 99 MP progressive 4:2:0 JPEG grew the process by 349 MiB on
    both backends (``bench.memory``'s child, 2026-12-01)."""
    if im.format not in ("JPEG", "MPO") or not im.info.get("progressive"):
        return 0
    layers = getattr(im, "layer", None) or [("", 1, 1, 0)] * len(im.getbands())
    h_max = max(layer[1] for layer in layers) or 1
    v_max = max(layer[2] for layer in layers) or 1
    samples = sum(layer[1] * layer[2] for layer in layers) / (h_max * v_max)
    return int(im.width * im.height * samples * 2)


def _normalised_mode(im: Image.Image) -> str:
    """The mode :func:`_normalise` gives ``im`` before any flattening for JPEG."""
    mode = im.mode
    if mode in _PASSTHROUGH:
        return mode
    if mode in _SIMPLE:
        return _SIMPLE[mode]
    if mode == "P":
        return "RGBA" if im.has_transparency_data else "RGB"
    if mode.startswith("I") or mode == "F":
        return "L"
    return "RGB"


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


def _render(im: Image.Image, data: bytes, spec: RenderSpec, resampler: _Resampler, route: _Route) -> RenderResult:
    source_format = _SOURCE_FORMAT_NAMES.get(im.format or "", im.format or "unknown")
    if route.stream is not None:  # libvips decodes while it shrinks; Pillow never loads the pixels
        orientation = _stream_orientation(im, data)
        upright = _upright_size(im.size, orientation)
        plans = _plans(upright, spec)
        working, icc = resampler.open_stream(data, route, im, spec.format)
        drafted = route.scale < 1.0
        size = (working.width, working.height) if drafted else im.size
        frame: _Frame = (0.0, 0.0, float(size[0]), float(size[1]))
    else:
        orientation, upright = _orientation_and_size(im, data)  # geometry is planned upright
        plans = _plans(upright, spec)
        source_size = im.size
        decoded, frame, icc = _decode(im, data, plans, spec.format, route.strip)
        drafted = decoded.size != source_size
        working = resampler.adopt(decoded)
    images = _resize_all(
        working, frame, plans, orientation, resampler, first_gap=REDUCING_GAP if drafted else UNDRAFTED_GAP
    )
    renditions = tuple(_encode(plan, images[plan.index], icc, spec) for plan in plans)
    return RenderResult(renditions, upright[0], upright[1], source_format)


def _validate_spec(spec: RenderSpec) -> None:
    if spec.format not in FORMATS:
        raise ValueError(f"unsupported output format {spec.format!r}")
    if not 1 <= spec.quality <= 100:
        raise ValueError(f"quality must be 1-100, got {spec.quality}")
    if not spec.renditions:
        raise ValueError("a spec needs at least one rendition")
    for r in spec.renditions:
        if r.width < 1 or (r.height is not None and r.height < 1) or r.fit not in FITS:
            raise ValueError(f"invalid rendition {r!r}")


def _read_all(source: bytes | BinaryIO) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source)
    return source.read()


# --------------------------------------------------------------------- decoding


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


def _upright_size(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    return (size[1], size[0]) if orientation >= 5 else size


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
    extrema = im.getextrema() if (im.mode.startswith("I") or im.mode == "F") else None

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


def _raise_jpeg_damage(damage: tuple[str, str] | None) -> None:
    if damage is None:
        return
    kind, detail = damage
    if kind == "truncated":
        raise ImageProcessingError(kind, "The image data is truncated: the file ends before the image does.")
    raise ImageProcessingError(
        kind, f"The JPEG's compressed data is damaged, so part of the picture is missing ({_short(detail)})."
    )


# A working image's box (left, top, right, bottom) covering the whole source:
# after a 1/s draft the last row and column are partial pixels, so the box is
# the exact (fractional) extent, as ``Image.draft`` reports it.
_Frame = tuple[float, float, float, float]


def _draft(im: Image.Image, scale: float) -> _Frame | None:
    """Let libjpeg scale by 1/2, 1/4 or 1/8 during decoding while keeping margin."""
    target = min(1.0, scale * DRAFT_MARGIN)
    if target >= 0.5:
        return None
    width, height = im.size
    result = im.draft(None, (max(1, math.ceil(width * target)), max(1, math.ceil(height * target))))
    return None if result is None else tuple(float(v) for v in result[1])  # type: ignore[return-value]


# ------------------------------------------------------------------------ modes

_PASSTHROUGH = {"L", "RGB", "LA", "RGBA"}
_SIMPLE: dict[str, str] = {
    "1": "L",
    "La": "LA",
    "RGBa": "RGBA",
    "RGBX": "RGB",
    "YCbCr": "RGB",
    "HSV": "RGB",
    "PA": "RGBA",
}


def _normalise(im: Image.Image, fmt: str) -> tuple[Image.Image, bytes | None]:
    """Convert to L, LA, RGB or RGBA (no alpha for JPEG) and pick the ICC to write."""
    icc = im.info.get("icc_profile") or None
    mode = im.mode
    if mode == "CMYK":
        return _from_cmyk(im, icc)
    if mode == "LAB":  # device-independent already: one exact conversion to sRGB
        return ImageCms.profileToProfile(im, _LAB_PROFILE, _SRGB_PROFILE, outputMode="RGB"), _SRGB_BYTES
    if mode in _PASSTHROUGH:
        out = im
    elif mode in _SIMPLE:
        out = im.convert(_SIMPLE[mode])
    elif mode == "P":
        out = im.convert("RGBA" if im.has_transparency_data else "RGB")
    elif mode.startswith("I") or mode == "F":
        out = _to_8bit(im)
    else:
        raise ImageProcessingError("unsupported", f"Images in colour mode {mode} are not supported.")
    if fmt == "jpeg" and out.mode in ("LA", "RGBA"):
        out = _flatten_on_white(out)
    return out, _matching_profile(icc, out.mode)


def _from_cmyk(im: Image.Image, icc: bytes | None) -> tuple[Image.Image, bytes | None]:
    """CMYK through its own profile to sRGB when possible; naive formula otherwise."""
    if icc is not None and _profile_space(icc) == "CMYK":
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(im, source, _SRGB_PROFILE, outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError):
            converted = None
        if converted is not None:
            return converted, _SRGB_BYTES
    return im.convert("RGB"), None


def _to_8bit(im: Image.Image, extrema: tuple[float, float] | None = None) -> Image.Image:
    """Scale 16/32-bit and float greyscale into 0-255 instead of clipping.

    Pillow's direct ``I;16 -> L`` conversion clips everything above 255 to
    white. Integer data is assumed to use the 16-bit range when any value
    exceeds 255; floats are assumed 0.0-1.0 unless they fall outside it, in
    which case the actual range is stretched.
    """
    as_int = im if im.mode in ("I", "F") else im.convert("I")
    low, high = extrema if extrema is not None else as_int.getextrema()
    if as_int.mode == "F":
        if low >= 0.0 and high <= 1.0:
            low, high = 0.0, 1.0
    elif low >= 0 and high <= 255:
        return as_int.convert("L")
    elif low >= 0 and high <= 65535:
        low, high = 0, 65535
    span = float(high - low) or 1.0
    return as_int.point(lambda v: (v - low) * (255.0 / span)).convert("L")


def _flatten_on_white(im: Image.Image) -> Image.Image:
    base_mode = im.mode[:-1]
    background = Image.new(base_mode, im.size, "white")
    background.paste(im.convert(base_mode), mask=im.getchannel("A"))
    return background


def _profile_space(icc: bytes) -> str | None:
    try:
        return ImageCms.ImageCmsProfile(io.BytesIO(icc)).profile.xcolor_space.strip()
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None


def _matching_profile(icc: bytes | None, mode: str) -> bytes | None:
    if icc is None:
        return None
    wanted = "GRAY" if mode in ("L", "LA") else "RGB"
    return icc if _profile_space(icc) == wanted else None


# ---------------------------------------------------------------------- resizing


def _resize_all(
    working: Any,
    frame: _Frame,
    plans: list[_Plan],
    orientation: int,
    resampler: _Resampler,
    *,
    first_gap: float = REDUCING_GAP,
) -> dict[int, Image.Image]:
    """Resize largest first, cascading each rendition from the last full frame.

    Everything happens in stored (not upright) coordinates; each output is
    transposed upright at the end, when it is smallest. ``first_gap`` is the
    ``reducing_gap`` of the first (largest) step only.
    """
    swap = orientation >= 5
    results: dict[int, Image.Image] = {}
    gap = first_gap
    for plan in sorted(plans, key=lambda p: p.scale, reverse=True):
        out = _swap(plan.out) if swap else plan.out
        # Crops are centred, so as a fraction of the source they survive any
        # flip; only the axes need swapping.
        fraction = (plan.crop[0] / plan.source[0], plan.crop[1] / plan.source[1])
        image = resampler.resize(working, frame, _swap(fraction) if swap else fraction, out, gap)
        gap = REDUCING_GAP
        if plan.full_frame:
            working, frame = image, (0.0, 0.0, float(image.width), float(image.height))
        result = resampler.to_pillow(image)
        results[plan.index] = result.transpose(_UPRIGHT[orientation]) if orientation in _UPRIGHT else result
    return results


def _swap(pair: tuple[float, float]) -> tuple[float, float]:
    return pair[1], pair[0]


def _centred_box(frame: _Frame, fraction: tuple[float, float]) -> tuple[float, float, float, float]:
    """The box of the working image holding the centred ``fraction`` of the source."""
    left, top, right, bottom = frame
    crop_w, crop_h = (right - left) * fraction[0], (bottom - top) * fraction[1]
    x, y = left + (right - left - crop_w) / 2, top + (bottom - top - crop_h) / 2
    return x, y, x + crop_w, y + crop_h


def _resize_centred(
    im: Image.Image, frame: _Frame, fraction: tuple[float, float], out: tuple[int, int], gap: float = REDUCING_GAP
) -> Image.Image:
    """Resize the centred ``fraction`` of the source, which fills ``frame`` of ``im``, to ``out``."""
    box = _centred_box(frame, fraction)
    crop_w, crop_h = box[2] - box[0], box[3] - box[1]
    out_w, out_h = int(out[0]), int(out[1])
    if abs(crop_w - out_w) < 1e-6 and abs(crop_h - out_h) < 1e-6 and frame == (0, 0, im.width, im.height):
        if (out_w, out_h) == im.size:
            return im
        x, y = (im.width - out_w) // 2, (im.height - out_h) // 2
        return im.crop((x, y, x + out_w, y + out_h))
    return im.resize((out_w, out_h), RESAMPLE, box=box, reducing_gap=gap)


class _Resampler(Protocol):
    """Who decodes plain PNGs and who resizes; everything else is Pillow's."""

    def open_stream(self, data: bytes, route: _Route, im: Image.Image, fmt: str) -> tuple[Any, bytes | None]: ...

    def adopt(self, im: Image.Image) -> Any: ...

    def resize(
        self, working: Any, frame: _Frame, fraction: tuple[float, float], out: tuple[int, int], gap: float
    ) -> Any: ...

    def to_pillow(self, image: Any) -> Image.Image: ...


class _PillowResampler:
    """Pillow alone: draft/reduce/Lanczos as described in the module docstring."""

    def open_stream(self, data: bytes, route: _Route, im: Image.Image, fmt: str) -> tuple[Any, bytes | None]:
        raise NotImplementedError("streamed decoding is libvips's; Pillow routes never stream")

    def adopt(self, im: Image.Image) -> Image.Image:
        return im

    def resize(
        self, working: Image.Image, frame: _Frame, fraction: tuple[float, float], out: tuple[int, int], gap: float
    ) -> Image.Image:
        return _resize_centred(working, frame, fraction, out, gap)

    def to_pillow(self, image: Image.Image) -> Image.Image:
        return image


class _LibvipsResampler:
    """libvips resamples full frames (it picks its own box-shrink/Lanczos split,
    so ``gap`` is unused) and streams plain PNGs; see :mod:`imagebatch.libvips`.

    A centred ``cover`` crop whose box is not on whole pixels is left to
    Pillow, from the (already small) cascade image: libvips crops on whole
    pixels, and the half-pixel shift costs visible sharpness on a small square
    (SSIM 0.998 -> 0.980 measured on a 150 px PNG square).
    """

    def __init__(self, vips: ModuleType) -> None:
        self.vips = vips

    def open_stream(self, data: bytes, route: _Route, im: Image.Image, fmt: str) -> tuple[Any, bytes | None]:
        mode = _normalised_mode(im)
        image = libvips.open_stream(self.vips, data, route.stream or "", mode, route.scale)
        if fmt == "jpeg" and mode in ("LA", "RGBA"):
            image = libvips.flatten_on_white(image)
        return image, _matching_profile(im.info.get("icc_profile") or None, libvips.mode_of(image))

    def adopt(self, im: Image.Image) -> Any:
        return libvips.from_pillow(self.vips, im)

    def resize(
        self, working: Any, frame: _Frame, fraction: tuple[float, float], out: tuple[int, int], gap: float
    ) -> Any:
        box = _centred_box(frame, fraction)
        if fraction != (1.0, 1.0) and any(abs(v - round(v)) > 1e-6 for v in box):
            return _resize_centred(libvips.to_pillow(working), frame, fraction, out, gap)
        return libvips.resize(working, box, (int(out[0]), int(out[1])))

    def to_pillow(self, image: Any) -> Image.Image:
        return image if isinstance(image, Image.Image) else libvips.to_pillow(image)


_PILLOW = _PillowResampler()


# ---------------------------------------------------------------------- encoding


def _encode(plan: _Plan, im: Image.Image, icc: bytes | None, spec: RenderSpec) -> EncodedRendition:
    buf = io.BytesIO()
    im.info = {}  # Pillow carries EXIF/XMP/text along resizes; write none of it.
    params = _encoder_params(spec)
    if icc is not None:
        params["icc_profile"] = icc
    im.save(buf, format=spec.format.upper(), **params)
    return EncodedRendition(
        name=plan.rendition.name,
        width=im.width,
        height=im.height,
        data=buf.getvalue(),
        content_type=CONTENT_TYPES[spec.format],
        extension=EXTENSIONS[spec.format],
    )


def _encoder_params(spec: RenderSpec) -> dict[str, object]:
    """Settings measured for speed at equal quality on photo-like content.

    JPEG: ``optimize`` and ``progressive`` save 2-4 % of bytes for 2-5x the
    encode time. WebP ``method=2`` is ~2.5x faster than the default 4 for ~4 %
    more bytes at the same SSIM. PNG level 4 is ~3x faster than the default 6
    and no larger on photos with zlib-ng.
    """
    if spec.format == "jpeg":
        subsampling = "4:2:0" if spec.quality < JPEG_SUBSAMPLING_LIMIT else "4:4:4"
        return {"quality": spec.quality, "optimize": False, "progressive": False, "subsampling": subsampling}
    if spec.format == "webp":
        return {"quality": spec.quality, "method": WEBP_METHOD}
    return {"compress_level": PNG_COMPRESS_LEVEL, "optimize": False}


# ---------------------------------------------------------------- error mapping


@contextmanager
def _decode_errors(data: bytes) -> Iterator[None]:
    """Turn anything Pillow raises while reading ``data`` into a classified error.

    Only Pillow calls run inside this block, so a catch-all cannot hide bugs in
    the geometry or encoding code.
    """
    try:
        yield
    except (ImageProcessingError, MemoryError):
        raise
    except Exception as exc:
        if _is_out_of_memory(exc, data):
            raise MemoryError(f"Not enough memory to decode the image ({_detail(exc)}).") from exc
        raise _classify(exc, data) from exc


# How decoders word a failed allocation: Pillow's codec status -9 ("out of
# memory error when reading image file"), libtiff/zlib/libvips texts.
_OUT_OF_MEMORY_TEXTS = ("out of memory", "cannot allocate", "unable to allocate", "memory allocation", "vips_malloc")


def _is_out_of_memory(exc: Exception, data: bytes) -> bool:
    """True when ``exc`` is the machine running short of memory, not the file being bad.

    Memory pressure is transient: another attempt (the activity's retry policy,
    a less busy worker) can succeed, so it must never be recorded as a
    permanent ``corrupt``. libwebp's ``WebPAnimDecoderNew`` reports both a
    container it cannot parse and a failed canvas allocation (two full RGBA
    frames: 786 MB for 16383x6000) as "could not create decoder object"; when the
    container checks out (:func:`_webp_container_ok`) it was the allocation.
    """
    text = str(exc).lower()
    if any(marker in text for marker in _OUT_OF_MEMORY_TEXTS):
        return True
    return "could not create decoder object" in text and _webp_container_ok(data)


def _webp_container_ok(data: bytes) -> bool:
    """What libwebp's demuxer checks before it allocates: RIFF/WEBP framing whose
    size matches the file, chunks that fit, and a first chunk (VP8, VP8L or VP8X)
    whose header declares a non-zero size."""
    if len(data) < 30 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return False
    if int.from_bytes(data[4:8], "little") + 8 != len(data):
        return False
    offset = 12
    first = None
    while offset + 8 <= len(data):
        kind, size = data[offset : offset + 4], int.from_bytes(data[offset + 4 : offset + 8], "little")
        if offset + 8 + size > len(data):
            return False
        if first is None:
            first = (kind, data[offset + 8 : offset + 8 + size])
        offset += 8 + size + (size & 1)
    if offset != len(data) or first is None:
        return False
    kind, payload = first
    if kind == b"VP8 ":
        ok = len(payload) >= 10 and payload[3:6] == b"\x9d\x01\x2a"
        return (
            ok
            and int.from_bytes(payload[6:8], "little") & 0x3FFF > 0
            and int.from_bytes(payload[8:10], "little") & 0x3FFF > 0
        )
    if kind == b"VP8L":
        return len(payload) >= 5 and payload[0] == 0x2F
    if kind == b"VP8X":
        return len(payload) >= 10
    return False


def _classify(exc: Exception, data: bytes) -> ImageProcessingError:
    """Map a Pillow exception to an error kind.

    ============================================  ===========
    DecompressionBombError / ...Warning           too_large
    UnidentifiedImageError, no image signature    unsupported
    UnidentifiedImageError, known signature       truncated if shorter than any valid
                                                  image, else corrupt (header damaged)
    OSError "...truncated..." / EOFError          truncated
    OSError from a WebP whose RIFF size is short  truncated
    other OSError (decoder error, broken stream)  corrupt
    SyntaxError (bad CRC), ValueError (text       corrupt
    chunk too big), struct.error, other errors
    warnings escalated to errors by the host      corrupt
    ============================================  ===========
    """
    if isinstance(exc, Image.DecompressionBombError | Image.DecompressionBombWarning):
        return ImageProcessingError(
            "too_large", "The image declares dimensions too large to decode safely (possible decompression bomb)."
        )
    if isinstance(exc, UnidentifiedImageError):
        claimed = _claimed_format(data)
        if claimed is None:
            formats = ", ".join(sorted({_SOURCE_FORMAT_NAMES.get(f, f) for f in ACCEPTED_FORMATS}))
            return ImageProcessingError("unsupported", f"The file is not an image in a supported format ({formats}).")
        verdict = _header_verdict(data, claimed)
        if verdict == "truncated":
            return ImageProcessingError("truncated", f"The {claimed} file ends inside its header.")
        if verdict is not None:
            return ImageProcessingError(
                "corrupt", f"The {claimed} header declares {verdict}, which cannot be an image."
            )
        return ImageProcessingError("corrupt", f"The file looks like a {claimed} image but its header is damaged.")
    if isinstance(exc, EOFError) or (isinstance(exc, OSError) and _is_truncation(exc, data)):
        return ImageProcessingError("truncated", "The image data is truncated: the file ends before the image does.")
    if isinstance(exc, ValueError) and ("text chunk" in str(exc).lower() or "MAX_TEXT" in str(exc)):
        return ImageProcessingError(
            "corrupt", "The PNG carries an oversized text chunk, refused as a possible decompression bomb."
        )
    return ImageProcessingError("corrupt", f"The image data is corrupt and cannot be decoded ({_detail(exc)}).")


def _is_truncation(exc: OSError, data: bytes) -> bool:
    text = str(exc).lower()
    if any(t in text for t in ("truncated", "premature end", "unexpected end", "end of file", "not enough data")):
        return True
    # libwebp reports a cut-off file as a generic decoder failure; the RIFF
    # header says how long the file should be.
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return int.from_bytes(data[4:8], "little") + 8 > len(data)
    return False


def _header_verdict(data: bytes, claimed: str) -> str | None:
    """Why a file with an image signature could not be identified, from its header.

    ``"truncated"`` only when the file really ends inside the header (walking its
    structure runs off the end), a description such as ``"a 0x0 size"`` when a
    complete header declares an impossible size, ``None`` when the header is
    complete but damaged some other way (corrupt).
    """
    if claimed == "GIF":  # signature + logical screen descriptor
        if len(data) < 13:
            return "truncated"
        width, height = int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
        return f"a {width}x{height} size" if width == 0 or height == 0 else None
    if claimed == "PNG":  # signature + IHDR chunk
        if len(data) < 33:
            return "truncated"
        if data[12:16] != b"IHDR":
            return None
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        return f"a {width}x{height} size" if width == 0 or height == 0 else None
    if claimed == "JPEG":
        return _jpeg_header_verdict(data)
    if claimed == "WebP":  # RIFF header + the first chunk's header
        if len(data) < 20 or int.from_bytes(data[4:8], "little") + 8 > len(data):
            return "truncated"
        return None
    if claimed == "TIFF":  # header + the first IFD's entry count
        order = "little" if data[:2] == b"II" else "big"
        if len(data) < 8:
            return "truncated"
        ifd = int.from_bytes(data[4:8], order)
        if ifd + 2 > len(data):
            return "truncated" if ifd < 2**31 else None
        return "truncated" if ifd + 2 + 12 * int.from_bytes(data[ifd : ifd + 2], order) > len(data) else None
    return None


# JPEG markers without a length field (SOI, EOI, RSTn, TEM).
_JPEG_STANDALONE = frozenset({0xD8, 0xD9, 0x01, *range(0xD0, 0xD8)})
# Markers followed by a length: SOFn, DHT, DAC, SOS, DQT, DNL, DRI, DHP, EXP, APPn, COM.
_JPEG_SEGMENTS = frozenset({*range(0xC0, 0xD0), *range(0xDA, 0xF0), 0xFE})
_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def _jpeg_header_verdict(data: bytes) -> str | None:
    """Walk the marker segments up to the first scan (SOS)."""
    offset = 2
    while True:
        if offset >= len(data):
            return "truncated"
        if data[offset] != 0xFF:
            return None  # not a marker where one must be
        while offset < len(data) and data[offset] == 0xFF:  # fill bytes
            offset += 1
        if offset >= len(data):
            return "truncated"
        marker = data[offset]
        offset += 1
        if marker in _JPEG_STANDALONE:
            if marker == 0xD9:
                return None  # an end before any scan: damaged, not cut short
            continue
        if marker not in _JPEG_SEGMENTS:
            return None  # garbage where a marker must be
        if offset + 2 > len(data):
            return "truncated"
        length = int.from_bytes(data[offset : offset + 2], "big")
        if length < 2:
            return None
        if offset + length > len(data):
            return "truncated"
        if marker in _JPEG_SOF and length >= 7:
            height = int.from_bytes(data[offset + 3 : offset + 5], "big")
            width = int.from_bytes(data[offset + 5 : offset + 7], "big")
            if width == 0 or height == 0:
                return f"a {width}x{height} size"
        if marker == 0xDA:
            return None  # the header is complete
        offset += length


def _claimed_format(data: bytes) -> str | None:
    for magic, offset, name in _MAGIC:
        if data[offset : offset + len(magic)] == magic:
            return name
    return None


def _detail(exc: Exception) -> str:
    return _short(str(exc).splitlines()[0].strip() if str(exc).strip() else type(exc).__name__)


def _short(text: str) -> str:
    text = text.rstrip(".")
    return text if len(text) <= 120 else text[:117] + "..."
