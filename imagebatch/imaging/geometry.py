"""Where each rendition comes from: sizes, centred crops and orientation, as arithmetic.

Geometry is planned in upright (displayed) coordinates; the resampler works in
stored ones and transposes each small output at the end (see
:func:`imagebatch.imaging.resample._resize_all`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from PIL import Image

from imagebatch.specs import RenderSpec, Rendition

# Largest side each encoder accepts; bigger renditions are scaled down to fit.
_MAX_SIDE: dict[str, int] = {"jpeg": 65_500, "webp": 16_383, "png": 2**31 - 1}


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

# A working image's box (left, top, right, bottom) covering the whole source:
# after a 1/s draft the last row and column are partial pixels, so the box is
# the exact (fractional) extent, as ``Image.draft`` reports it.
_Frame = tuple[float, float, float, float]


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


def _upright_size(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    return (size[1], size[0]) if orientation >= 5 else size


_T = TypeVar("_T", int, float)


def _swap(pair: tuple[_T, _T]) -> tuple[_T, _T]:
    return pair[1], pair[0]


def _centred_box(frame: _Frame, fraction: tuple[float, float]) -> tuple[float, float, float, float]:
    """The box of the working image holding the centred ``fraction`` of the source."""
    left, top, right, bottom = frame
    crop_w, crop_h = (right - left) * fraction[0], (bottom - top) * fraction[1]
    x, y = left + (right - left - crop_w) / 2, top + (bottom - top - crop_h) / 2
    return x, y, x + crop_w, y + crop_h
