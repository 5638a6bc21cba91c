"""Encoding: pixels, tuned quality settings and the ICC profile, nothing else.

Privacy: EXIF (GPS, camera serials), XMP, comments and PNG text never reach an
output; Pillow carries ``info`` along every resize, so it is cleared here.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from imagebatch.imaging.geometry import _Plan
from imagebatch.specs import CONTENT_TYPES, EXTENSIONS, RenderSpec

JPEG_SUBSAMPLING_LIMIT = 90  # quality at and above which chroma stays 4:4:4
WEBP_METHOD = 2
PNG_COMPRESS_LEVEL = 4


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
    """Settings chosen for speed at equal quality on photo-like content.

    JPEG: no ``optimize`` or ``progressive`` (they save a few per cent of bytes
    for several times the encode time). WebP ``method=2`` rather than the default
    4 (much faster for slightly more bytes at the same SSIM). PNG level 4 rather
    than the default 6 (much faster, nearly the same size). The PNG figures are in
    docs/benchmarks.md ("Where the Pillow recipe's time goes", item 6).
    """
    if spec.format == "jpeg":
        subsampling = "4:2:0" if spec.quality < JPEG_SUBSAMPLING_LIMIT else "4:4:4"
        return {"quality": spec.quality, "optimize": False, "progressive": False, "subsampling": subsampling}
    if spec.format == "webp":
        return {"quality": spec.quality, "method": WEBP_METHOD}
    return {"compress_level": PNG_COMPRESS_LEVEL, "optimize": False}
