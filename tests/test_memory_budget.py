"""Memory: running short of it is transient (raised for the retry policy), never a
broken file; decoding stays within a per-image bound; a per-worker budget admits
images by their estimated decode memory.
"""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from PIL import Image

from activities.process_image import process_image
from devtools.sample_images import encode, exif_bytes, make_photo
from imagebatch import imaging, libvips
from imagebatch.imaging import ImageProcessingError, decode, render_image, routing
from imagebatch.memory_budget import MemoryBudget, process_budget
from imagebatch.messages import ProcessImageInput
from imagebatch.settings import AppSettings
from imagebatch.specs import OutputFormat, RenderSpec, Rendition, SourceBlob

SPEC = RenderSpec(renditions=(Rendition("large", 400), Rendition("thumb", 100)))


# ------------------------------------------------------- memory errors are transient


@pytest.mark.parametrize(
    "error",
    [
        MemoryError(),
        OSError("out of memory error when reading image file"),  # Pillow codec status -9
        OSError("could not create decoder object"),  # libwebp, valid container: the canvas allocation failed
    ],
    ids=["MemoryError", "codec-out-of-memory", "webp-decoder-object"],
)
@pytest.mark.parametrize("backend", ["pillow", "libvips"])
def test_decoder_allocation_failures_raise_memory_error(
    monkeypatch: pytest.MonkeyPatch, error: Exception, backend: str
) -> None:
    data = encode(make_photo(900, 600, 1), "WEBP")

    def fail(self: Image.Image) -> None:
        raise error

    monkeypatch.setattr(Image.Image, "load", fail)
    with pytest.raises(MemoryError):
        render_image(data, SPEC, backend=backend)


def test_the_same_webp_message_for_a_broken_container_is_corrupt() -> None:
    data = bytearray(encode(make_photo(200, 150, 1), "WEBP"))
    data[12:16] = b"JUNK"  # the first chunk is neither VP8, VP8L nor VP8X
    with pytest.raises(ImageProcessingError) as caught:
        render_image(bytes(data), SPEC, backend="pillow")
    assert caught.value.kind == "corrupt"


def test_a_libvips_allocation_failure_is_not_retried_on_pillow(monkeypatch: pytest.MonkeyPatch) -> None:
    vips = libvips.resolve("libvips")

    def out_of_memory(*args: object, **kwargs: object) -> None:
        raise vips.Error("unable to call thumbnail_image\n  vips_malloc: out of memory --- size == 768MB")

    monkeypatch.setattr(libvips, "resize", out_of_memory)
    redone = []
    original_open = imaging._open
    monkeypatch.setattr(imaging, "_open", lambda *a: redone.append(1) or original_open(*a))
    with pytest.raises(MemoryError):
        render_image(encode(make_photo(900, 600, 1), "PNG"), SPEC, backend="libvips")
    assert len(redone) == 1  # opened once; no second attempt on Pillow


_UNDER_RLIMIT = textwrap.dedent(
    """
    import resource, sys
    from PIL import Image
    from imagebatch import libvips
    from imagebatch.imaging import ImageProcessingError, render_image
    from imagebatch.specs import RenderSpec
    libvips.resolve("libvips")  # loaded before the limit, as in a warm worker
    big = Image.linear_gradient("L").resize((2048, 750)).convert("RGB").resize((16383, 6000))
    buffer = __import__("io").BytesIO()
    big.save(buffer, "WEBP", quality=80, method=0)
    data = buffer.getvalue()
    del big
    with open("/proc/self/status") as status:
        vm = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    limit = vm + 300 * 2**20  # far less than the two 393 MB RGBA canvases libwebp allocates
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    for backend in sys.argv[1:]:
        try:
            # No per-image bound here: Pillow's decoder must really try (and fail) to allocate.
            render_image(data, RenderSpec(), backend=backend, max_decode_bytes=2**40)
            print(backend, "processed")
        except ImageProcessingError as error:
            print(backend, "permanent", error.kind, error.message)
        except MemoryError as error:
            print(backend, "transient", error)
    """
)


def test_a_valid_webp_under_an_address_space_limit_is_never_corrupt() -> None:
    """The issue's reproduction: a 16383x6000 WebP under RLIMIT_AS was recorded as corrupt."""
    done = subprocess.run(
        [sys.executable, "-c", _UNDER_RLIMIT, "pillow", "auto", "libvips"],
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    assert lines["pillow"].startswith("transient"), done.stdout  # Pillow's decoder cannot fit
    for backend in ("auto", "libvips"):
        assert lines[backend].split()[0] in ("transient", "processed"), done.stdout


def test_process_image_raises_memory_errors_for_the_retry_policy(
    monkeypatch: pytest.MonkeyPatch, blob_service, container_factory
) -> None:
    source, output = container_factory(), container_factory()
    blob_service.get_blob_client(source, "a.png").upload_blob(encode(make_photo(300, 200, 1), "PNG"))

    def fail(self: Image.Image) -> None:
        raise MemoryError

    monkeypatch.setattr(Image.Image, "load", fail)
    work = ProcessImageInput(source, SourceBlob("a.png"), output, "", SPEC)
    with pytest.raises(MemoryError):
        process_image(work, blob_service, AppSettings(image_backend="pillow"))
    assert list(blob_service.get_container_client(output).list_blobs()) == []


# ------------------------------------------------------------ a memory bound per image

VIPS = libvips.resolve("libvips")


def _rendered(data: bytes, spec: RenderSpec = SPEC, **options: Any) -> list[Image.Image]:
    result = render_image(data, spec, **options)
    return [Image.open(io.BytesIO(r.data)).convert("RGB") for r in result.renditions]


def _agree(a: list[Image.Image], b: list[Image.Image], floor: float = 0.97) -> None:
    from tests.test_imaging import ssim

    for x, y in zip(a, b, strict=True):
        assert x.size == y.size
        assert ssim(x, y) > floor, ssim(x, y)


def _vips_png16(mode: str) -> bytes:
    photo = make_photo(900, 600, 5)
    image = VIPS.Image.new_from_memory(photo.tobytes(), 900, 600, 3, "uchar")
    image = (image.cast("ushort") * 257).cast("ushort")
    if mode == "RGBA":
        image = image.bandjoin(40000)
    return image.copy(interpretation="rgb16").pngsave_buffer(bitdepth=16)


def _streamable() -> dict[str, bytes]:
    photo = make_photo(900, 600, 5)
    grey16 = photo.convert("L").point(lambda v: v * 200).convert("I").convert("I;16")
    return {
        "palette.png": encode(photo.quantize(128, dither=Image.Dither.NONE), "PNG"),
        "palette-trns.png": encode(photo.quantize(128, dither=Image.Dither.NONE), "PNG", transparency=3),
        "rgb-trns.png": encode(photo, "PNG", transparency=(1, 2, 3)),
        "rgb16.png": _vips_png16("RGB"),
        "rgba16.png": _vips_png16("RGBA"),
        "grey16.png": encode(grey16, "PNG"),
        "rgb.tiff": encode(photo, "TIFF", compression="tiff_deflate"),
        "rgba.tiff": encode(photo.convert("RGBA"), "TIFF"),
        "rgb.webp": encode(photo, "WEBP", quality=90),
        "rgba.webp": encode(photo.convert("RGBA"), "WEBP", quality=90),
    }


STREAMABLE = _streamable()


@pytest.mark.parametrize("name", sorted(STREAMABLE))
@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_streamed_decoding_gives_what_pillow_gives(
    monkeypatch: pytest.MonkeyPatch, name: str, fmt: OutputFormat
) -> None:
    """Each libvips streamed decode (chosen for images Pillow cannot decode within the
    bound) normalises modes, palettes, 16-bit data and alpha exactly as Pillow does."""
    data = STREAMABLE[name]
    spec = RenderSpec(renditions=SPEC.renditions, format=fmt)
    reference = [Image.open(io.BytesIO(r.data)) for r in render_image(data, spec, backend="pillow").renditions]
    routes = []
    original = imaging._route

    def spy(*args: Any) -> object:
        route = original(*args)
        routes.append(route)
        return route

    monkeypatch.setattr(routing, "_pillow_route", lambda *a, **k: imaging._Route(None, 1, 1.0, 2**40))
    monkeypatch.setattr(imaging, "_route", spy)
    streamed = [Image.open(io.BytesIO(r.data)) for r in render_image(data, spec, backend="libvips").renditions]
    assert routes and routes[0].stream is not None, routes
    assert [im.mode for im in streamed] == [im.mode for im in reference]  # alpha kept or dropped alike
    _agree([im.convert("RGB") for im in reference], [im.convert("RGB") for im in streamed])


def test_streamed_png_honours_exif_after_the_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_imaging_libvips import _before_iend, _chunk

    data = _before_iend(encode(make_photo(600, 400, 2).quantize(64), "PNG"), _chunk(b"eXIf", exif_bytes(6)[6:]))
    monkeypatch.setattr(routing, "_pillow_route", lambda *a, **k: imaging._Route(None, 1, 1.0, 2**40))
    result = render_image(data, SPEC, backend="libvips")
    assert (result.source_width, result.source_height) == (400, 600)
    assert (result.renditions[0].width, result.renditions[0].height) == (400, 600)


@pytest.mark.parametrize(
    "image",
    [
        make_photo(1200, 900, 4).quantize(128, dither=Image.Dither.NONE),
        make_photo(1200, 900, 4).convert("L"),
        make_photo(1200, 900, 4).convert("L").point(lambda v: v * 250).convert("I").convert("I;16"),
        make_photo(1200, 900, 4).convert("1", dither=Image.Dither.NONE),
    ],
    ids=["palette", "grey", "grey16", "one-bit"],
)
@pytest.mark.parametrize("fmt", ["GIF", "PNG", "BMP"])
def test_strip_reduction_gives_what_the_whole_frame_gives(
    monkeypatch: pytest.MonkeyPatch, image: Image.Image, fmt: str
) -> None:
    if fmt in ("GIF", "BMP") and image.mode == "I;16":
        pytest.skip("GIF and BMP have no 16-bit grey")
    data = encode(image, fmt)
    small = RenderSpec(renditions=(Rendition("a", 200), Rendition("b", 60, 60, "cover")))  # box-reduce by 3
    whole = _rendered(data, small, backend="pillow")
    monkeypatch.setattr(routing, "STRIP_MIN_BYTES", 0)
    strips = []
    original = decode._reduce_in_strips
    monkeypatch.setattr(decode, "_reduce_in_strips", lambda *a: strips.append(a[1]) or original(*a))
    for backend in ("pillow", "libvips"):
        _agree(whole, _rendered(data, small, backend=backend), floor=0.96)
    assert strips and all(f >= 2 for f in strips)


def test_what_cannot_be_bounded_is_refused_with_the_limit_named() -> None:
    data = encode(make_photo(2000, 1500, 1), "PNG")  # Pillow's RGB frame alone: 12 MB
    with pytest.raises(ImageProcessingError) as caught:
        render_image(data, SPEC, backend="pillow", max_decode_bytes=10 * 2**20)
    assert caught.value.kind == "too_large"
    assert "IMAGE_MAX_DECODE_MB" in caught.value.message and "10 MB" in caught.value.message
    # libvips streams the same file in far less, so it is accepted there.
    assert render_image(data, SPEC, backend="libvips", max_decode_bytes=64 * 2**20).renditions


@pytest.mark.parametrize("backend", ["pillow", "libvips"])
def test_progressive_jpegs_are_estimated_with_their_coefficient_buffer(backend: str) -> None:
    """libjpeg holds every coefficient of a progressive JPEG at any scale (2 bytes
    a sample: 3 B/px at 4:2:0); a 99 MP one measured 349 MiB, so it is refused."""
    photo = make_photo(1200, 900, 4)
    baseline = imaging.decode_estimate(encode(photo, "JPEG", quality=85), SPEC, backend=backend)
    progressive = imaging.decode_estimate(encode(photo, "JPEG", quality=85, progressive=True), SPEC, backend=backend)
    assert progressive - baseline == 1200 * 900 * 3


def test_decode_estimate_reads_only_the_header() -> None:
    data = encode(make_photo(2000, 1500, 1), "PNG")
    pillow = imaging.decode_estimate(data, SPEC, backend="pillow")
    streamed = imaging.decode_estimate(data, SPEC, backend="libvips")
    assert 12_000_000 < pillow < imaging.MAX_DECODE_BYTES_DEFAULT
    assert 0 < streamed < imaging.MAX_DECODE_BYTES_DEFAULT
    assert imaging.decode_estimate(b"not an image", SPEC) == 0
    assert imaging.decode_estimate(data, SPEC, max_pixels=1000) == 0


# ------------------------------------------------------------ a memory budget per worker


def _run_in_threads(budget: MemoryBudget, costs: list[int], release: dict[int, threading.Event]) -> tuple:
    """Start one thread per cost, in order; each holds its admission until released."""
    admitted: list[int] = []
    lock = threading.Lock()

    def work(index: int) -> None:
        with budget.admit(costs[index]):
            with lock:
                admitted.append(index)
            release[index].wait(10)

    threads = []
    for index in range(len(costs)):
        thread = threading.Thread(target=work, args=(index,), daemon=True)
        thread.start()
        threads.append(thread)
        _until(lambda i=index: i in admitted or (budget.waiting >= 1 and _queued(budget, i, admitted)))
    return threads, admitted


def _queued(budget: MemoryBudget, index: int, admitted: list[int]) -> bool:
    return budget.waiting + len(admitted) >= index + 1


def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.005)


def test_threads_wait_until_their_estimate_fits_and_are_admitted_in_order() -> None:
    budget = MemoryBudget(100)
    costs = [60, 30, 50, 10]  # 60+30 fit; 50 must wait, and 10 waits behind it (first come, first served)
    release = {i: threading.Event() for i in range(len(costs))}
    threads, admitted = _run_in_threads(budget, costs, release)
    _until(lambda: budget.waiting == 2)
    assert admitted == [0, 1] and budget.in_use == 90
    time.sleep(0.05)
    assert admitted == [0, 1], "a waiting image was admitted over budget"
    release[1].set()  # 60 in use: 50 still does not fit
    _until(lambda: budget.in_use == 60)
    assert admitted == [0, 1] and budget.waiting == 2
    release[0].set()  # nothing in use: 50 goes in, and 10 right after it
    _until(lambda: admitted == [0, 1, 2, 3])
    assert budget.in_use == 60
    release[2].set()
    release[3].set()
    for thread in threads:
        thread.join(5)
    assert budget.in_use == 0 and budget.waiting == 0


def test_an_image_above_the_whole_budget_runs_alone() -> None:
    budget = MemoryBudget(100)
    costs = [20, 500, 20]
    release = {i: threading.Event() for i in range(len(costs))}
    threads, admitted = _run_in_threads(budget, costs, release)
    _until(lambda: budget.waiting == 2)
    assert admitted == [0]
    release[0].set()
    _until(lambda: admitted == [0, 1])
    assert budget.in_use == 100  # it holds the whole budget ...
    time.sleep(0.05)
    assert admitted == [0, 1]  # ... so the next one waits for it
    release[1].set()
    _until(lambda: admitted == [0, 1, 2])
    release[2].set()
    for thread in threads:
        thread.join(5)
    assert budget.in_use == 0


def test_admission_is_released_when_the_render_fails() -> None:
    budget = MemoryBudget(100)
    with pytest.raises(RuntimeError), budget.admit(80):
        raise RuntimeError("decode failed")
    assert budget.in_use == 0
    with budget.admit(80) as held:
        assert held == 80


def test_process_budget_is_shared_per_process() -> None:
    assert process_budget(123 * 2**20) is process_budget(123 * 2**20)
    assert process_budget(124 * 2**20) is not process_budget(123 * 2**20)
    with pytest.raises(ValueError):
        MemoryBudget(0)


def test_settings_read_the_memory_limits() -> None:
    settings = AppSettings.from_env({"IMAGE_MAX_DECODE_MB": "300", "IMAGE_MEMORY_BUDGET_MB": "2048"})
    assert (settings.max_decode_mb, settings.memory_budget_mb) == (300, 2048)
    assert (AppSettings.from_env({}).max_decode_mb, AppSettings.from_env({}).memory_budget_mb) == (256, 1024)
    with pytest.raises(ValueError):
        AppSettings(memory_budget_mb=0)


def test_process_image_waits_for_the_budget(monkeypatch: pytest.MonkeyPatch, blob_service, container_factory) -> None:
    """Two ProcessImage calls whose estimates do not fit together decode one after the other."""
    source, output = container_factory(), container_factory()
    for name in ("a.png", "b.png"):
        blob_service.get_blob_client(source, name).upload_blob(encode(make_photo(1200, 800, 2), "PNG"))
    settings = AppSettings(image_backend="pillow", memory_budget_mb=7)  # a unique, small budget
    estimate = imaging.decode_estimate(encode(make_photo(1200, 800, 2), "PNG"), SPEC, backend="pillow")
    assert estimate > 4 * 2**20  # so two of them cannot fit in 7 MB together
    inside, peak = [0], [0]
    lock = threading.Lock()
    original = render_image

    def slow_render(*args: Any, **kwargs: Any) -> object:
        with lock:
            inside[0] += 1
            peak[0] = max(peak[0], inside[0])
        time.sleep(0.3)
        try:
            return original(*args, **kwargs)
        finally:
            with lock:
                inside[0] -= 1

    monkeypatch.setattr("activities.process_image.render_image", slow_render)

    def run(name: str) -> dict:
        return process_image(ProcessImageInput(source, SourceBlob(name), output, "", SPEC), blob_service, settings)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(run, ["a.png", "b.png"]))
    assert [r["status"] for r in results] == ["processed", "processed"]
    assert peak[0] == 1  # never both decoding at once
    assert process_budget(7 * 2**20).in_use == 0
