"""Which sources libvips may decode, read from Pillow's header and the file's bytes.

Pure Python, no pyvips: :func:`png_mode` (plain PNGs libvips decodes straight into the first
resize), :func:`stream_kind` and :func:`stream_bytes` (what libvips can decode a strip at a time,
and the memory that takes), :func:`png_exif`. :mod:`imagebatch.libvips`, the one module that
calls pyvips, re-exports them; see its docstring for why libvips gets only these jobs.
"""

from __future__ import annotations

import struct

from PIL import Image

# PNG IHDR colour type -> Pillow mode, for the colour types libvips may decode.
_PNG_COLOUR_TYPES: dict[int, str] = {0: "L", 2: "RGB", 4: "LA", 6: "RGBA"}
# Chunks that can carry EXIF or XMP (orientation). Pillow reads the ones that
# follow the pixel data only when it decodes, so a PNG holding any of them after
# IDAT is left to Pillow.
_METADATA_CHUNKS = frozenset({b"eXIf", b"tEXt", b"zTXt", b"iTXt"})
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_mode(im: Image.Image, data: bytes) -> str | None:
    """The Pillow mode of a PNG that libvips may decode, or ``None`` to leave it to Pillow.

    ``im`` is Pillow's unloaded header for ``data``: it has already passed the
    format and pixel-limit checks.
    """
    if im.format != "PNG" or getattr(im, "is_animated", False) or "transparency" in im.info:
        return None
    if len(data) < 33 or data[12:16] != b"IHDR" or data[24] != 8:  # bit depth
        return None
    mode = _PNG_COLOUR_TYPES.get(data[25])
    if mode is None or mode != im.mode or _metadata_after_pixels(data):
        return None
    return mode


def _metadata_after_pixels(data: bytes) -> bool:
    """True when an EXIF/XMP/text chunk follows IDAT, or the chunk list is unreadable."""
    offset, seen_idat = len(_PNG_SIGNATURE), False
    while offset + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, offset)
        if kind == b"IDAT":
            seen_idat = True
        elif kind == b"IEND":
            return False
        elif seen_idat and kind in _METADATA_CHUNKS:
            return True
        offset += 12 + length
    return True  # no IEND: let Pillow decide what is wrong with the file


# What libvips can decode a few rows (or, for WebP, a scaled frame) at a time,
# so memory does not grow with the image: PNG (not interlaced: Adam7 needs the
# whole frame), 8-bit RGB/grey TIFF, WebP (libwebp scales while decoding), and
# RGB/grey JPEG at full scale with fail_on="warning", which is also the check
# for damaged scans (see jpeg_scan_damage) at no extra decode.
# GIF (libvips builds a full RGBA canvas) and BMP (no libvips loader) are not.
STREAM_KINDS: tuple[str, ...] = ("png", "png-grey16", "tiff", "webp", "jpeg")

# TIFF tags
_BITS_PER_SAMPLE, _PHOTOMETRIC, _SAMPLE_FORMAT, _EXTRA_SAMPLES, _PLANAR = 258, 262, 339, 338, 284


def stream_kind(im: Image.Image, data: bytes) -> str | None:
    """How libvips could decode this file without holding its full frame, or ``None``.

    The result must normalise to what Pillow's decode would (see
    :func:`open_stream`), so only layouts whose meaning is unambiguous qualify.
    """
    if getattr(im, "is_animated", False) and im.format != "WEBP":
        return None
    if im.format == "PNG":
        if len(data) < 33 or data[12:16] != b"IHDR" or data[28] != 0:  # interlaced
            return None
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            return "png-grey16"
        return "png" if im.mode in ("1", "L", "LA", "RGB", "RGBA", "P") else None
    if im.format == "TIFF":
        tags = getattr(im, "tag_v2", {})
        bits = tags.get(_BITS_PER_SAMPLE, (8,))
        bits = bits if isinstance(bits, tuple) else (bits,)
        plain = (
            im.mode in ("L", "RGB", "RGBA")
            and all(b == 8 for b in bits)
            and tags.get(_PHOTOMETRIC) in (1, 2)
            and tags.get(_PLANAR, 1) == 1
            and tags.get(_SAMPLE_FORMAT, (1,)) in (1, (1,), (1, 1, 1), (1, 1, 1, 1))
            and tags.get(_EXTRA_SAMPLES, (2,)) in (2, (2,), 0, (0,))
        )
        return "tiff" if plain else None
    if im.format == "WEBP":
        return "webp"
    if im.format in ("JPEG", "MPO") and im.mode in ("RGB", "L"):
        return "jpeg"  # CMYK/YCCK stay with Pillow (inverted Adobe CMYK, profile conversion)
    return None


def stream_bytes(im: Image.Image, kind: str, scale: float) -> int:
    """Estimated peak memory of :func:`open_stream` plus the first resize (bytes).

    Sequential decoding holds a strip of source rows; the first resize holds
    its output (the largest rendition) a few times over. Calibrated with
    ``python -m bench.memory`` (docs/benchmarks.md, "Memory per image").
    """
    width, height = im.size
    out = max(1.0, width * scale) * max(1.0, height * scale) * 4  # the largest rendition, RGBA
    rows = width * 8 * (64 + 4 / max(scale, 1e-3))  # 16-bit RGBA rows: what shrinkv keeps
    if kind == "webp":  # libwebp decodes straight into a frame twice the largest rendition's size
        rows = 0
        out *= 4
    return int(48 * 2**20 + rows + 3 * out)


def png_exif(data: bytes) -> bytes | None:
    """The payload of a PNG's ``eXIf`` chunk, wherever it is (before or after the pixels)."""
    offset = len(_PNG_SIGNATURE)
    while offset + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, offset)
        if kind == b"eXIf":
            return data[offset + 8 : offset + 8 + length]
        if kind == b"IEND":
            break
        offset += 12 + length
    return None
