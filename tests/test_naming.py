"""Table-driven tests for imagebatch.naming: Azure naming rules and output layout."""

from __future__ import annotations

import pytest

from imagebatch import naming

# --- container names ------------------------------------------------------------

VALID_CONTAINERS = ["abc", "photos", "a-b", "my-photos-2024", "0ab", "a" * 63, "1-2-3"]
INVALID_CONTAINERS = [
    ("ab", "3 to 63"),
    ("a" * 64, "3 to 63"),
    ("", "3 to 63"),
    ("Photos", "lowercase"),
    ("my_photos", "lowercase"),
    ("my.photos", "lowercase"),
    ("ph otos", "lowercase"),
    ("-abc", "start and end"),
    ("abc-", "start and end"),
    ("a--b", "consecutive"),
    ("$root", "special"),
    ("$web", "special"),
    ("$logs", "special"),
    ("café", "lowercase"),
    (None, "string"),
    (123, "string"),
    (["abc"], "string"),
]


@pytest.mark.parametrize("name", VALID_CONTAINERS)
def test_valid_container_names(name: str) -> None:
    assert naming.container_name_error(name) is None


@pytest.mark.parametrize(("name", "fragment"), INVALID_CONTAINERS)
def test_invalid_container_names(name: object, fragment: str) -> None:
    error = naming.container_name_error(name)
    assert error is not None and fragment in error


# --- blob names -------------------------------------------------------------------

VALID_BLOBS = [
    "a.jpg",
    "2024/cat.jpg",
    "a b/c d.png",
    "x" * 1024,
    "/".join(["d"] * 254),
    "photos/été/ça.JPG",
    "a.b.c",
    "a//b.jpg",  # empty segments are legal in Azure and harmless here
    ".hidden/x.jpg",
    "x./y.jpg",  # a segment ending in '.' is fine; only the whole name may not
    "日本/猫.webp",
]
INVALID_BLOBS = [
    ("", "empty"),
    ("x" * 1025, "at most 1024"),
    ("/a.jpg", "start with '/'"),
    ("a\\b.jpg", "backslash"),
    ("a\x00.jpg", "control"),
    ("a\nb.jpg", "control"),
    ("a\tb.jpg", "control"),
    ("a\x7fb.jpg", "control"),
    ("a/../b.jpg", "'..'"),
    ("../b.jpg", "'..'"),
    ("a..jpg", "'..'"),
    ("./a.jpg", "'.' path segment"),
    ("a/./b.jpg", "'.' path segment"),
    ("a/", "end with"),
    ("a.", "end with"),
    ("a/.", "'.' path segment"),
    ("/".join(["d"] * 255), "254"),
    ("a\ud800.jpg", "surrogate"),
    (None, "string"),
    (5, "string"),
]


@pytest.mark.parametrize("name", VALID_BLOBS)
def test_valid_blob_names(name: str) -> None:
    assert naming.blob_name_error(name) is None


@pytest.mark.parametrize(("name", "fragment"), INVALID_BLOBS)
def test_invalid_blob_names(name: object, fragment: str) -> None:
    error = naming.blob_name_error(name)
    assert error is not None and fragment in error, error


# --- prefixes ----------------------------------------------------------------------

VALID_PREFIXES = ["", "2024/", "2024", "a/b/c/", "IMG.", "web/", "x" * 1024]
INVALID_PREFIXES = [
    ("/2024/", "start with '/'"),
    ("a/../", "'..'"),
    ("a/./", "'.' path segment"),
    ("./", "'.' path segment"),
    ("a/.", "'.' path segment"),
    ("a\\", "backslash"),
    ("a\x01/", "control"),
    ("x" * 1025, "at most 1024"),
    (None, "string"),
    (0, "string"),
]


@pytest.mark.parametrize("prefix", VALID_PREFIXES)
def test_valid_prefixes(prefix: str) -> None:
    assert naming.prefix_error(prefix) is None


@pytest.mark.parametrize(("prefix", "fragment"), INVALID_PREFIXES)
def test_invalid_prefixes(prefix: object, fragment: str) -> None:
    error = naming.prefix_error(prefix)
    assert error is not None and fragment in error, error


# --- image names ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.jpg", True),
        ("a.JPG", True),
        ("b/c.jpeg", True),
        ("c.png", True),
        ("d.webp", True),
        ("e.gif", True),
        ("f.tif", True),
        ("g.TIFF", True),
        ("h.bmp", True),
        ("dir.v2/x.Png", True),
        ("a.heic", False),
        ("a.txt", False),
        ("jpg", False),
        ("a", False),
        (".jpg", False),  # a dot-file, not an image called ""
        ("a.jpg/readme", False),
        ("a.jpg/", False),
        ("a.jpg.bak", False),
    ],
)
def test_is_image_name(name: str, expected: bool) -> None:
    assert naming.is_image_name(name) is expected


def test_image_extensions_are_lowercase_with_dot() -> None:
    assert {".jpg", ".jpeg", ".png", ".webp", ".gif", ".tif", ".tiff", ".bmp"} == naming.IMAGE_EXTENSIONS


# --- output layout ---------------------------------------------------------------------


V = "3f2a9c01d4"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("web/", "2024/cat.jpg", "thumb", "webp", V), f"web/2024/cat.jpg/thumb.{V}.webp"),
        (("", "cat.png", "large", "jpg", V), f"cat.png/large.{V}.jpg"),
        (("out/x/", "a/b/c.tiff", "m", "png", V), f"out/x/a/b/c.tiff/m.{V}.png"),
        (("web/", "cat.jpg", "thumb", ".webp", V), f"web/cat.jpg/thumb.{V}.webp"),  # leading dot tolerated
    ],
)
def test_output_blob_name(args: tuple[str, str, str, str, str], expected: str) -> None:
    assert naming.output_blob_name(*args) == expected


def test_output_names_of_same_stem_sources_do_not_collide() -> None:
    # The documented choice: the source extension stays in the folder name.
    jpg = naming.output_blob_name("web/", "2024/cat.jpg", "thumb", "webp", V)
    png = naming.output_blob_name("web/", "2024/cat.png", "thumb", "webp", V)
    assert jpg != png


def test_a_changed_source_or_spec_gets_a_new_url_and_the_same_pair_the_same_one() -> None:
    v1 = naming.output_version("0x8DCAB1", "webp;80;thumb:320x0:contain")
    assert v1 == naming.output_version("0x8DCAB1", "webp;80;thumb:320x0:contain"), "deterministic"
    assert len(v1) == naming.VERSION_LENGTH
    assert v1 != naming.output_version("0x8DCAB2", "webp;80;thumb:320x0:contain"), "new source bytes"
    assert v1 != naming.output_version("0x8DCAB1", "webp;75;thumb:320x0:contain"), "new parameters"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (f"web/cat.jpg/thumb.{V}.webp", True),
        ("web/cat.jpg/thumb.webp", True),  # the unversioned name of older releases
        (f"web/cat.jpg/large.{V}.webp", False),  # another rendition
        (f"web/cat.jpg/thumb.{V}.jpg", False),  # another format
        ("web/cat.jpg/thumb.notahexvers.webp", False),
        (f"web/cat.jpg/inner.jpg/thumb.{V}.webp", False),  # a source nested in the folder
        (f"web/dog.jpg/thumb.{V}.webp", False),
    ],
)
def test_is_rendition_version(name: str, expected: bool) -> None:
    assert naming.is_rendition_version(name, "web/cat.jpg/", "thumb", "webp") is expected


def test_output_names_are_valid_blob_names() -> None:
    assert naming.blob_name_error(naming.output_blob_name("web/", "2024/cat.jpg", "thumb", "jpg", V)) is None


@pytest.mark.parametrize(
    ("prefix", "instance_id", "folder"),
    [("web/", "b1", "web/_batches/b1/"), ("", "abc-1", "_batches/abc-1/")],
)
def test_batch_folder_and_manifest(prefix: str, instance_id: str, folder: str) -> None:
    assert naming.batch_folder(prefix, instance_id) == folder
    run = "20261201T113400Z-1a2b3c"
    assert naming.is_run_id(run)
    assert naming.manifest_blob_name(prefix, instance_id, run) == folder + f"runs/{run}/manifest.json"
    assert naming.is_own_output(naming.manifest_blob_name(prefix, instance_id, run), prefix)
    assert naming.latest_run_blob_name(prefix, instance_id) == folder + "latest.json"
    # Everything a run writes for itself is under its own folder.
    run_folder = naming.run_folder(prefix, instance_id, run)
    assert naming.cancel_blob_name(prefix, instance_id, run).startswith(run_folder)
    assert naming.shard_parts_prefix(prefix, instance_id, run, 3).startswith(run_folder)
    assert naming.source_list_blob(prefix, instance_id, run).startswith(run_folder)
    assert naming.plan_folder(prefix, instance_id, run, "p").startswith(run_folder)
    assert all(p.startswith(run_folder) for p in naming.run_scratch_prefixes(prefix, instance_id, run))


@pytest.mark.parametrize(
    ("name", "prefix", "expected"),
    [
        ("web/a.jpg/thumb.jpg", "web/", True),
        ("web/_batches/x/manifest.json", "web/", True),
        ("web2/a.jpg", "web/", False),
        ("a.jpg", "web/", False),
        ("2024/web/a.jpg", "web/", False),
        ("_batches/x/manifest.json", "", True),
        ("a.jpg/thumb.jpg", "", False),  # with no prefix only the batch folder is recognisable
        ("_batchesX/a.jpg", "", False),
    ],
)
def test_is_own_output(name: str, prefix: str, expected: bool) -> None:
    assert naming.is_own_output(name, prefix) is expected


def test_outputs_never_land_in_a_batch_folder_manifest() -> None:
    # Instance ids cannot contain '.', source names keep theirs: no overlap with manifests.
    out = naming.output_blob_name("web/", "_batches/b1/x.jpg", "manifest", "jpg", V)
    assert out != naming.manifest_blob_name("web/", "b1", "r1")


def test_shard_instance_ids_are_per_run_and_listable_by_batch() -> None:
    a = naming.shard_instance_id("b1", "r1", 2)
    b = naming.shard_instance_id("b1", "r2", 2)
    assert a != b and a.startswith(naming.shard_instance_prefix("b1", "r1"))
    assert a.startswith(naming.shard_instance_prefix("b1")) and not a.startswith(naming.shard_instance_prefix("b10"))


def test_run_ids_sort_by_start_time() -> None:
    from datetime import UTC, datetime, timedelta

    t = datetime(2026, 12, 1, 11, 34, tzinfo=UTC)
    ids = [naming.new_run_id(t + timedelta(seconds=s), "ffffff") for s in (0, 1, 3600)]
    assert ids == sorted(ids) and all(naming.is_run_id(i) for i in ids)


# --- instance ids ------------------------------------------------------------------------

VALID_IDS = ["a", "my-batch-001", "A_b-C", "_", "x" * 100, "0", "a-b_c"]
INVALID_IDS = [
    ("", "1 to 100"),
    ("x" * 101, "1 to 100"),
    ("-a", "start or end"),
    ("a-", "start or end"),
    ("-", "start or end"),
    ("a b", "letters, digits"),
    ("a/b", "letters, digits"),
    ("a.b", "letters, digits"),
    ("a#b", "letters, digits"),
    ("é", "letters, digits"),
    ("a\n", "letters, digits"),
    (None, "string"),
    (1, "string"),
]


@pytest.mark.parametrize("batch_id", VALID_IDS)
def test_valid_instance_ids(batch_id: str) -> None:
    assert naming.instance_id_error(batch_id) is None


@pytest.mark.parametrize(("batch_id", "fragment"), INVALID_IDS)
def test_invalid_instance_ids(batch_id: object, fragment: str) -> None:
    error = naming.instance_id_error(batch_id)
    assert error is not None and fragment in error, error
