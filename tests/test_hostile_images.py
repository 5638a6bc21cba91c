"""Every file of the hostile corpus ends exactly as the corpus says: rendered,
or refused with the precise error kind -- for every output format, and even
when the host escalates warnings to errors.
"""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image

from activities.process_image import process_image
from devtools.sample_images import encode, hostile_corpus, make_photo, oriented_jpeg
from imagebatch.imaging import ImageProcessingError, render_image
from imagebatch.messages import ProcessImageInput
from imagebatch.settings import AppSettings
from imagebatch.specs import FORMATS, RenderSpec, Rendition, SourceBlob

CORPUS = hostile_corpus()
SPECS = {
    fmt: RenderSpec(renditions=(Rendition("large", 1600), Rendition("square", 64, 64, "cover")), format=fmt)
    for fmt in FORMATS
}

# Every test here runs once per image backend (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("image_backend")


def _outcome(data: bytes, spec: RenderSpec) -> str:
    try:
        result = render_image(data, spec)
    except ImageProcessingError as error:
        assert error.message and "\n" not in error.message and "Traceback" not in error.message
        assert error.message.endswith(".") and len(error.message) < 200
        return error.kind
    for rendition in result.renditions:
        im = Image.open(io.BytesIO(rendition.data))
        im.load()
        assert im.size == (rendition.width, rendition.height)
    return "ok"


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize(("name", "data", "expected"), CORPUS, ids=[name for name, _, _ in CORPUS])
def test_hostile_file(name: str, data: bytes, expected: str) -> None:
    for fmt, spec in SPECS.items():
        assert _outcome(data, spec) == expected, (name, fmt)


def test_corpus_covers_every_error_kind() -> None:
    kinds = {expected for _, _, expected in CORPUS}
    assert kinds == {"ok", "empty", "unsupported", "corrupt", "truncated", "too_large"}
    assert len({name for name, _, _ in CORPUS}) == len(CORPUS)


@pytest.mark.filterwarnings("error")
def test_randomly_damaged_files_only_ever_raise_image_processing_error() -> None:
    """A small deterministic fuzz: byte flips and cuts in every accepted format.

    Whatever the damage, the outcome is a rendering or an ImageProcessingError;
    no Pillow exception or warning may escape. (3000 cases ran clean while
    developing; 240 keep the suite fast.)
    """
    photo = make_photo(120, 90, 1)
    seeds = [
        oriented_jpeg(photo, 6),
        encode(photo, "JPEG", progressive=True),
        encode(photo.convert("RGBA"), "PNG"),
        encode(photo.convert("P"), "GIF"),
        encode(photo, "WEBP"),
        encode(photo, "TIFF"),
        encode(photo, "TIFF", compression="tiff_deflate"),
        encode(photo, "BMP"),
    ]
    spec = RenderSpec(renditions=(Rendition("a", 60), Rendition("b", 30, 30, "cover")))
    rng = random.Random(1234)
    outcomes = set()
    for _ in range(240):
        damaged = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 8)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        if rng.random() < 0.3:
            damaged = damaged[: rng.randrange(len(damaged))]
        outcomes.add(_outcome(bytes(damaged), spec))
    assert {"ok", "corrupt", "truncated"} <= outcomes


# ------------------------------------------------ damage libjpeg only warns about


def _scan_start(jpeg: bytes) -> int:
    sos = jpeg.index(b"\xff\xda")
    return sos + 2 + int.from_bytes(jpeg[sos + 2 : sos + 4], "big")


def _in_scan(jpeg: bytes, fraction: float) -> int:
    start = _scan_start(jpeg)
    return start + int((len(jpeg) - 2 - start) * fraction)


def _damaged_jpegs() -> dict[str, tuple[bytes, str]]:
    """JPEGs that Pillow decodes without any error or warning, grey where data is missing."""
    baseline = encode(make_photo(1200, 900, 3), "JPEG", quality=85)
    progressive = encode(make_photo(1200, 900, 3), "JPEG", quality=85, progressive=True)
    mid = _in_scan(baseline, 2 / 3)
    marker = bytearray(baseline)
    marker[mid : mid + 2] = b"\xff\xd9"  # an end-of-image marker two thirds into the scan
    zeroed = bytearray(baseline)
    zeroed[mid : mid + 64] = bytes(64)
    zeroed_progressive = bytearray(progressive)
    at = _in_scan(progressive, 2 / 3)
    zeroed_progressive[at : at + 64] = bytes(64)
    return {
        "marker-in-scan.jpg": (bytes(marker), "corrupt"),
        "zeroed-scan.jpg": (bytes(zeroed), "corrupt"),
        "zeroed-scan-progressive.jpg": (bytes(zeroed_progressive), "corrupt"),
        "scan-cut-then-closed.jpg": (baseline[:mid] + b"\xff\xd9", "corrupt"),
        "scan-cut.jpg": (baseline[:mid], "truncated"),
        "no-end-marker.jpg": (baseline[:-2], "truncated"),
    }


DAMAGED = _damaged_jpegs()


def test_pillow_alone_renders_damaged_scans_without_a_word() -> None:
    """The problem being solved: Pillow decodes these with no exception and no warning."""
    for name in ("marker-in-scan.jpg", "scan-cut-then-closed.jpg"):
        im = Image.open(io.BytesIO(DAMAGED[name][0]))
        im.load()
        bottom = im.convert("L").crop((0, im.height - 200, im.width, im.height))
        assert bottom.getextrema() == (128, 128), name  # the lower part is solid mid grey


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("name", sorted(DAMAGED))
def test_damaged_jpeg_scans_are_refused(name: str) -> None:
    data, expected = DAMAGED[name]
    spec = RenderSpec(renditions=(Rendition("large", 800), Rendition("thumb", 100)))
    with pytest.raises(ImageProcessingError) as caught:
        render_image(data, spec)
    assert caught.value.kind == expected, caught.value.message
    assert caught.value.message.endswith(".") and len(caught.value.message) < 200


def test_harmless_libjpeg_warnings_still_render() -> None:
    """Padding before the end marker and bytes after it change no pixel."""
    jpeg = encode(make_photo(640, 480, 4), "JPEG", quality=85)
    spec = RenderSpec(renditions=(Rendition("a", 200),))
    for data in (jpeg[:-2] + b"\0" * 16 + jpeg[-2:], jpeg + b"trailing bytes" * 4):
        assert render_image(data, spec).renditions[0].width == 200


def test_process_image_writes_nothing_for_a_damaged_scan(image_backend: str, blob_service, container_factory) -> None:
    source, output = container_factory(), container_factory()
    spec = RenderSpec(renditions=(Rendition("large", 400), Rendition("thumb", 100)), format="jpeg")
    settings = AppSettings(image_backend="pillow" if image_backend == "pillow" else "auto")
    for name in ("marker-in-scan.jpg", "zeroed-scan-progressive.jpg", "scan-cut.jpg"):
        blob_service.get_blob_client(source, name).upload_blob(DAMAGED[name][0], overwrite=True)
        result = process_image(
            ProcessImageInput(source, SourceBlob(name), output, "web/", spec),
            blob_service,
            settings,
        )
        assert result["status"] == "failed", result
        assert result["kind"] == DAMAGED[name][1], result
    assert list(blob_service.get_container_client(output).list_blobs()) == []


# ------------------------------------------------------------ kinds that say what happened


def _gif_0x0() -> bytes:
    screen = b"GIF89a" + (0).to_bytes(2, "little") * 2 + b"\x00\x00\x00"
    return screen + b",\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x02D\x01\x00;"


def _header_cases() -> list[tuple[str, bytes, str]]:
    jpeg = encode(make_photo(64, 48, 3), "JPEG")
    sof = jpeg.index(b"\xff\xc0")
    jpeg_0x0 = jpeg[: sof + 5] + bytes(4) + jpeg[sof + 9 :]
    png = encode(make_photo(64, 48, 3), "PNG")
    noise = random.Random(3).randbytes(197)
    return [
        ("gif-0x0-complete.gif", _gif_0x0(), "corrupt"),  # 35 bytes, but nothing is missing
        ("gif-0x0-screen-only.gif", _gif_0x0()[:13], "corrupt"),
        ("gif-cut-in-screen.gif", _gif_0x0()[:10], "truncated"),
        ("jpeg-first-200-bytes.jpg", jpeg[:200], "truncated"),  # really ends inside its data
        ("jpeg-magic-then-noise.jpg", b"\xff\xd8\xff" + noise, "corrupt"),  # 200 bytes of garbage
        ("jpeg-magic-then-zeros.jpg", b"\xff\xd8\xff" + bytes(197), "corrupt"),
        ("jpeg-end-before-scan.jpg", jpeg[:sof] + b"\xff\xd9", "corrupt"),
        ("jpeg-declares-0x0.jpg", jpeg_0x0, "corrupt"),
        ("jpeg-cut-in-segment.jpg", jpeg[:30], "truncated"),
        ("png-declares-0x0.png", png[:16] + bytes(8) + png[24:], "corrupt"),
        ("png-cut-in-ihdr.png", png[:30], "truncated"),
    ]


@pytest.mark.parametrize(("name", "data", "expected"), _header_cases(), ids=[c[0] for c in _header_cases()])
def test_header_failures_are_named_by_what_the_header_says(name: str, data: bytes, expected: str) -> None:
    with pytest.raises(ImageProcessingError) as caught:
        render_image(data, SPECS["jpeg"])
    assert caught.value.kind == expected, (name, caught.value.message)
    if "0x0" in name and "cut" not in name:
        assert "0x0" in caught.value.message
