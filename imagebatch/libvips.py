"""Optional libvips acceleration for :func:`imagebatch.imaging.render_image`.

Why it exists: after JPEG draft decoding and the cascade, Pillow's scalar
Lanczos resampler is most of our CPU time, and PNG sources cannot be
draft-decoded at all, so Pillow's recipe gains least on them. libvips resamples
with SIMD (highway) and fuses PNG decoding with the first shrink, never holding
the full frame (``bench.imaging`` measures both; the figures are in
docs/benchmarks.md).

libvips gets only two jobs:

* **resampling** every rendition (crop, box shrink, Lanczos3 reduce, with
  alpha premultiplied as Pillow does), whatever decoded the pixels;
* **decoding plain PNGs** -- 8-bit grey/grey+alpha/RGB/RGBA, not animated, no
  ``tRNS``, no metadata chunks after the pixel data -- streamed straight into
  the first resize.

Everything else stays in Pillow so both backends give the same kind of output
and the *same errors*: identifying the file and the pixel limit (Pillow reads
the header before libvips sees a byte), EXIF orientation, mode normalisation,
CMYK/CIELAB conversion, the ICC decision, metadata stripping and encoding. Any
libvips error makes ``render_image`` redo the image with Pillow alone, which
then classifies a broken file exactly as it always did, so libvips can only
make a good image faster, never turn a bad one into output or a crash.

libvips is configured once per process: operation cache off (it would pin
decoded images in memory between activities) and one worker thread per call
unless ``VIPS_CONCURRENCY`` is set, because a batch worker already runs one
image per core and libvips's own threads then only add contention. A process
forked after libvips started (``multiprocessing``'s default on Linux) must not
call it -- it deadlocks on locks held by threads that did not survive the fork
-- so such a child falls back to Pillow; spawned workers load their own.

This is the only module that imports pyvips, so every call into the optional
dependency (and its fork, thread and error handling) is reviewable in one place;
:mod:`imagebatch.imaging` never touches pyvips itself. Which sources libvips may
take is decided from their headers, without pyvips, in
:mod:`imagebatch.libvips_sources` (re-exported here).
"""

from __future__ import annotations

import os
import threading
from types import ModuleType
from typing import Any

from PIL import Image

from imagebatch.libvips_sources import STREAM_KINDS as STREAM_KINDS
from imagebatch.libvips_sources import png_exif as png_exif
from imagebatch.libvips_sources import png_mode as png_mode
from imagebatch.libvips_sources import stream_bytes as stream_bytes
from imagebatch.libvips_sources import stream_kind as stream_kind

BACKENDS: tuple[str, ...] = ("auto", "pillow", "libvips")

# Pillow mode <-> libvips bands, for 8-bit images.
_BANDS: dict[str, int] = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}
_MODE_BY_BANDS: dict[int, str] = {bands: mode for mode, bands in _BANDS.items()}

_lock = threading.Lock()
_loaded: ModuleType | None = None
_load_error: str | None = None
_FORKED = (
    "libvips was started in a parent process before this one was forked, and its thread pool "
    "does not survive fork(); use the 'spawn' start method to get libvips in workers"
)


class LibvipsUnavailableError(RuntimeError):
    """``backend="libvips"`` was asked for but pyvips/libvips cannot be loaded."""


def resolve(backend: str) -> ModuleType | None:
    """The pyvips module to use for ``backend``, or ``None`` for Pillow alone."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown image backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    if backend == "pillow":
        return None
    vips = _load()
    if vips is None and backend == "libvips":
        raise LibvipsUnavailableError(
            f"IMAGE_BACKEND=libvips but libvips cannot be loaded ({_load_error}); pip install 'pyvips[binary]'"
        )
    return vips


def availability() -> str:
    """One line for logs and benchmarks: the libvips version, or why it is missing."""
    vips = _load()
    if vips is None:
        return f"libvips unavailable: {_load_error}"
    return f"libvips {'.'.join(str(vips.version(i)) for i in range(3))} (pyvips {vips.__version__})"


def _load() -> ModuleType | None:
    global _loaded, _load_error
    with _lock:
        if _loaded is not None or _load_error is not None:
            return _loaded
        try:
            import pyvips
        except Exception as exc:  # ImportError, or OSError when the shared library is missing
            _load_error = f"{type(exc).__name__}: {exc}"
            return None
        pyvips.cache_set_max(0)
        if "VIPS_CONCURRENCY" not in os.environ:
            pyvips.concurrency_set(1)
        _loaded = pyvips
        os.register_at_fork(after_in_child=_forget_after_fork)
        return pyvips


def _forget_after_fork() -> None:
    """A forked child inherits libvips's locks but not its threads: calling it
    can hang forever, so the child renders with Pillow instead."""
    global _loaded, _load_error, _lock
    _loaded, _load_error = None, _FORKED
    _lock = threading.Lock()  # another thread may have held it at the fork


# ----------------------------------------------------------------- conversion


def from_pillow(vips: ModuleType, im: Image.Image) -> Any:
    """A libvips image sharing nothing with ``im`` (one copy of its pixels)."""
    bands = _BANDS[im.mode]
    image = vips.Image.new_from_memory(im.tobytes(), im.width, im.height, bands, "uchar")
    # "multiband" (the default for raw memory) would make libvips resize alpha
    # images without premultiplying, bleeding the colour of transparent pixels.
    return image.copy(interpretation="b-w" if bands <= 2 else "srgb")


def to_pillow(image: Any) -> Image.Image:
    data = image.data if isinstance(image, Pixels) else image.write_to_memory()
    return Image.frombytes(_MODE_BY_BANDS[image.bands], (image.width, image.height), data)


def mode_of(image: Any) -> str:
    return _MODE_BY_BANDS[image.bands]


# ------------------------------------------------------------------ PNG decode


def open_png(vips: ModuleType, data: bytes, mode: str) -> Any:
    """A lazily decoded (streamed) libvips image of an eligible PNG.

    ``fail_on="warning"`` makes a truncated or damaged stream raise instead of
    being padded with grey, and the caller then falls back to Pillow.
    """
    # A Source reads ``data`` in place; new_from_buffer would first copy it.
    image = vips.Image.new_from_source(vips.Source.new_from_memory(data), "", access="sequential", fail_on="warning")
    if image.format != "uchar" or image.bands != _BANDS[mode]:
        raise vips.Error(f"unexpected PNG layout from libvips: {image.bands} bands of {image.format}")
    # Colour is Pillow's decision (the ICC profile is written as is, never applied).
    present = [f for f in ("icc-profile-data", "exif-data", "xmp-data", "orientation") if image.get_typeof(f)]
    if present:
        image = image.copy()  # metadata of a fresh copy may be changed
        for field in present:
            image.remove(field)
    return image


def flatten_on_white(image: Any) -> Any:
    """Alpha onto white, as :func:`imagebatch.imaging._flatten_on_white` does in Pillow."""
    return image.flatten(background=[255] * (image.bands - 1))


# ---------------------------------------------------------------------- resize


class Pixels:
    """A rendition computed by libvips, held once: the bytes ``write_to_memory``
    filled, and a libvips image reading those same bytes (``new_from_memory``
    copies nothing). Pillow gets the bytes for encoding, later renditions
    cascade from the image: one buffer instead of a libvips copy
    (``copy_memory``) plus the bytes handed to Pillow."""

    __slots__ = ("data", "image")

    def __init__(self, image: Any, data: bytes) -> None:
        self.image, self.data = image, data

    @property
    def width(self) -> int:
        return int(self.image.width)

    @property
    def height(self) -> int:
        return int(self.image.height)

    @property
    def bands(self) -> int:
        return int(self.image.bands)


def materialise(image: Any) -> Pixels:
    """Compute ``image`` once into memory (see :class:`Pixels`)."""
    data = image.write_to_memory()
    held = type(image).new_from_memory(data, image.width, image.height, image.bands, "uchar")
    return Pixels(held.copy(interpretation=image.interpretation), data)


def resize(image: Any, box: tuple[float, float, float, float], out: tuple[int, int]) -> Pixels:
    """Resample the ``box`` (left, top, right, bottom) of ``image`` to exactly ``out``.

    libvips crops on whole pixels, so a fractional box (a JPEG draft's partial
    last pixel, a centred ``cover`` crop) moves by at most half a source pixel.
    The result is materialised because later renditions cascade from it.
    """
    if isinstance(image, Pixels):
        image = image.image
    left, top, right, bottom = box
    x, y = max(0, round(left)), max(0, round(top))
    width = max(1, min(image.width - x, round(right - left)))
    height = max(1, min(image.height - y, round(bottom - top)))
    if (x, y, width, height) != (0, 0, image.width, image.height):
        image = image.crop(x, y, width, height)
    if (width, height) != out:
        image = image.thumbnail_image(out[0], height=out[1], size="force", no_rotate=True)
    return materialise(image)


# ------------------------------------------------------------ JPEG scan check

# libjpeg's warnings that mean pixels are missing or wrong (libjpeg then fills
# the rest of the scan with zero coefficients, i.e. mid grey, and carries on).
# Other warnings (extraneous bytes before the final marker, an unknown JFIF
# revision, a bad ICC marker) leave every pixel intact and are ignored.
_SCAN_DAMAGE: tuple[str, ...] = (
    "premature end of data segment",  # JWRN_HIT_MARKER: the scan stopped before the last MCU
    "bad huffman code",  # JWRN_HUFF_BAD_CODE
    "instead of rst",  # JWRN_MUST_RESYNC: restart markers out of sequence, MCUs lost
    "inconsistent progression",  # JWRN_BOGUS_PROGRESSION
    "invalid sos parameters",  # JWRN_NOT_SEQUENTIAL
)
_JPEG_ENDS_EARLY: tuple[str, ...] = ("premature end of jpeg file", "premature end of jpeg image")
# How libvips (vips_malloc, vips_tracked_malloc, pixel buffers) and glib report a failed allocation.
_OUT_OF_MEMORY: tuple[str, ...] = ("out of memory", "unable to allocate", "cannot allocate", "vips_malloc")


def jpeg_scan_damage(vips: ModuleType, data: bytes) -> tuple[str, str] | None:
    """``(kind, libjpeg's message)`` when libjpeg only *warns* about the scan, else ``None``.

    Pillow's JPEG decoder installs a no-op ``output_message`` and never looks at
    libjpeg's warning count (``src/libImaging/JpegDecode.c``: the check is
    commented out), so a scan that stops early or holds a bad Huffman code comes
    back as a complete image whose rest is mid grey, with no exception, warning
    or error code to notice. libvips decodes with the same libjpeg family and
    turns warnings into errors with ``fail_on="warning"``, so it is the check.

    This is the stand-alone check, for JPEGs that libvips does not render (the
    Pillow backend, CMYK): the libvips backend decodes JPEGs itself at full
    scale with ``fail_on="warning"`` (:func:`open_stream`, kind ``"jpeg"``) and
    gets the same verdict from that one decode (:func:`jpeg_damage`).

    The whole scan is decoded at full scale (sequentially, a few rows at a time,
    so memory stays small): with DCT scaling (``shrink`` 2-8) libjpeg stops short
    of some of the damage it reports at full scale (measured: of 30 damaged
    12 MP-class files 22 flagged at full scale, 17 at ``shrink`` 2-8; a 64-byte
    zeroed run in a baseline scan is missed at every reduced scale). The rows are
    summed 16:1 (``shrinkv`` with ``ceil``, so the last rows count too) instead
    of computing ``avg`` over the full frame, for less CPU (docs/benchmarks.md,
    "The damage check").
    ``kind`` is ``truncated`` when the file ends inside the scan and ``corrupt``
    otherwise. A failed allocation raises :class:`MemoryError` (transient).
    """
    try:
        source = vips.Source.new_from_memory(data)
        image = vips.Image.new_from_source(source, "", access="sequential", fail_on="warning")
        image.shrinkv(16, ceil=True).avg()
    except vips.Error as error:
        return jpeg_damage(error)
    return None


def jpeg_damage(error: Exception) -> tuple[str, str] | None:
    """``(kind, message)`` when a libvips error from decoding a JPEG with
    ``fail_on="warning"`` means libjpeg found missing or wrong pixels, else ``None``.
    A failed allocation raises :class:`MemoryError`."""
    raise_if_out_of_memory(error)
    message = _libjpeg_message(str(error))
    lowered = message.lower()
    if any(text in lowered for text in _JPEG_ENDS_EARLY):
        return "truncated", message
    if any(text in lowered for text in _SCAN_DAMAGE):
        return "corrupt", message
    return None


def raise_if_out_of_memory(error: Exception) -> None:
    """Re-raise a libvips allocation failure as :class:`MemoryError`: memory
    pressure is transient (another attempt, later or elsewhere, may succeed)
    and must never be recorded as a broken file."""
    text = str(error).lower()
    if any(marker in text for marker in _OUT_OF_MEMORY):
        raise MemoryError(f"libvips could not allocate memory: {_libjpeg_message(str(error))}") from error


def _libjpeg_message(text: str) -> str:
    """The most specific line of a libvips error ("VipsJpeg: Corrupt JPEG data: ...")."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:  # the loader's own words first ("unable to copy to memory" is only the caller's)
        if line.startswith(("VipsJpeg:", "VipsForeignLoad", "vips_")):
            return line.removeprefix("VipsJpeg:").strip()
    for line in lines:
        if any(marker in line.lower() for marker in _OUT_OF_MEMORY):
            return line
    return lines[-1] if lines else text


# ------------------------------------------------------- streamed decoding


def open_stream(vips: ModuleType, data: bytes, kind: str, mode: str, scale: float = 1.0) -> Any:
    """A lazily decoded libvips image of ``data`` in Pillow mode ``mode`` (8-bit L/LA/RGB/RGBA).

    ``mode`` is what :func:`imagebatch.imaging._normalise` would make of
    Pillow's decode, so both paths give the same pixels: palettes are expanded
    (with alpha when the PNG has ``tRNS``), 16-bit colour keeps its high byte as
    Pillow's PNG decoder does, 16-bit grey is scaled as ``_to_8bit`` does (which
    needs the maximum first: one extra streamed pass), and an alpha band that
    Pillow would not have (``tRNS`` on a grey or RGB PNG) is dropped.
    ``scale`` < 1 makes libwebp decode a smaller frame (WebP), or shrinks a
    JPEG's full frame by that much first (JPEG: decoded at full scale, which is
    what lets libjpeg report damage; see :func:`jpeg_scan_damage`).

    A JPEG's first resample must cover the whole frame: libjpeg can only warn
    about data it reads, and a sequential decode reads only the rows the
    pipeline asks for. A full-frame resample always asks for the last row
    (libvips's integer shrinks round up and its Lanczos kernel extends the
    edges; ``tests/test_imaging_libvips.py`` checks it over many geometries),
    so the largest rendition, when it is a crop, is preceded by a full-frame
    shrink here (``scale`` < 1, set by ``imaging._route``).
    ``fail_on="warning"`` makes damaged data raise instead of being padded.
    """
    options: dict[str, Any] = {"fail_on": "warning"}
    if kind == "webp":
        if scale < 1.0:
            options["scale"] = scale
    else:
        options["access"] = "sequential"
    image = vips.Image.new_from_source(vips.Source.new_from_memory(data), "", **options)
    if kind == "png-grey16":
        peak = vips.Image.new_from_source(vips.Source.new_from_memory(data), "", **options).max()
        image = image.extract_band(0) if image.bands > 1 else image
        image = image.cast("uchar") if peak <= 255 else image.linear(255.0 / 65535.0, 0.0).cast("uchar")
    elif image.format == "ushort":
        image = image.cast("uchar", shift=True)
    if image.format != "uchar":
        raise vips.Error(f"unexpected layout from libvips: {image.bands} bands of {image.format}")
    bands = _BANDS[mode]
    if image.bands == bands + 1:
        image = image.extract_band(0, n=bands)
    if image.bands != bands:
        raise vips.Error(f"unexpected layout from libvips: {image.bands} bands, expected {bands}")
    image = image.copy(interpretation="b-w" if bands <= 2 else "srgb")
    for field in ("icc-profile-data", "exif-data", "xmp-data", "orientation"):
        if image.get_typeof(field):
            image.remove(field)
    if kind == "jpeg" and scale < 1.0:
        # A full-frame first step at ``scale`` (the largest rendition is a crop, which
        # alone would leave rows undecoded): every rendition cascades from it.
        width, height = max(1, round(image.width * scale)), max(1, round(image.height * scale))
        image = image.thumbnail_image(width, height=height, size="force", no_rotate=True).copy_memory()
    return image


def error_text(error: Exception) -> str:
    """The most specific line of a libvips error, for a report."""
    return _libjpeg_message(str(error))
