"""What can be wrong with an image's bytes, and how Pillow's exceptions map onto it.

Only permanent input problems become :class:`ImageProcessingError` (retrying
cannot fix the bytes, so the activity records them instead of retrying); a
decoder running short of memory is raised as ``MemoryError`` so the activity's
retry policy tries again (:func:`_is_out_of_memory`). The classification table
is :func:`_classify`'s docstring.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from PIL import Image, UnidentifiedImageError

from imagebatch.source_check import sniff_image_format

ERROR_KINDS: tuple[str, ...] = ("empty", "unsupported", "corrupt", "truncated", "too_large")

# Pillow plugin names. Multi-picture JPEGs (MPO, from many cameras) are opened
# by the JPEG plugin, so they need no entry of their own.
ACCEPTED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP")

_SOURCE_FORMAT_NAMES = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG", "GIF": "GIF", "WEBP": "WebP", "TIFF": "TIFF"}
# Signature (imagebatch.source_check.IMAGE_SIGNATURES) -> the name a message
# uses. BMP is left out: its two-byte signature says too little to call an
# unidentifiable file a damaged bitmap, so such a file stays ``unsupported``.
_CLAIMED_NAMES = {"jpeg": "JPEG", "png": "PNG", "gif": "GIF", "webp": "WebP", "tiff": "TIFF"}


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
        order: Literal["little", "big"] = "little" if data[:2] == b"II" else "big"
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
    """The format ``data``'s signature claims (one table: :mod:`imagebatch.source_check`)."""
    return _CLAIMED_NAMES.get(sniff_image_format(data) or "")


def _detail(exc: Exception) -> str:
    return _short(str(exc).splitlines()[0].strip() if str(exc).strip() else type(exc).__name__)


def _short(text: str) -> str:
    text = text.rstrip(".")
    return text if len(text) <= 120 else text[:117] + "..."


def _raise_jpeg_damage(damage: tuple[str, str] | None) -> None:
    if damage is None:
        return
    kind, detail = damage
    if kind == "truncated":
        raise ImageProcessingError(kind, "The image data is truncated: the file ends before the image does.")
    raise ImageProcessingError(
        kind, f"The JPEG's compressed data is damaged, so part of the picture is missing ({_short(detail)})."
    )
