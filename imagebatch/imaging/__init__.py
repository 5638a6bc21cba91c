"""The Azure-free image pipeline: one source file in, encoded renditions out.

One job per module, behind :func:`render_image` (and :func:`decode_estimate`):
:mod:`~imagebatch.imaging.errors` (what is wrong with the bytes),
:mod:`~imagebatch.imaging.geometry` (sizes, crops, orientation),
:mod:`~imagebatch.imaging.decode` (identify, limit, orientation, pixels),
:mod:`~imagebatch.imaging.routing` (which decode fits the memory bound),
:mod:`~imagebatch.imaging.colour` (modes and ICC profiles),
:mod:`~imagebatch.imaging.resample` (the Pillow and libvips resamplers) and
:mod:`~imagebatch.imaging.encode` (tuned encoders, no metadata).

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

* **Speed recipe** (measured against open/convert/Lanczos-per-rendition in
  ``docs/benchmarks.md``, "Imaging"; figures live only there): JPEG DCT-domain downscaling via ``draft`` to the
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
  are the same (``tests/test_imaging.py`` runs on both). What libvips saves over
  the Pillow recipe is measured in ``docs/benchmarks.md`` (see also :mod:`imagebatch.libvips`).

* **Animated images** (GIF, APNG, WebP): the first frame only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from PIL import Image

from imagebatch import libvips
from imagebatch.imaging.decode import MAX_PIXELS_DEFAULT, _decode, _open, _orientation_and_size, _stream_orientation
from imagebatch.imaging.encode import EncodedRendition, _encode
from imagebatch.imaging.errors import (
    _SOURCE_FORMAT_NAMES,
    ACCEPTED_FORMATS,
    ERROR_KINDS,
    ImageProcessingError,
    _classify,
    _raise_jpeg_damage,
)
from imagebatch.imaging.geometry import _Frame, _plans, _upright_size, plan_size
from imagebatch.imaging.resample import (
    _PILLOW,
    REDUCING_GAP,
    UNDRAFTED_GAP,
    _LibvipsResampler,
    _Resampler,
    _resize_all,
)
from imagebatch.imaging.routing import MAX_DECODE_BYTES_DEFAULT, _Route, _route
from imagebatch.specs import FITS, FORMATS, RenderSpec

# render_image and decode_estimate look _open and _route up in this namespace, so a test
# replaces them here; a helper called inside a submodule (routing._pillow_route,
# decode._check_jpeg_scan...) is replaced on that submodule.
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

# libvips when pyvips is installed (see imagebatch/libvips.py), else Pillow.
DEFAULT_BACKEND = "auto"
# Below this many source pixels "auto" keeps to Pillow: libvips's fixed cost per
# call outweighs its faster resampler on small images (docs/benchmarks.md,
# "Libvips and small images").
LIBVIPS_MIN_PIXELS = 500_000


@dataclass(frozen=True)
class RenderResult:
    """Renditions in spec order; source size is the *upright* (displayed) size."""

    renditions: tuple[EncodedRendition, ...]
    source_width: int
    source_height: int
    source_format: str


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
