"""Resizing: the Lanczos cascade, on Pillow or on libvips behind one small protocol.

Renditions are resized largest first, each from the last full-frame rendition
rather than the source; with libvips (``backend="auto"`` and pyvips installed)
libvips does the resampling and Pillow does everything else, so outputs are the
same on both (``tests/test_imaging.py`` runs on both).
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

from PIL import Image

from imagebatch import libvips
from imagebatch.imaging.colour import _matching_profile, _normalised_mode
from imagebatch.imaging.geometry import _UPRIGHT, _centred_box, _Frame, _Plan, _swap

if TYPE_CHECKING:
    from imagebatch.imaging.routing import _Route

# Pillow's own thumbnail() default: box-reduce by an integer factor while the
# remaining Lanczos step is at least this factor. Quality loss is invisible.
REDUCING_GAP = 2.0
# Sources with no draft shortcut (PNG, WebP, TIFF, GIF, small JPEGs) reach the
# first resize at full size; a tighter gap there lets Pillow's integer box
# reduction do more of the work: faster on PNG sources for a negligible SSIM
# loss on the largest rendition (docs/benchmarks.md, "Where the Pillow recipe's
# time goes", item 3; python -m bench.experiments.pillow_recipes).
UNDRAFTED_GAP = 1.0
RESAMPLE = Image.Resampling.LANCZOS


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
