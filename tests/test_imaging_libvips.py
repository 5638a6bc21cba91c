"""The libvips fast path (imagebatch/libvips.py) against real libvips and Pillow.

tests/test_imaging.py and tests/test_hostile_images.py already run every case
on both backends; this file checks what only the libvips path has: which PNGs
libvips decodes, that it never pads a broken file with grey, that the two
backends agree pixel for pixel (within resampling noise), that it is safe
from threads, and what happens when pyvips is missing.
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import textwrap
import zlib
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image, PngImagePlugin

from devtools.sample_images import encode, exif_bytes, make_photo, sample_set, srgb_profile_bytes
from imagebatch import imaging, libvips
from imagebatch.imaging import ImageProcessingError, render_image
from imagebatch.settings import AppSettings
from imagebatch.specs import FORMATS, OutputFormat, RenderSpec, Rendition
from tests.test_imaging import ssim

VIPS = libvips.resolve("libvips")
SPEC = RenderSpec(renditions=(Rendition("large", 400), Rendition("thumb", 120), Rendition("sq", 64, 64, "cover")))


def _chunk(tag: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))


def _before_iend(data: bytes, chunk: bytes) -> bytes:
    """Append a chunk after the pixel data (just before IEND)."""
    iend = data.rindex(b"IEND") - 4
    return data[:iend] + chunk + data[iend:]


def _png(mode: str = "RGB", **params: object) -> bytes:
    return encode(make_photo(240, 160, 3).convert(mode), "PNG", **params)


def _png_mode(data: bytes) -> str | None:
    return libvips.png_mode(Image.open(io.BytesIO(data)), data)


class _PixelReadSpy:
    """Counts Pillow's reads of PNG pixel data (the original method still runs)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        original = PngImagePlugin.PngImageFile.load_read

        def load_read(image: PngImagePlugin.PngImageFile, read_bytes: int) -> bytes:
            self.calls += 1
            return original(image, read_bytes)

        monkeypatch.setattr(PngImagePlugin.PngImageFile, "load_read", load_read)


def _flattened(data: bytes) -> Image.Image:
    """On white, so pixels that are fully transparent cannot differ."""
    im = Image.open(io.BytesIO(data)).convert("RGBA")
    return Image.alpha_composite(Image.new("RGBA", im.size, "white"), im).convert("RGB")


# ---------------------------------------------------------------- which PNGs


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
def test_plain_eight_bit_pngs_go_to_libvips(mode: str) -> None:
    assert _png_mode(_png(mode)) == mode
    assert _png_mode(_png(mode, interlace=1)) == mode  # Adam7 interlacing is fine
    assert _png_mode(_png(mode, exif=exif_bytes(6))) == mode  # Pillow writes eXIf before IDAT


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(_png("P"), id="palette"),
        pytest.param(_png("RGB", transparency=(1, 2, 3)), id="rgb-with-tRNS"),
        pytest.param(_png("1"), id="one-bit"),
        pytest.param(encode(make_photo(64, 48, 1).convert("I;16"), "PNG"), id="sixteen-bit"),
        pytest.param(_before_iend(_png(), _chunk(b"eXIf", exif_bytes(6)[6:])), id="exif-after-pixels"),
        pytest.param(_before_iend(_png(), _chunk(b"tEXt", b"Comment\0late")), id="text-after-pixels"),
        pytest.param(_png()[:-12], id="no-IEND"),
        pytest.param(
            encode(make_photo(64, 48, 1), "PNG", save_all=True, append_images=[make_photo(64, 48, 2)]), id="apng"
        ),
        pytest.param(encode(make_photo(64, 48, 1), "JPEG"), id="jpeg"),
    ],
)
def test_other_pngs_and_formats_stay_with_pillow(data: bytes) -> None:
    assert _png_mode(data) is None


def test_a_plain_png_is_never_decoded_by_pillow_on_the_libvips_path(monkeypatch: pytest.MonkeyPatch) -> None:
    spy = _PixelReadSpy(monkeypatch)
    data = _png()
    render_image(data, SPEC, backend="libvips")
    assert spy.calls == 0
    render_image(data, SPEC, backend="pillow")
    assert spy.calls > 0


def test_auto_leaves_small_images_to_pillow(monkeypatch: pytest.MonkeyPatch) -> None:
    spy = _PixelReadSpy(monkeypatch)
    small = _png()  # 240x160: libvips's fixed cost would outweigh its speed
    render_image(small, SPEC, backend="auto")
    assert spy.calls > 0
    spy.calls = 0
    big = encode(make_photo(1000, 750, 2), "PNG")
    assert imaging.LIBVIPS_MIN_PIXELS <= 1000 * 750
    render_image(big, SPEC, backend="auto")
    assert spy.calls == 0


@pytest.mark.parametrize("where", ["before-pixels", "after-pixels"])
def test_png_orientation_is_honoured_wherever_the_exif_chunk_is(where: str) -> None:
    """Before IDAT libvips decodes and Pillow's header supplies the orientation;
    after IDAT the file is left to Pillow. Both must come out upright."""
    upright = make_photo(240, 160, 4)
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # orientation 6 stores it turned left
    if where == "before-pixels":
        data = encode(stored, "PNG", exif=exif_bytes(6))
    else:
        data = _before_iend(encode(stored, "PNG"), _chunk(b"eXIf", exif_bytes(6)[6:]))
    spec = RenderSpec(renditions=(Rendition("only", 120),), format="png")
    for backend in ("libvips", "pillow"):
        result = render_image(data, spec, backend=backend)
        assert (result.source_width, result.source_height) == (240, 160)
        got = Image.open(io.BytesIO(result.renditions[0].data)).convert("RGB")
        assert got.size == (120, 80)
        assert ssim(got, upright.resize((120, 80), Image.Resampling.LANCZOS)) > 0.95, backend


def test_png_icc_profile_is_kept_by_the_libvips_path() -> None:
    profile = srgb_profile_bytes()
    data = _png(icc_profile=profile)
    assert _png_mode(data) == "RGB"
    for fmt in FORMATS:
        result = render_image(data, RenderSpec(renditions=(Rendition("a", 100),), format=fmt), backend="libvips")
        assert Image.open(io.BytesIO(result.renditions[0].data)).info.get("icc_profile") == profile


# ------------------------------------------------------------- broken inputs


def test_libvips_refuses_a_truncated_png_instead_of_padding_it_with_grey() -> None:
    rows = make_photo(640, 480, 5).tobytes()
    raw = b"".join(b"\0" + rows[y * 1920 : (y + 1) * 1920] for y in range(480))  # filter byte 0 per row
    stream = zlib.compress(raw)
    header = struct.pack(">IIBBBBB", 640, 480, 8, 2, 0, 0, 0)
    # Every chunk well formed and CRC-correct, but the deflate stream stops a third of the way through.
    cut = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", stream[: len(stream) // 3])
    cut += _chunk(b"IEND", b"")
    assert _png_mode(cut) == "RGB"
    with pytest.raises(VIPS.Error):
        libvips.resize(libvips.open_png(VIPS, cut, "RGB"), (0, 0, 640, 480), (320, 240))
    # ...so render_image falls back to Pillow, which names the problem.
    with pytest.raises(ImageProcessingError) as caught:
        render_image(cut, SPEC, backend="libvips")
    assert caught.value.kind in ("truncated", "corrupt")
    with pytest.raises(ImageProcessingError) as pillow_says:
        render_image(cut, SPEC, backend="pillow")
    assert caught.value.kind == pillow_says.value.kind


def test_damaged_pixel_data_gives_the_same_error_on_both_backends() -> None:
    data = bytearray(encode(make_photo(320, 240, 6), "PNG"))
    idat = data.index(b"IDAT") + 4
    data[idat + 200 : idat + 260] = bytes(60)  # zeroed deflate stream (CRC left stale)
    kinds = {}
    for backend in ("libvips", "pillow"):
        with pytest.raises(ImageProcessingError) as caught:
            render_image(bytes(data), SPEC, backend=backend)
        kinds[backend] = caught.value.kind
    assert kinds["libvips"] == kinds["pillow"] == "corrupt"


# ----------------------------------------------------------- same results


@pytest.mark.parametrize("fmt", FORMATS)
def test_backends_agree_on_every_sample_image(fmt: OutputFormat) -> None:
    spec = RenderSpec(renditions=SPEC.renditions, format=fmt)
    for name, data in sample_set():
        try:
            pillow = render_image(data, spec, backend="pillow")
        except ImageProcessingError as error:
            with pytest.raises(ImageProcessingError) as caught:
                render_image(data, spec, backend="libvips")
            assert caught.value.kind == error.kind, name
            continue
        vips = render_image(data, spec, backend="libvips")
        assert (vips.source_width, vips.source_height, vips.source_format) == (
            pillow.source_width,
            pillow.source_height,
            pillow.source_format,
        )
        for a, b in zip(pillow.renditions, vips.renditions, strict=True):
            assert (a.name, a.width, a.height, a.content_type) == (b.name, b.width, b.height, b.content_type)
            im_a, im_b = Image.open(io.BytesIO(a.data)), Image.open(io.BytesIO(b.data))
            assert im_a.mode == im_b.mode, (name, a.name)
            assert im_a.info.get("icc_profile") == im_b.info.get("icc_profile"), (name, a.name)
            if min(a.width, a.height) >= 7:  # SSIM needs one 7x7 window
                assert ssim(_flattened(a.data), _flattened(b.data)) >= 0.97, (name, fmt, a.name)


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
def test_interlaced_pngs_render_the_same_through_libvips(mode: str) -> None:
    data = _png(mode, interlace=1)
    spec = RenderSpec(renditions=(Rendition("a", 100), Rendition("sq", 32, 32, "cover")), format="png")
    vips, pillow = render_image(data, spec, backend="libvips"), render_image(data, spec, backend="pillow")
    for a, b in zip(vips.renditions, pillow.renditions, strict=True):
        assert (a.width, a.height) == (b.width, b.height)
        assert ssim(_flattened(a.data), _flattened(b.data)) >= 0.97, (mode, a.name)


def test_libvips_renders_are_thread_safe_and_deterministic() -> None:
    inputs = [encode(make_photo(800, 600, seed), "JPEG") for seed in range(4)] + [_png("RGBA"), _png("L")]
    expected = [render_image(data, SPEC, backend="libvips") for data in inputs]
    with ThreadPoolExecutor(4) as pool:
        again = list(pool.map(lambda data: render_image(data, SPEC, backend="libvips"), inputs * 3))
    assert again == expected * 3


# --------------------------------------------------------------- choosing


def test_backend_names_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown image backend"):
        render_image(_png(), SPEC, backend="vips")
    with pytest.raises(ValueError, match="IMAGE_BACKEND"):
        AppSettings.from_env({"IMAGE_BACKEND": "fast"})
    assert AppSettings.from_env({"IMAGE_BACKEND": " Pillow "}).image_backend == "pillow"
    assert AppSettings.from_env({}).image_backend == "auto"
    assert libvips.availability().startswith("libvips 8.")


def test_without_pyvips_auto_is_pillow_and_libvips_is_a_clear_error() -> None:
    """A real interpreter where ``import pyvips`` fails, as on a deployment without the wheel."""
    script = textwrap.dedent(
        """
        import sys
        sys.modules["pyvips"] = None  # makes `import pyvips` raise ImportError
        from imagebatch import imaging, libvips
        from imagebatch.imaging import render_image
        from devtools.sample_images import encode, make_photo
        from imagebatch.specs import RenderSpec, Rendition
        data = encode(make_photo(120, 80, 1), "PNG")
        spec = RenderSpec(renditions=(Rendition("a", 60),))
        assert render_image(data, spec).renditions[0].width == 60
        assert render_image(data, spec, backend="pillow").renditions[0].width == 60
        try:
            render_image(data, spec, backend="libvips")
        except libvips.LibvipsUnavailableError as error:
            print("ERROR", error)
        print("STATUS", libvips.availability())
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert "ERROR IMAGE_BACKEND=libvips but libvips cannot be loaded (ModuleNotFoundError" in done.stdout
    assert "pip install 'pyvips[binary]'" in done.stdout
    assert "STATUS libvips unavailable: ModuleNotFoundError" in done.stdout


def test_a_forked_child_renders_with_pillow_instead_of_hanging_in_libvips() -> None:
    """fork() copies libvips's locks but not its threads; multiprocessing forks by default on Linux."""
    script = textwrap.dedent(
        """
        import os, sys
        from imagebatch import imaging, libvips
        from imagebatch.imaging import render_image
        from devtools.sample_images import encode, make_photo
        from imagebatch.specs import RenderSpec, Rendition
        data = encode(make_photo(640, 480, 1), "PNG")
        spec = RenderSpec(renditions=(Rendition("a", 100),))
        render_image(data, spec, backend="libvips")  # libvips is now running in this process
        pid = os.fork()
        if pid == 0:
            ok = render_image(data, spec).renditions[0].width == 100
            try:
                render_image(data, spec, backend="libvips")
                ok = False
            except libvips.LibvipsUnavailableError as error:
                ok = ok and "fork" in str(error)
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        assert render_image(data, spec, backend="libvips").renditions[0].width == 100  # parent unaffected
        print("CHILD", os.waitstatus_to_exitcode(status))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert "CHILD 0" in done.stdout, done.stdout + done.stderr


# ------------------------------------------------- JPEGs: one decode, also the scan check

_GEOMETRIES = {
    "contain": (Rendition("a", 400), Rendition("b", 100)),
    "contain-odd": (Rendition("a", 333), Rendition("sq", 50, 50, "cover")),
    "largest-is-a-crop": (Rendition("wide", 300, 100, "cover"),),
    "square-crop": (Rendition("sq", 200, 200, "cover"), Rendition("t", 90)),
}
_SIZES = ((1001, 757), (1203, 901), (640, 1281), (1600, 1200))


@pytest.mark.parametrize("geometry", sorted(_GEOMETRIES))
@pytest.mark.parametrize("size", _SIZES, ids=[f"{w}x{h}" for w, h in _SIZES])
def test_libvips_jpeg_renders_decode_every_row(size: tuple[int, int], geometry: str) -> None:
    """libjpeg can only warn about data it reads, and libvips decodes JPEGs
    sequentially, reading only the rows the pipeline asks for. Every libvips JPEG
    render starts with a full-frame resample, which must reach the last row:
    after it the sequential loader refuses to go back to the last row."""
    data = encode(make_photo(*size, 5), "JPEG", quality=85)
    spec = RenderSpec(renditions=_GEOMETRIES[geometry])
    loaded = []
    original = VIPS.Image.new_from_source

    def spy(*args: object, **kwargs: object) -> object:
        image = original(*args, **kwargs)
        loaded.append(image)
        return image

    im = imaging._open(data, imaging.MAX_PIXELS_DEFAULT)
    route = imaging._route(im, data, spec, VIPS, imaging.MAX_DECODE_BYTES_DEFAULT)
    assert route.stream == "jpeg"
    VIPS.Image.new_from_source = spy
    try:
        imaging._render(im, data, spec, imaging._LibvipsResampler(VIPS), route)
    finally:
        VIPS.Image.new_from_source = original
    assert len(loaded) == 1  # one decode: no second pass for the check
    with pytest.raises(VIPS.Error, match="out of order read"):
        VIPS.Region.new(loaded[0]).fetch(0, loaded[0].height - 1, loaded[0].width, 1)


@pytest.mark.parametrize("geometry", sorted(_GEOMETRIES))
@pytest.mark.parametrize("backend", ["libvips", "pillow"])
def test_a_jpeg_cut_in_its_last_rows_is_refused(geometry: str, backend: str) -> None:
    data = encode(make_photo(1203, 901, 5), "JPEG", quality=85)
    spec = RenderSpec(renditions=_GEOMETRIES[geometry])
    for cut in (data[:-2] + b"\0" * 0, data[:-40], data[:-40] + b"\xff\xd9"):
        with pytest.raises(ImageProcessingError) as caught:
            render_image(cut, spec, backend=backend)
        assert caught.value.kind in ("truncated", "corrupt"), caught.value.message


def test_libvips_jpeg_damage_is_classified_without_a_pillow_redo(monkeypatch: pytest.MonkeyPatch) -> None:
    """A damaged scan found by the render's own decode is refused at once."""
    from tests.test_hostile_images import DAMAGED

    redone = []
    monkeypatch.setattr(imaging.decode, "_check_jpeg_scan", lambda data: redone.append(data))
    for name in ("marker-in-scan.jpg", "zeroed-scan.jpg", "scan-cut.jpg"):
        data, kind = DAMAGED[name]
        with pytest.raises(ImageProcessingError) as caught:
            render_image(data, SPEC, backend="libvips")
        assert caught.value.kind == kind, (name, caught.value.message)
    assert redone == []
