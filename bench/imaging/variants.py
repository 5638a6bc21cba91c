"""What the imaging benchmark compares: each variant renders the same renditions from the same bytes.

See :mod:`bench.imaging` for what each variant is and why libvips gets our encoder settings.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

from PIL import Image

from devtools.sample_images import encode
from imagebatch import libvips
from imagebatch.imaging import DEFAULT_BACKEND, plan_size, render_image
from imagebatch.specs import RenderSpec, Rendition

BASELINE = "naive"
OURS = "ours"
OURS_PILLOW = "ours-pillow"
VIPS_VARIANTS = ("pyvips", "pyvips-cascade", "pyvips-2thr", "vipsthumbnail")
ALL_VARIANTS = (BASELINE, OURS, OURS_PILLOW, *VIPS_VARIANTS)
GOAL_VS_NAIVE = 2.5
GOAL_VS_VIPS = 1.0

_PIL_FORMATS = {"jpeg": "JPEG", "webp": "WEBP", "png": "PNG"}
_EXT = {"jpeg": "jpg", "webp": "webp", "png": "png"}
_VIPS_MAX_COORD = 10_000_000


def vips_status() -> tuple[str | None, str]:
    """``(version, "")`` when pyvips works, else ``(None, reason)``."""
    try:
        import pyvips
    except Exception as exc:  # ImportError, or OSError/cffi errors when libvips is missing
        return None, f"pyvips unavailable ({type(exc).__name__}: {exc}); pip install 'pyvips[binary]'"
    libvips = ".".join(str(pyvips.version(i)) for i in range(3))
    return f"pyvips {pyvips.__version__}, libvips {libvips}", ""


def vipsthumbnail_status() -> tuple[str | None, str]:
    """``(version, "")`` when the CLI runs, else ``(None, reason)``."""
    exe = shutil.which("vipsthumbnail")
    if exe is None:
        return None, "vipsthumbnail not on PATH (Debian package libvips-tools: apt-get install libvips-tools)"
    try:
        out = subprocess.run([exe, "--vips-version"], capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"vipsthumbnail does not run ({exc})"
    return out.stdout.strip() or "vipsthumbnail (unknown version)", ""


def _ours_backend() -> str:
    """What ``ours`` (``render_image``'s default backend) runs in this environment, in one line."""
    line = libvips.availability()
    try:
        vips = libvips.resolve(DEFAULT_BACKEND)
    except libvips.LibvipsUnavailableError:
        return f"backend {DEFAULT_BACKEND!r} fails here ({line})"
    if vips is None:
        return f"Pillow only, same as ours-pillow ({line})"
    return f"libvips resampling + plain-PNG decoding ({line})"


Renderer = Callable[[bytes, str, str, Sequence[Rendition], int], list[bytes]]
_VIPS: Any = None


def _vips() -> Any:
    """Import pyvips lazily (the memory children of other variants must not load
    libvips) and switch off its operation cache so repeats do real work."""
    global _VIPS
    if _VIPS is None:
        import pyvips

        pyvips.cache_set_max(0)
        _VIPS = pyvips
    return _VIPS


def _naive(data: bytes, path: str, fmt: str, renditions: Sequence[Rendition], quality: int) -> list[bytes]:
    """The baseline: full decode, one full-resolution LANCZOS per rendition, default encoders."""
    im = Image.open(io.BytesIO(data)).convert("RGB")
    params: dict[str, object] = {} if fmt == "png" else {"quality": quality}
    outs = []
    for rendition in renditions:
        (w, h), (cw, ch) = plan_size(im.size, rendition, fmt)
        box = ((im.width - cw) / 2, (im.height - ch) / 2, (im.width + cw) / 2, (im.height + ch) / 2)
        outs.append(encode(im.resize((w, h), Image.Resampling.LANCZOS, box=box), _PIL_FORMATS[fmt], **params))
    return outs


def _ours(data: bytes, path: str, fmt: str, renditions: Sequence[Rendition], quality: int) -> list[bytes]:
    """What production runs: ``render_image`` with its default backend."""
    spec = RenderSpec(renditions=tuple(renditions), format=fmt, quality=quality)  # type: ignore[arg-type]
    return [r.data for r in render_image(data, spec).renditions]


def _ours_pillow(data: bytes, path: str, fmt: str, renditions: Sequence[Rendition], quality: int) -> list[bytes]:
    """The pure-Pillow recipe, the fallback without libvips."""
    spec = RenderSpec(renditions=tuple(renditions), format=fmt, quality=quality)  # type: ignore[arg-type]
    return [r.data for r in render_image(data, spec, backend="pillow").renditions]


def _vips_save(image: Any, fmt: str, quality: int) -> bytes:
    """libvips encoders with the same settings as ours (see the module docstring)."""
    if fmt == "jpeg":
        return bytes(image.jpegsave_buffer(Q=quality, optimize_coding=False, interlace=False, subsample_mode="auto"))
    if fmt == "webp":
        return bytes(image.webpsave_buffer(Q=quality, effort=2))
    return bytes(image.pngsave_buffer(compression=4))


def _thumb_args(rendition: Rendition) -> tuple[int, dict[str, object]]:
    kwargs: dict[str, object] = {"height": rendition.height or _VIPS_MAX_COORD, "size": "down"}
    if rendition.fit == "cover":
        kwargs["crop"] = "centre"
    return rendition.width, kwargs


def _pyvips_per_rendition(threads: int) -> Renderer:
    def render(data: bytes, path: str, fmt: str, renditions: Sequence[Rendition], quality: int) -> list[bytes]:
        pyvips = _vips()
        pyvips.concurrency_set(threads)
        outs = []
        for rendition in renditions:
            width, kwargs = _thumb_args(rendition)
            outs.append(_vips_save(pyvips.Image.thumbnail_buffer(data, width, **kwargs), fmt, quality))
        return outs

    return render


def _pyvips_cascade(data: bytes, path: str, fmt: str, renditions: Sequence[Rendition], quality: int) -> list[bytes]:
    """Largest first from the buffer, then each smaller one from the in-memory largest.

    Only valid for contain renditions (ours are); a cover crop of the cascade
    would need the crop geometry mapped, which is not worth it here.
    """
    pyvips = _vips()
    pyvips.concurrency_set(1)
    order = sorted(range(len(renditions)), key=lambda i: renditions[i].width, reverse=True)
    outs: dict[int, bytes] = {}
    first = renditions[order[0]]
    width, kwargs = _thumb_args(first)
    large = pyvips.Image.thumbnail_buffer(data, width, **kwargs).copy_memory()
    outs[order[0]] = _vips_save(large, fmt, quality)
    for i in order[1:]:
        width, kwargs = _thumb_args(renditions[i])
        outs[i] = _vips_save(large.thumbnail_image(width, **kwargs), fmt, quality)
    return [outs[i] for i in range(len(renditions))]


def _vipsthumbnail(data: bytes, path: str, fmt: str, renditions: Sequence[Rendition], quality: int) -> list[bytes]:
    """One CLI run per rendition (it makes one size per run), reading ``path``."""
    options = {"jpeg": f"Q={quality},optimize_coding=false,strip", "webp": f"Q={quality},effort=2,strip"}
    opts = options.get(fmt, "compression=4,strip")
    env = {**os.environ, "VIPS_CONCURRENCY": "1"}
    outs = []
    with tempfile.TemporaryDirectory(prefix="vt-") as tmp:
        for i, rendition in enumerate(renditions):
            size = f"{rendition.width}x{rendition.height or ''}" + ("" if rendition.fit == "cover" else ">")
            target = os.path.join(tmp, f"r{i}.{_EXT[fmt]}")
            cmd = ["vipsthumbnail", path, "--size", size, "-o", f"{target}[{opts}]"]
            if rendition.fit == "cover":
                cmd += ["--smartcrop", "centre"]
            subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            with open(target, "rb") as fh:
                outs.append(fh.read())
    return outs


RENDERERS: dict[str, Renderer] = {
    BASELINE: _naive,
    OURS: _ours,
    OURS_PILLOW: _ours_pillow,
    "pyvips": _pyvips_per_rendition(1),
    "pyvips-cascade": _pyvips_cascade,
    "pyvips-2thr": _pyvips_per_rendition(os.cpu_count() or 1),
    "vipsthumbnail": _vipsthumbnail,
}
