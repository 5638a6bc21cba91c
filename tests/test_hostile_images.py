"""Every file of the hostile corpus ends exactly as the corpus says: rendered,
or refused with the precise error kind -- for every output format, and even
when the host escalates warnings to errors.
"""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image

from imagebatch.imaging import ImageProcessingError, render_image
from imagebatch.sample_images import encode, hostile_corpus, make_photo, oriented_jpeg
from imagebatch.specs import FORMATS, RenderSpec, Rendition

CORPUS = hostile_corpus()
SPECS = {
    fmt: RenderSpec(renditions=(Rendition("large", 1600), Rendition("square", 64, 64, "cover")), format=fmt)  # type: ignore[arg-type]
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
