"""Modes and colour: what every decoded frame is normalised to, and which ICC profile is written.

Keep the source ICC profile when it matches the output's colour space; convert
CMYK (through its own profile when usable) and CIELAB to tagged sRGB; drop a
profile that does not match or cannot be parsed (a wrong profile is worse than
none). See the package docstring of :mod:`imagebatch.imaging`.
"""

from __future__ import annotations

import io

from PIL import Image, ImageCms

from imagebatch.imaging.errors import ImageProcessingError

_SRGB_PROFILE = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
_SRGB_BYTES = _SRGB_PROFILE.tobytes()
_LAB_PROFILE = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB"))

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


def _normalise(im: Image.Image, fmt: str) -> tuple[Image.Image, bytes | None]:
    """Convert to L, LA, RGB or RGBA (no alpha for JPEG) and pick the ICC to write."""
    icc = im.info.get("icc_profile") or None
    mode = im.mode
    if mode == "CMYK":
        return _from_cmyk(im, icc)
    if mode == "LAB":  # device-independent already: one exact conversion to sRGB
        return _profile_to_srgb(im, _LAB_PROFILE), _SRGB_BYTES
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
            converted = _profile_to_srgb(im, source)
        except (ImageCms.PyCMSError, OSError, ValueError):
            converted = None
        if converted is not None:
            return converted, _SRGB_BYTES
    return im.convert("RGB"), None


def _profile_to_srgb(im: Image.Image, source: ImageCms.ImageCmsProfile) -> Image.Image:
    converted = ImageCms.profileToProfile(im, source, _SRGB_PROFILE, outputMode="RGB")
    assert converted is not None  # None only with inPlace=True
    return converted


def _grey_extrema(im: Image.Image) -> tuple[float, float]:
    """``(low, high)`` of a one-band image (Pillow's ``getextrema`` is typed for any band count)."""
    low, high = im.getextrema()
    assert not isinstance(low, tuple) and not isinstance(high, tuple), f"{im.mode} has more than one band"
    return low, high


def _to_8bit(im: Image.Image, extrema: tuple[float, float] | None = None) -> Image.Image:
    """Scale 16/32-bit and float greyscale into 0-255 instead of clipping.

    Pillow's direct ``I;16 -> L`` conversion clips everything above 255 to
    white. Integer data is assumed to use the 16-bit range when any value
    exceeds 255; floats are assumed 0.0-1.0 unless they fall outside it, in
    which case the actual range is stretched.
    """
    as_int = im if im.mode in ("I", "F") else im.convert("I")
    low, high = extrema if extrema is not None else _grey_extrema(as_int)
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
