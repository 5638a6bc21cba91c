"""Memory: running short of it is transient (raised for the retry policy), never a
broken file; decoding stays within a per-image bound; a per-worker budget admits
images by their estimated decode memory.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from PIL import Image

from activities.process_image import process_image
from imagebatch import imaging, libvips
from imagebatch.imaging import ImageProcessingError, render_image
from imagebatch.sample_images import encode, make_photo
from imagebatch.settings import AppSettings
from imagebatch.specs import RenderSpec, Rendition

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
            render_image(data, RenderSpec(), backend=backend)
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
    payload = {
        "source_container": source,
        "source": {"name": "a.png"},
        "output_container": output,
        "output_prefix": "",
        "spec": SPEC.to_dict(),
    }
    with pytest.raises(MemoryError):
        process_image(payload, blob_service, AppSettings(image_backend="pillow"))
    assert list(blob_service.get_container_client(output).list_blobs()) == []
