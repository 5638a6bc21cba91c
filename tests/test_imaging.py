"""The image pipeline against real Pillow: geometry, orientation, modes, colour,
metadata privacy and measured quality. No mocks; every input is generated.
"""

from __future__ import annotations

import io
import pickle
import threading
import warnings

import pytest
from PIL import Image, ImageCms, ImageDraw, ImageFilter, ImageMath, ImageOps, PngImagePlugin

from devtools.sample_images import (
    cmyk_icc_profile,
    encode,
    exif_bytes,
    make_photo,
    oriented_jpeg,
    sample_set,
    srgb_profile_bytes,
)
from imagebatch import imaging
from imagebatch.imaging import (
    ERROR_KINDS,
    EncodedRendition,
    ImageProcessingError,
    RenderResult,
    plan_size,
    render_image,
)
from imagebatch.specs import FORMATS, OutputFormat, RenderSpec, Rendition

LANCZOS = Image.Resampling.LANCZOS

# Every test here runs once per image backend (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("image_backend")


def render(data: bytes, *renditions: Rendition, fmt: OutputFormat = "jpeg", quality: int = 90) -> RenderResult:
    spec = RenderSpec(renditions=renditions or (Rendition("only", 320),), format=fmt, quality=quality)
    return render_image(data, spec)


def decoded(rendition: EncodedRendition) -> Image.Image:
    im = Image.open(io.BytesIO(rendition.data))
    im.load()
    return im


def near(actual: tuple[int, ...] | int, expected: tuple[int, ...] | int, tolerance: int = 12) -> bool:
    a = actual if isinstance(actual, tuple) else (actual,)
    e = expected if isinstance(expected, tuple) else (expected,)
    return len(a) == len(e) and all(abs(x - y) <= tolerance for x, y in zip(a, e, strict=True))


# ---------------------------------------------------------------------------- SSIM
# Structural similarity on luma with 8x8 windows at a stride of 4 (four offset
# grids of non-overlapping blocks), computed with Pillow's float images so the
# test suite needs no numpy. Constants as in Wang et al. 2004.

_C1, _C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2


def ssim(a: Image.Image, b: Image.Image) -> float:
    assert a.size == b.size
    x, y = a.convert("L").convert("F"), b.convert("L").convert("F")
    total, count = 0.0, 0
    for ox, oy in ((0, 0), (4, 0), (0, 4), (4, 4)):
        w, h = (x.width - ox) // 8 * 8, (x.height - oy) // 8 * 8
        if w <= 0 or h <= 0:
            continue
        xs, ys = x.crop((ox, oy, ox + w, oy + h)), y.crop((ox, oy, ox + w, oy + h))
        values = _ssim_map(xs, ys).get_flattened_data()
        total += sum(values)
        count += len(values)
    return total / count


def _ssim_map(x: Image.Image, y: Image.Image) -> Image.Image:
    def product(p: Image.Image, q: Image.Image) -> Image.Image:
        return ImageMath.lambda_eval(lambda e: e["p"] * e["q"], p=p, q=q).reduce(8)

    stats = {"mx": x.reduce(8), "my": y.reduce(8), "xx": product(x, x), "yy": product(y, y), "xy": product(x, y)}
    return ImageMath.lambda_eval(
        lambda e: (
            ((e["mx"] * e["my"] * 2 + _C1) * ((e["xy"] - e["mx"] * e["my"]) * 2 + _C2))
            / (
                (e["mx"] * e["mx"] + e["my"] * e["my"] + _C1)
                * (e["xx"] - e["mx"] * e["mx"] + e["yy"] - e["my"] * e["my"] + _C2)
            )
        ),
        **stats,
    )


def test_ssim_helper_is_sane() -> None:
    photo = make_photo(160, 120, 1)
    noise = Image.frombytes("RGB", photo.size, bytes(range(256)) * (photo.width * photo.height * 3 // 256))
    assert ssim(photo, photo) == pytest.approx(1.0)
    assert ssim(photo, photo.filter(ImageFilter.GaussianBlur(2))) < 0.9
    assert ssim(photo, noise) < 0.1


# ------------------------------------------------------------------------ geometry


@pytest.mark.parametrize(
    ("source", "rendition", "expected"),
    [
        ((4000, 3000), Rendition("w", 1600), (1600, 1200)),
        ((3000, 4000), Rendition("w", 320), (320, 427)),  # 426.67 rounds up
        ((1000, 333), Rendition("w", 320), (320, 107)),  # 106.56 rounds up
        ((1000, 335), Rendition("w", 320), (320, 107)),  # 107.2 rounds down
        ((5000, 1), Rendition("w", 320), (320, 1)),  # never below 1 px
        ((1, 5000), Rendition("w", 320), (1, 5000)),  # narrower than the box: as is
        ((1200, 800), Rendition("w", 1600), (1200, 800)),  # never upscale
        ((4000, 3000), Rendition("box", 800, 800), (800, 600)),
        ((3000, 4000), Rendition("box", 800, 800), (600, 800)),
        ((4000, 1000), Rendition("box", 800, 600), (800, 200)),
        ((300, 200), Rendition("box", 800, 800), (300, 200)),
        ((4000, 3000), Rendition("c", 400, 400, "cover"), (400, 400)),
        ((3000, 4000), Rendition("c", 400, 300, "cover"), (400, 300)),
        ((300, 200), Rendition("c", 800, 800, "cover"), (300, 200)),  # smaller: keeps its size
        ((1000, 500), Rendition("c", 800, 800, "cover"), (800, 500)),  # crops, never upscales
        ((1, 1), Rendition("c", 16, 16, "cover"), (1, 1)),
    ],
)
def test_planned_sizes(source: tuple[int, int], rendition: Rendition, expected: tuple[int, int]) -> None:
    assert plan_size(source, rendition)[0] == expected


def test_encoder_side_limits_keep_aspect() -> None:
    assert plan_size((1, 65535), Rendition("w", 320), "jpeg")[0] == (1, 65500)
    assert plan_size((1, 65535), Rendition("w", 320), "webp")[0] == (1, 16383)
    assert plan_size((2000, 40000), Rendition("w", 1600), "webp")[0] == (819, 16383)
    assert plan_size((1, 65535), Rendition("w", 320), "png")[0] == (1, 65535)


def test_rendered_sizes_are_exact_and_in_spec_order() -> None:
    data = encode(make_photo(1200, 800, 2), "JPEG", quality=90)
    renditions = (
        Rendition("thumb", 320),
        Rendition("large", 1600),
        Rendition("box", 500, 500),
        Rendition("square", 200, 200, "cover"),
        Rendition("banner", 1000, 200, "cover"),
    )
    result = render(data, *renditions)
    got = [(r.name, r.width, r.height, decoded(r).size) for r in result.renditions]
    assert got == [
        ("thumb", 320, 213, (320, 213)),
        ("large", 1200, 800, (1200, 800)),
        ("box", 500, 333, (500, 333)),
        ("square", 200, 200, (200, 200)),
        ("banner", 1000, 200, (1000, 200)),
    ]
    assert (result.source_width, result.source_height, result.source_format) == (1200, 800, "JPEG")
    assert all(r.content_type == "image/jpeg" and r.extension == "jpg" for r in result.renditions)


def _thirds(width: int, height: int) -> Image.Image:
    """Red | green | blue vertical thirds, with a black frame around the middle."""
    im = Image.new("RGB", (width, height), "red")
    draw = ImageDraw.Draw(im)
    draw.rectangle((width // 3, 0, 2 * width // 3 - 1, height), fill="lime")
    draw.rectangle((2 * width // 3, 0, width, height), fill="blue")
    return im


def test_cover_centre_crops_the_overflow() -> None:
    data = encode(_thirds(1200, 400), "PNG")
    result = render(data, Rendition("square", 300, 300, "cover"), Rendition("wide", 600, 100, "cover"), fmt="png")
    square, wide = (decoded(r).convert("RGB") for r in result.renditions)
    assert square.size == (300, 300)
    # The 400x400 centre of a 1200-wide image is exactly the green third.
    for xy in ((2, 2), (297, 2), (150, 150), (2, 297), (297, 297)):
        assert near(square.getpixel(xy), (0, 255, 0)), xy
    # A 6:1 band from a 3:1 source keeps the full width and crops height.
    assert wide.size == (600, 100)
    assert near(wide.getpixel((5, 50)), (255, 0, 0)) and near(wide.getpixel((594, 50)), (0, 0, 255))


def test_cover_of_a_small_source_crops_without_upscaling() -> None:
    data = encode(_thirds(900, 100), "PNG")
    (only,) = render(data, Rendition("c", 300, 300, "cover"), fmt="png").renditions
    im = decoded(only).convert("RGB")
    assert im.size == (300, 100)
    assert near(im.getpixel((0, 50)), (0, 255, 0), 0) and near(im.getpixel((299, 50)), (0, 255, 0), 0)


@pytest.mark.parametrize("size", [(1, 1), (10, 10), (3, 1)])
@pytest.mark.parametrize("fmt", FORMATS)
def test_tiny_images(size: tuple[int, int], fmt: OutputFormat) -> None:
    data = encode(Image.new("RGB", size, (200, 30, 30)), "PNG")
    result = render(data, Rendition("a", 1600), Rendition("b", 16, 16, "cover"), fmt=fmt)
    assert [(r.width, r.height) for r in result.renditions] == [size, size]
    assert near(decoded(result.renditions[0]).convert("RGB").getpixel((0, 0)), (200, 30, 30), 20)


def test_extreme_aspect_ratio_is_capped_per_format() -> None:
    data = encode(Image.new("L", (1, 65535), 128), "PNG")
    sizes = {fmt: render(data, Rendition("w", 320), fmt=fmt).renditions[0] for fmt in FORMATS}
    assert (sizes["jpeg"].width, sizes["jpeg"].height) == (1, 65500)
    assert (sizes["webp"].width, sizes["webp"].height) == (1, 16383)
    assert (sizes["png"].width, sizes["png"].height) == (1, 65535)


# --------------------------------------------------------------------- orientation

_MARKERS = {"tl": (255, 0, 0), "tr": (0, 255, 0), "bl": (0, 0, 255), "br": (255, 255, 0)}


def _marked(width: int, height: int) -> Image.Image:
    """Grey with a distinct colour block in each corner (a quarter of each side)."""
    im = Image.new("RGB", (width, height), (128, 128, 128))
    draw = ImageDraw.Draw(im)
    w, h = width // 4, height // 4
    boxes = {
        "tl": (0, 0, w, h),
        "tr": (width - w, 0, width, h),
        "bl": (0, height - h, w, height),
        "br": (width - w, height - h, width, height),
    }
    for corner, box in boxes.items():
        draw.rectangle(box, fill=_MARKERS[corner])
    return im


def _corner_colours(im: Image.Image) -> dict[str, tuple[int, ...]]:
    im = im.convert("RGB")
    dx, dy = max(1, im.width // 10), max(1, im.height // 10)
    points = {
        "tl": (dx, dy),
        "tr": (im.width - 1 - dx, dy),
        "bl": (dx, im.height - 1 - dy),
        "br": (im.width - 1 - dx, im.height - 1 - dy),
    }
    colours = {}
    for corner, xy in points.items():
        pixel = im.getpixel(xy)
        assert isinstance(pixel, tuple)  # an RGB pixel
        colours[corner] = pixel
    return colours


@pytest.mark.parametrize("orientation", range(1, 9))
def test_all_eight_exif_orientations(orientation: int) -> None:
    upright = _marked(400, 240)
    data = oriented_jpeg(upright, orientation, quality=95)
    # The fixture itself is checked against Pillow's reference implementation.
    reference = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    assert reference.size == (400, 240)
    assert all(near(reference_c, _MARKERS[c], 30) for c, reference_c in _corner_colours(reference).items())

    # 400 -> 160 is small enough for JPEG draft decoding to kick in as well.
    result = render(data, Rendition("a", 160), Rendition("b", 60, 60, "cover"))
    main = decoded(result.renditions[0])
    assert main.size == (160, 96)
    assert (result.source_width, result.source_height) == (400, 240)
    for corner, colour in _corner_colours(main).items():
        assert near(colour, _MARKERS[corner], 40), (orientation, corner, colour)
    assert decoded(result.renditions[1]).size == (60, 60)


@pytest.mark.parametrize("value", [0, 9, 65535])
def test_bogus_orientation_is_ignored(value: int) -> None:
    data = encode(_marked(200, 100), "JPEG", quality=95, exif=exif_bytes(value))
    main = decoded(render(data, Rendition("a", 100)).renditions[0])
    assert main.size == (100, 50)
    assert all(near(c, _MARKERS[k], 40) for k, c in _corner_colours(main).items())


# --------------------------------------------------------------------------- modes


def _alpha_square(mode: str) -> Image.Image:
    """Transparent background, opaque centre; top-left pixel half transparent red."""
    im = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    ImageDraw.Draw(im).rectangle((16, 16, 47, 47), fill=(20, 40, 200, 255))
    im.putpixel((0, 0), (255, 0, 0, 128))
    return im.convert(mode)


def test_rgba_png_keeps_alpha_in_png_and_webp_and_flattens_on_white_in_jpeg() -> None:
    data = encode(_alpha_square("RGBA"), "PNG")
    for fmt in ("png", "webp"):
        im = decoded(render(data, Rendition("a", 64), fmt=fmt).renditions[0])
        assert im.mode == "RGBA", fmt
        assert im.getpixel((8, 8))[3] == 0 and im.getpixel((32, 32))[3] == 255, fmt
        assert near(im.getpixel((32, 32))[:3], (20, 40, 200)), fmt
    jpeg = decoded(render(data, Rendition("a", 64), quality=95).renditions[0])
    assert jpeg.mode == "RGB"
    assert near(jpeg.getpixel((8, 8)), (255, 255, 255), 6)  # transparent -> white, not black
    assert near(jpeg.getpixel((32, 32)), (20, 40, 200), 12)


def test_la_png_stays_greyscale_with_alpha() -> None:
    data = encode(_alpha_square("LA"), "PNG")
    png = decoded(render(data, Rendition("a", 64), fmt="png").renditions[0])
    assert png.mode == "LA" and png.getpixel((8, 8))[1] == 0
    jpeg = decoded(render(data, Rendition("a", 64)).renditions[0])
    assert jpeg.mode == "L" and near(jpeg.getpixel((8, 8)), 255, 4)


def test_palette_with_transparency_becomes_rgba() -> None:
    im = Image.new("P", (40, 30), 0)
    im.putpalette([255, 255, 255, 200, 30, 30] + [0] * (256 * 3 - 6))
    ImageDraw.Draw(im).rectangle((10, 5, 30, 25), fill=1)
    data = encode(im, "PNG", transparency=0)
    png = decoded(render(data, Rendition("a", 40), fmt="png").renditions[0])
    assert png.mode == "RGBA" and png.getpixel((0, 0))[3] == 0 and near(png.getpixel((20, 15)), (200, 30, 30, 255), 0)
    jpeg = decoded(render(data, Rendition("a", 40), quality=95).renditions[0])
    assert near(jpeg.getpixel((2, 2)), (255, 255, 255), 6) and near(jpeg.getpixel((20, 15)), (200, 30, 30), 15)


def test_palette_with_alpha_table_is_blended_on_white_for_jpeg() -> None:
    im = Image.new("P", (32, 32), 0)
    im.putpalette([255, 0, 0] * 256)
    data = encode(im, "PNG", transparency=bytes([128]))  # tRNS alpha table: half transparent red
    png = decoded(render(data, Rendition("a", 32), fmt="png").renditions[0])
    assert near(png.getpixel((5, 5)), (255, 0, 0, 128), 1)
    jpeg = decoded(render(data, Rendition("a", 32), quality=95).renditions[0])
    assert near(jpeg.getpixel((5, 5)), (255, 127, 127), 8)


def test_greyscale_stays_greyscale() -> None:
    data = encode(make_photo(300, 200, 4).convert("L"), "JPEG", quality=90)
    for fmt in ("jpeg", "png"):
        assert decoded(render(data, Rendition("a", 150), fmt=fmt).renditions[0]).mode == "L"
    assert decoded(render(data, Rendition("a", 150), fmt="webp").renditions[0]).mode == "RGB"  # WebP has no L


def test_one_bit_becomes_smooth_greyscale() -> None:
    im = Image.new("1", (64, 64), 0)
    ImageDraw.Draw(im).rectangle((0, 0, 31, 63), fill=1)
    out = decoded(render(encode(im, "PNG"), Rendition("a", 32), fmt="png").renditions[0])
    assert out.mode == "L" and out.getpixel((2, 10)) == 255 and out.getpixel((30, 10)) == 0


def test_sixteen_bit_png_is_scaled_not_clipped() -> None:
    ramp = Image.linear_gradient("L").resize((256, 64)).convert("I")  # black top row, white bottom row
    sixteen = ramp.point(lambda v: v * 257).convert("I;16")
    data = encode(sixteen, "PNG")
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    out = decoded(render(data, Rendition("a", 128), fmt="png").renditions[0])
    assert out.mode == "L"
    low, high = out.getextrema()
    assert low <= 5 and high >= 250
    assert out.size == (128, 32)
    assert 100 <= out.getpixel((64, 16)) <= 160  # mid-grey stays mid-grey


def test_thirty_two_bit_and_float_tiffs_are_scaled_to_eight_bit() -> None:
    gradient = Image.linear_gradient("L").resize((128, 64))
    wide_int = gradient.convert("I").point(lambda v: v * 257)
    floats = gradient.convert("F").point(lambda v: v / 255.0)
    for source in (wide_int, floats):
        out = decoded(render(encode(source, "TIFF"), Rendition("a", 64), fmt="png").renditions[0])
        assert out.mode == "L"
        assert 100 <= out.getpixel((32, 16)) <= 160, source.mode
        assert out.getextrema()[1] >= 240, source.mode


def test_cmyk_without_profile_uses_pillows_conversion() -> None:
    data = encode(Image.new("CMYK", (32, 32), (255, 0, 0, 0)), "JPEG", quality=95)
    im = decoded(render(data, Rendition("a", 32), quality=95).renditions[0])
    assert im.mode == "RGB" and near(im.getpixel((16, 16)), (0, 255, 255), 8)
    assert "icc_profile" not in im.info


def test_cmyk_with_profile_is_converted_through_it_and_tagged_srgb() -> None:
    profile = cmyk_icc_profile()
    cmyk = Image.new("CMYK", (32, 32), (255, 0, 0, 0))
    data = encode(cmyk, "JPEG", quality=95, icc_profile=profile)
    expected = ImageCms.profileToProfile(
        cmyk, ImageCms.ImageCmsProfile(io.BytesIO(profile)), ImageCms.createProfile("sRGB"), outputMode="RGB"
    ).getpixel((16, 16))
    assert not near(expected, (0, 255, 255), 8)  # the test profile really differs from the naive formula
    for fmt in FORMATS:
        im = decoded(render(data, Rendition("a", 32), fmt=fmt, quality=95).renditions[0])
        assert near(im.getpixel((16, 16))[:3], expected, 8), fmt
        tagged = ImageCms.ImageCmsProfile(io.BytesIO(im.info["icc_profile"]))
        assert tagged.profile.xcolor_space.strip() == "RGB", fmt
        assert "sRGB" in ImageCms.getProfileDescription(tagged), fmt


def test_lab_tiff_is_converted_to_tagged_srgb() -> None:
    rgb = Image.new("RGB", (32, 32), (200, 30, 30))
    lab = ImageCms.profileToProfile(
        rgb, ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), outputMode="LAB"
    )
    im = decoded(render(encode(lab, "TIFF"), Rendition("a", 32), fmt="png").renditions[0])
    assert im.mode == "RGB" and near(im.getpixel((5, 5)), (200, 30, 30), 4)
    assert "sRGB" in ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(im.info["icc_profile"])))


def test_multi_picture_jpeg_uses_the_primary_image() -> None:
    primary, secondary = make_photo(400, 300, 1), Image.new("RGB", (400, 300), "blue")
    data = encode(primary, "MPO", save_all=True, append_images=[secondary], quality=95)
    assert Image.open(io.BytesIO(data)).format == "MPO"
    result = render(data, Rendition("a", 100))
    assert result.source_format == "JPEG"
    im = decoded(result.renditions[0])
    assert im.size == (100, 75) and ssim(im, primary.resize(im.size, LANCZOS)) > 0.95


def test_animated_images_use_the_first_frame() -> None:
    frames = [Image.new("RGB", (40, 30), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    sources = {
        "gif": encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50),
        "apng": encode(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=50),
        "webp": encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=50, lossless=True),
    }
    for name, data in sources.items():
        assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 3, name
        im = decoded(render(data, Rendition("a", 20), quality=95).renditions[0])
        assert im.size == (20, 15) and near(im.getpixel((10, 7)), (255, 0, 0), 10), name


def test_progressive_jpeg() -> None:
    photo = make_photo(900, 600, 8)
    data = encode(photo, "JPEG", quality=90, progressive=True)
    assert Image.open(io.BytesIO(data)).info.get("progressive")
    result = render(data, Rendition("a", 400), Rendition("b", 200))
    first = decoded(result.renditions[0])
    assert first.size == (400, 267) and decoded(result.renditions[1]).size == (200, 133)
    assert ssim(first, photo.resize(first.size, LANCZOS)) >= 0.97


def test_binary_file_objects_are_accepted() -> None:
    data = encode(make_photo(200, 100, 3), "PNG")
    assert render_image(io.BytesIO(data), RenderSpec()).renditions[0].width == 200


# ---------------------------------------------------------------- privacy & colour


def _metadata_rich_sources() -> dict[str, bytes]:
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"  # Make
    exif[0x0112] = 1
    exif.get_ifd(0x8825)[2] = (51.0, 30.0, 0.0)  # GPSLatitude
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><secret>home address</secret></x:xmpmeta>'
    photo = make_photo(300, 200, 5)
    text = PngImagePlugin.PngInfo()
    text.add_text("Comment", "secret text")
    return {
        "jpeg": encode(photo, "JPEG", exif=exif.tobytes(), xmp=xmp, comment=b"secret comment"),
        "png": encode(photo, "PNG", exif=exif.tobytes(), pnginfo=text),
        "webp": encode(photo, "WEBP", exif=exif.tobytes(), xmp=xmp),
    }


@pytest.mark.parametrize("fmt", FORMATS)
def test_outputs_carry_no_exif_gps_xmp_or_text(fmt: OutputFormat) -> None:
    for source_name, data in _metadata_rich_sources().items():
        source_exif = Image.open(io.BytesIO(data)).getexif()
        assert source_exif.get(0x010F) == "SpyCam", source_name
        for rendition in render(data, Rendition("same", 300), Rendition("small", 100), fmt=fmt).renditions:
            im = decoded(rendition)
            assert not im.getexif(), (source_name, fmt)
            assert not {"exif", "xmp", "XML:com.adobe.xmp", "comment", "Comment"} & set(im.info), (source_name, im.info)
            for needle in (b"SpyCam", b"secret", b"Exif\0\0", b"home address"):
                assert needle not in rendition.data, (source_name, fmt, needle)


@pytest.mark.parametrize("fmt", FORMATS)
def test_source_icc_profile_is_kept(fmt: OutputFormat) -> None:
    profile = srgb_profile_bytes()
    data = encode(make_photo(300, 200, 6), "JPEG", quality=90, icc_profile=profile)
    for rendition in render(data, Rendition("a", 300), Rendition("b", 80), fmt=fmt).renditions:
        assert decoded(rendition).info.get("icc_profile") == profile


def test_mismatched_or_unreadable_profiles_are_dropped() -> None:
    grey_with_rgb_profile = encode(make_photo(64, 48, 1).convert("L"), "JPEG", icc_profile=srgb_profile_bytes())
    rgb_with_garbage = encode(make_photo(64, 48, 1), "PNG", icc_profile=b"not an icc profile at all" * 8)
    for data in (grey_with_rgb_profile, rgb_with_garbage):
        for fmt in FORMATS:
            assert "icc_profile" not in decoded(render(data, fmt=fmt).renditions[0]).info


# -------------------------------------------------------------------------- quality


def test_quality_matches_a_full_resolution_lanczos_reference() -> None:
    """Draft decoding, reducing_gap and cascading must not cost visible quality.

    Reference: Lanczos from the full-resolution decode to the same size (and
    crop). Bars, on luma SSIM:
    * lossless PNG output, which isolates the pipeline's own resampling:
      >= 0.99 (measured 0.994-0.999);
    * lossy output at quality 82: >= 0.95 absolute, and no more than 0.005
      below the reference itself pushed through the same encoder, i.e. the
      pipeline adds (almost) nothing to the encoder's own loss (measured: JPEG
      0.961-0.987, within 0.0006 of the encoder-only score; WebP within 0.003).
    """
    photo = make_photo(2400, 1600, 9)
    data = encode(photo, "JPEG", quality=92)
    full = Image.open(io.BytesIO(data)).convert("RGB")
    renditions = (
        Rendition("large", 1000),
        Rendition("medium", 500),
        Rendition("thumb", 200),
        Rendition("square", 150, 150, "cover"),
    )
    for fmt in FORMATS:
        result = render_image(data, RenderSpec(renditions=renditions, format=fmt, quality=82))
        for rendition in result.renditions:
            got = decoded(rendition)
            box = (400.0, 0.0, 2000.0, 1600.0) if rendition.name == "square" else None
            reference = full.resize(got.size, LANCZOS, box=box)
            score = ssim(got, reference)
            if fmt == "png":
                assert score >= 0.99, (fmt, rendition.name, round(score, 4))
                continue
            encoder_only = ssim(Image.open(io.BytesIO(encode(reference, fmt.upper(), quality=82))), reference)
            assert score >= 0.95, (fmt, rendition.name, round(score, 4))
            assert score >= encoder_only - 0.005, (fmt, rendition.name, round(score, 4), round(encoder_only, 4))


def test_draft_decoding_is_used_for_large_jpegs(monkeypatch: pytest.MonkeyPatch, image_backend: str) -> None:
    """The Pillow recipe depends on draft; make sure it is actually requested.

    The libvips backend decodes RGB/grey JPEGs itself at full scale (that decode
    is also the damaged-scan check), so Pillow never decodes them there.
    """
    requested: list[tuple[str | None, tuple[int, int] | None]] = []
    original = Image.Image.draft

    def spy(self: Image.Image, mode: str | None, size: tuple[int, int] | None) -> object:
        requested.append((mode, size))
        return original(self, mode, size)

    from PIL import JpegImagePlugin

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    data = encode(make_photo(1600, 1200, 3), "JPEG")
    assert render(data, Rendition("a", 400), Rendition("b", 100)).renditions[0].width == 400
    assert requested == ([(None, (400, 300))] if image_backend == "pillow" else [])


# --------------------------------------------------------------------------- errors


def test_error_type_contract() -> None:
    error = ImageProcessingError("corrupt", "The image data is corrupt.")
    assert (error.kind, error.message, str(error)) == ("corrupt", "The image data is corrupt.", error.message)
    clone = pickle.loads(pickle.dumps(error))
    assert (clone.kind, clone.message) == (error.kind, error.message)
    with pytest.raises(ValueError):
        ImageProcessingError("nope", "x")
    assert set(ERROR_KINDS) == {"empty", "unsupported", "corrupt", "truncated", "too_large"}


def test_local_pixel_limit() -> None:
    data = encode(make_photo(200, 150, 1), "PNG")
    with pytest.raises(ImageProcessingError) as caught:
        render_image(data, RenderSpec(), max_pixels=20_000)
    assert caught.value.kind == "too_large"
    assert "200x150" in caught.value.message and "20,000" in caught.value.message
    assert render_image(data, RenderSpec(), max_pixels=30_000).source_width == 200


def test_pillow_global_limit_neither_replaces_nor_leaks(monkeypatch: pytest.MonkeyPatch) -> None:
    data = encode(make_photo(200, 150, 1), "PNG")
    # Between Pillow's warning and error thresholds: Pillow would only warn.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20_000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert render_image(data, RenderSpec()).source_width == 200
    # With Pillow's check disabled, our own limit still stops a bomb.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    bomb = next(b for name, b, _ in _corpus() if name.startswith("bomb"))
    with pytest.raises(ImageProcessingError) as caught:
        render_image(bomb, RenderSpec())
    assert caught.value.kind == "too_large"


def _corpus() -> list[tuple[str, bytes, str]]:
    from devtools.sample_images import hostile_corpus

    return hostile_corpus()


def test_invalid_specs_are_programming_errors() -> None:
    data = encode(make_photo(20, 20, 1), "PNG")
    for spec in (
        RenderSpec(renditions=()),
        RenderSpec(quality=0),
        RenderSpec(format="gif"),  # type: ignore[arg-type]  # not an OutputFormat, on purpose
        RenderSpec(renditions=(Rendition("x", 0),)),
        RenderSpec(renditions=(Rendition("x", 10, 10, "stretch"),)),  # type: ignore[arg-type]  # not a Fit, on purpose
    ):
        with pytest.raises(ValueError):
            render_image(data, spec)


def test_concurrent_renders_do_not_disturb_warning_filters() -> None:
    before = list(warnings.filters)
    inputs = [b for _, b, _ in _corpus()[:12]] + [encode(make_photo(300, 200, i), "JPEG") for i in range(4)]
    failures: list[BaseException] = []

    def work() -> None:
        for data in inputs:
            try:
                render_image(data, RenderSpec())
            except ImageProcessingError:
                pass
            except BaseException as exc:
                failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert list(warnings.filters) == before


def test_demo_sample_set() -> None:
    samples = sample_set(seed=0)
    assert 10 <= len(samples) <= 16
    outcomes = {}
    for name, data in samples:
        try:
            outcomes[name] = render_image(data, RenderSpec()).source_format
        except ImageProcessingError as error:
            outcomes[name] = error.kind
        assert max(Image.open(io.BytesIO(data)).size) <= 1600 or name == "broken.jpg"
    assert outcomes["broken.jpg"] == "truncated"
    assert [name for name, kind in outcomes.items() if kind in ERROR_KINDS] == ["broken.jpg"]
    assert sample_set(seed=0) == samples  # deterministic
    assert imaging.MAX_PIXELS_DEFAULT == 100_000_000
