"""Table-driven tests for imagebatch.batch_request (POST /api/batches bodies)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from imagebatch.batch_request import (
    MAX_BODY_BYTES,
    MAX_EXPLICIT_BLOBS,
    MAX_RENDITIONS,
    MAX_REPORTED_ERRORS,
    FieldError,
    RequestValidationError,
    parse_batch_request,
)
from imagebatch.specs import DEFAULT_QUALITY, DEFAULT_RENDITIONS, BatchRequest, Rendition

SOURCE = {"container": "photos", "prefix": "2024/"}
OUTPUT = {"container": "renditions", "prefix": "web/"}


def body(**fields: Any) -> dict[str, Any]:
    """A valid minimal body with ``fields`` added/replaced (``...`` removes a field)."""
    data: dict[str, Any] = {"source": dict(SOURCE), "output": dict(OUTPUT)}
    data.update(fields)
    return {k: v for k, v in data.items() if v is not ...}


def encode(data: Any) -> bytes:
    return data if isinstance(data, bytes) else json.dumps(data).encode()


def parse(data: Any, content_type: str | None = None) -> BatchRequest:
    return parse_batch_request(encode(data), content_type)


def errors_of(data: Any, content_type: str | None = None) -> RequestValidationError:
    with pytest.raises(RequestValidationError) as info:
        parse(data, content_type)
    return info.value


def fields(error: RequestValidationError) -> dict[str, str]:
    return {e.field: e.message for e in error.errors}


# --- accepted bodies ---------------------------------------------------------------------


def test_minimal_body_gets_all_defaults() -> None:
    req = parse(body())
    assert req == BatchRequest(
        source_container="photos",
        source_prefix="2024/",
        output_container="renditions",
        output_prefix="web/",
    )
    assert req.spec.renditions == DEFAULT_RENDITIONS
    assert req.spec.format == "jpeg"
    assert req.spec.quality == DEFAULT_QUALITY
    assert req.max_concurrency == 10
    assert req.tolerated_failure_percent == 0.0
    assert req.batch_id is None


def test_full_body() -> None:
    req = parse(
        {
            "source": {"container": "photos", "blobs": ["a.jpg", "b/c.png"]},
            "output": {"container": "renditions", "prefix": "web/"},
            "renditions": [
                {"name": "large", "width": 1600},
                {"name": "thumb", "width": 320, "height": 320, "fit": "cover"},
            ],
            "format": "webp",
            "quality": 75,
            "max_concurrency": 1000,
            "tolerated_failure_percent": 2.5,
            "batch_id": "my-batch-001",
        }
    )
    assert req.source_blobs == ("a.jpg", "b/c.png")
    assert req.source_prefix is None
    assert req.spec.renditions == (Rendition("large", 1600), Rendition("thumb", 320, 320, "cover"))
    assert (req.spec.format, req.spec.quality) == ("webp", 75)
    assert (req.max_concurrency, req.tolerated_failure_percent, req.batch_id) == (1000, 2.5, "my-batch-001")
    assert isinstance(req.tolerated_failure_percent, float)
    # The orchestration input round-trips.
    assert BatchRequest.from_dict(json.loads(json.dumps(req.to_dict()))) == req


@pytest.mark.parametrize(
    ("data", "check"),
    [
        # null means "not given" for optional fields.
        (
            body(renditions=None, format=None, quality=None, batch_id=None),
            lambda r: r.spec.quality == DEFAULT_QUALITY,
        ),
        (body(max_concurrency=None, tolerated_failure_percent=None), lambda r: r.max_concurrency == 10),
        (body(output={"container": "renditions", "prefix": None}), lambda r: r.output_prefix == ""),
        (body(output={"container": "renditions"}), lambda r: r.output_prefix == ""),
        (body(source={"container": "photos", "prefix": ""}), lambda r: r.source_prefix == ""),
        (body(source={"container": "photos", "prefix": None, "blobs": ["a.jpg"]}), lambda r: r.source_blobs),
        (body(renditions=[{"name": "a", "width": 16, "height": None, "fit": None}]), lambda r: True),
        # fit "contain" without a height is the default spelled out: accepted.
        (body(renditions=[{"name": "a", "width": 100, "fit": "contain"}]), lambda r: True),
        (body(renditions=[{"name": "a-b_9", "width": 8192, "height": 16}]), lambda r: True),
        (body(renditions=[{"name": f"r{i}", "width": 100} for i in range(MAX_RENDITIONS)]), lambda r: True),
        (body(renditions=[{"name": "x" * 32, "width": 100}]), lambda r: True),
        (body(quality=1, max_concurrency=1), lambda r: r.spec.quality == 1),
        (body(quality=100), lambda r: r.spec.quality == 100),
        (body(tolerated_failure_percent=0), lambda r: r.tolerated_failure_percent == 0.0),
        (body(tolerated_failure_percent=100), lambda r: r.tolerated_failure_percent == 100.0),
        (body(tolerated_failure_percent=0.5), lambda r: r.tolerated_failure_percent == 0.5),
        (body(format="png"), lambda r: r.spec.extension == "png"),
        (body(batch_id="x" * 100), lambda r: r.batch_id == "x" * 100),
        # Same container: output prefix outside the listed prefix...
        (body(output={"container": "photos", "prefix": "web/"}), lambda r: True),
        # ...or inside it (ListImages skips is_own_output names).
        (
            body(source={"container": "photos", "prefix": ""}, output={"container": "photos", "prefix": "web/"}),
            lambda r: r.source_prefix == "",
        ),
        (
            body(source={"container": "photos", "blobs": ["a.jpg"]}, output={"container": "photos", "prefix": "w/"}),
            lambda r: True,
        ),
        # Source prefix need not end with '/': it is a plain string prefix.
        (body(source={"container": "photos", "prefix": "2024/IMG_"}), lambda r: True),
        (body(source={"container": "photos", "blobs": ["x.jpg"] + [f"{i}.jpg" for i in range(9999)]}), lambda r: True),
    ],
)
def test_accepted(data: dict[str, Any], check: Any) -> None:
    assert check(parse(data))


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "application/json",
        "Application/JSON",
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        'application/json; charset="utf-8"',
        "application/merge-patch+json",
        "application/vnd.imagebatch.v1+json; charset=utf-8",
    ],
)
def test_accepted_content_types(content_type: str | None) -> None:
    parse(body(), content_type)


def test_output_name_of_exactly_1024_characters_is_accepted() -> None:
    blob = "x" * 999 + ".jpg"  # "web/" + blob + "/t.<10-hex version>.jpg" == 1024 characters
    req = parse(body(source={"container": "photos", "blobs": [blob]}, renditions=[{"name": "t", "width": 99}]))
    assert req.source_blobs == (blob,)


def test_bytearray_and_memoryview_bodies() -> None:
    raw = encode(body())
    assert parse_batch_request(bytearray(raw)) == parse_batch_request(memoryview(raw))  # type: ignore[arg-type]


def test_utf8_bom_is_ignored() -> None:
    parse(b"\xef\xbb\xbf" + encode(body()))


def test_body_of_exactly_max_size_is_parsed() -> None:
    raw = encode(body())
    raw += b" " * (MAX_BODY_BYTES - len(raw))
    assert len(raw) == MAX_BODY_BYTES
    parse(raw)


# --- body-level errors ----------------------------------------------------------------------


def test_oversized_body_is_413_before_parsing() -> None:
    error = errors_of(b"x" * (MAX_BODY_BYTES + 1))  # not JSON either: size wins
    assert error.status == 413
    assert error.to_json()["error"] == "payload_too_large"
    assert fields(error) == {"body": f"must be at most {MAX_BODY_BYTES} bytes, got {MAX_BODY_BYTES + 1}"}


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"", "valid JSON"),
        (b"   ", "valid JSON"),
        (b"{", "valid JSON"),
        (b"{'a': 1}", "valid JSON"),
        (b"\xff\xfe{}", "UTF-8"),
        (b'{"source": "\xe9"}', "UTF-8"),
        (b"[]", "JSON object, got an array"),
        (b'"text"', 'JSON object, got "text"'),
        (b"null", "JSON object, got null"),
        (b"42", "JSON object, got 42"),
        (b'{"quality": NaN}', "NaN"),
        (b'{"quality": Infinity}', "Infinity"),
        (b'{"quality": -Infinity}', "Infinity"),
        (b'{"quality": 1, "quality": 2}', "repeat a key"),
        (b'{"source": {"container": "a", "container": "b"}}', "repeat a key"),
        (b"[" * 200_000 + b"]" * 200_000, "valid JSON"),
        (b'{"quality": ' + b"9" * 5000 + b"}", "valid JSON"),
    ],
)
def test_body_errors(raw: bytes, fragment: str) -> None:
    error = errors_of(raw)
    assert error.status == 400
    assert list(fields(error)) == ["body"]
    assert fragment in fields(error)["body"]


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/json",
        "application/jsonp",
        "application/json; charset=latin-1",
        "application/json; charset=utf-16",
    ],
)
def test_rejected_content_types(content_type: str) -> None:
    error = errors_of(body(), content_type)
    assert error.status == 400
    assert list(fields(error)) == ["content-type"]


# --- field errors: one bad field at a time ----------------------------------------------------

R = "renditions"
CASES: list[tuple[str, dict[str, Any], str, str]] = [
    # (id, body, field, expected message or fragment)
    ("source missing", body(source=...), "source", "is required"),
    ("source null", body(source=None), "source", "is required"),
    ("output missing", body(output=...), "output", "is required"),
    ("source not object", body(source="photos"), "source", 'must be an object, got "photos"'),
    ("output not object", body(output=[]), "output", "must be an object, got an array"),
    ("unknown top", body(extra=1), "extra", "unknown field"),
    (
        "unknown source",
        body(source={"container": "photos", "prefx": "a/", "prefix": ""}),
        "source.prefx",
        "unknown field",
    ),
    ("unknown output", body(output={"container": "out", "prefix": "", "x": 1}), "output.x", "unknown field"),
    (
        "unknown rendition",
        body(renditions=[{"name": "a", "width": 100, "heigth": 5}]),
        "renditions[0].heigth",
        "unknown field",
    ),
    ("source container missing", body(source={"prefix": ""}), "source.container", "is required"),
    (
        "source container bad",
        body(source={"container": "Photos", "prefix": ""}),
        "source.container",
        'must contain only lowercase letters, digits and dashes, got "Photos"',
    ),
    (
        "source container short",
        body(source={"container": "ab", "prefix": ""}),
        "source.container",
        "must be 3 to 63 characters long, got 2",
    ),
    ("source container $web", body(source={"container": "$web", "prefix": ""}), "source.container", "special"),
    ("output container $root", body(output={"container": "$root"}), "output.container", "special"),
    ("output container int", body(output={"container": 5}), "output.container", "must be a string, got 5"),
    ("output container empty", body(output={"container": ""}), "output.container", "3 to 63"),
    (
        "both prefix and blobs",
        body(source={"container": "photos", "prefix": "", "blobs": ["a.jpg"]}),
        "source",
        "must have exactly one of 'prefix' and 'blobs', got both",
    ),
    (
        "neither prefix nor blobs",
        body(source={"container": "photos"}),
        "source",
        "must have exactly one of 'prefix' and 'blobs', got neither",
    ),
    (
        "prefix not string",
        body(source={"container": "photos", "prefix": 2024}),
        "source.prefix",
        "must be a string, got 2024",
    ),
    (
        "prefix leading slash",
        body(source={"container": "photos", "prefix": "/2024/"}),
        "source.prefix",
        "start with '/'",
    ),
    ("prefix dotdot", body(source={"container": "photos", "prefix": "a/../"}), "source.prefix", "'..'"),
    (
        "blobs empty",
        body(source={"container": "photos", "blobs": []}),
        "source.blobs",
        f"must have 1 to {MAX_EXPLICIT_BLOBS} items, got 0",
    ),
    (
        "blobs not array",
        body(source={"container": "photos", "blobs": "a.jpg"}),
        "source.blobs",
        'must be an array of blob names, got "a.jpg"',
    ),
    (
        "blobs too many",
        body(source={"container": "photos", "blobs": [f"{i}.jpg" for i in range(10_001)]}),
        "source.blobs",
        f"must have 1 to {MAX_EXPLICIT_BLOBS} items, got 10001",
    ),
    ("blob dotdot", body(source={"container": "photos", "blobs": ["ok.jpg", "a/../b.jpg"]}), "source.blobs[1]", "'..'"),
    (
        "blob leading slash",
        body(source={"container": "photos", "blobs": ["/a.jpg"]}),
        "source.blobs[0]",
        "start with '/'",
    ),
    (
        "blob control char",
        body(source={"container": "photos", "blobs": ["a\x01.jpg"]}),
        "source.blobs[0]",
        "control characters",
    ),
    (
        "blob too long",
        body(source={"container": "photos", "blobs": ["x" * 1021 + ".jpg"]}),
        "source.blobs[0]",
        "at most 1024 characters long, got 1025",
    ),
    (
        "blob not string",
        body(source={"container": "photos", "blobs": [1]}),
        "source.blobs[0]",
        "must be a string, got 1",
    ),
    ("blob empty", body(source={"container": "photos", "blobs": [""]}), "source.blobs[0]", "must not be empty"),
    (
        "blob not image",
        body(source={"container": "photos", "blobs": ["notes.txt"]}),
        "source.blobs[0]",
        "image extension",
    ),
    (
        "blob duplicate",
        body(source={"container": "photos", "blobs": ["a.jpg", "b.jpg", "a.jpg"]}),
        "source.blobs[2]",
        "duplicate of source.blobs[0]",
    ),
    (
        "blob output name too long",
        body(source={"container": "photos", "blobs": ["x" * 1016 + ".jpg"]}, renditions=[{"name": "t", "width": 99}]),
        "source.blobs[0]",
        "gives an invalid output name: must be at most 1024 characters long, got 1041",
    ),
    (
        "blob output too deep",
        body(
            source={"container": "photos", "blobs": ["/".join(["d"] * 252) + ".jpg"]},
            output={"container": "out", "prefix": "a/b/"},
        ),
        "source.blobs[0]",
        "gives an invalid output name: must have at most 254 path segments, got 255",
    ),
    (
        "output prefix no slash",
        body(output={"container": "out", "prefix": "web"}),
        "output.prefix",
        "must end with '/', got \"web\"",
    ),
    ("output prefix bad", body(output={"container": "out", "prefix": "/web/"}), "output.prefix", "start with '/'"),
    (
        "output prefix not string",
        body(output={"container": "out", "prefix": False}),
        "output.prefix",
        "must be a string, got false",
    ),
    (
        "same container empty output prefix",
        body(output={"container": "photos"}),
        "output.prefix",
        "must not be empty when output.container is the source container",
    ),
    (
        "same container source under output",
        body(source={"container": "photos", "prefix": "web/2024/"}, output={"container": "photos", "prefix": "web/"}),
        "source.prefix",
        "must not start with output.prefix 'web/'",
    ),
    (
        "same container same prefix",
        body(source={"container": "photos", "prefix": "web/"}, output={"container": "photos", "prefix": "web/"}),
        "source.prefix",
        "must not start with output.prefix",
    ),
    (
        "same container blob is output",
        body(
            source={"container": "photos", "blobs": ["a.jpg", "web/a.jpg/t.jpg"]},
            output={"container": "photos", "prefix": "web/"},
        ),
        "source.blobs[1]",
        "must not be under output.prefix 'web/'",
    ),
    ("renditions empty", body(renditions=[]), R, f"must have 1 to {MAX_RENDITIONS} items, got 0"),
    (
        "renditions too many",
        body(renditions=[{"name": f"r{i}", "width": 100} for i in range(11)]),
        R,
        f"must have 1 to {MAX_RENDITIONS} items, got 11",
    ),
    (
        "renditions object",
        body(renditions={"name": "a", "width": 100}),
        R,
        "must be an array of renditions, got an object",
    ),
    ("rendition not object", body(renditions=["thumb"]), "renditions[0]", 'must be an object, got "thumb"'),
    ("rendition name missing", body(renditions=[{"width": 100}]), "renditions[0].name", "is required"),
    (
        "rendition name upper",
        body(renditions=[{"name": "Thumb", "width": 100}]),
        "renditions[0].name",
        'must be 1 to 32 characters of a-z 0-9 _ -, got "Thumb"',
    ),
    (
        "rendition name long",
        body(renditions=[{"name": "x" * 33, "width": 100}]),
        "renditions[0].name",
        "must be 1 to 32",
    ),
    ("rendition name empty", body(renditions=[{"name": "", "width": 100}]), "renditions[0].name", "must be 1 to 32"),
    ("rendition name slash", body(renditions=[{"name": "a/b", "width": 100}]), "renditions[0].name", "must be 1 to 32"),
    ("rendition name int", body(renditions=[{"name": 1, "width": 100}]), "renditions[0].name", "got 1"),
    (
        "rendition duplicate",
        body(renditions=[{"name": "a", "width": 100}, {"name": "b", "width": 50}, {"name": "a", "width": 20}]),
        "renditions[2].name",
        "duplicate of renditions[0].name",
    ),
    ("width missing", body(renditions=[{"name": "a"}]), "renditions[0].width", "is required"),
    (
        "width too big",
        body(renditions=[{"name": "a", "width": 100}, {"name": "b", "width": 9000}]),
        "renditions[1].width",
        "must be an integer between 16 and 8192, got 9000",
    ),
    (
        "width too small",
        body(renditions=[{"name": "a", "width": 15}]),
        "renditions[0].width",
        "must be an integer between 16 and 8192, got 15",
    ),
    (
        "width float",
        body(renditions=[{"name": "a", "width": 100.0}]),
        "renditions[0].width",
        "must be an integer between 16 and 8192, got 100.0",
    ),
    (
        "width bool",
        body(renditions=[{"name": "a", "width": True}]),
        "renditions[0].width",
        "must be an integer between 16 and 8192, got true",
    ),
    (
        "width string",
        body(renditions=[{"name": "a", "width": "100"}]),
        "renditions[0].width",
        'must be an integer between 16 and 8192, got "100"',
    ),
    (
        "height too big",
        body(renditions=[{"name": "a", "width": 100, "height": 8193}]),
        "renditions[0].height",
        "must be an integer between 16 and 8192, got 8193",
    ),
    ("height zero", body(renditions=[{"name": "a", "width": 100, "height": 0}]), "renditions[0].height", "got 0"),
    (
        "fit bad",
        body(renditions=[{"name": "a", "width": 100, "height": 100, "fit": "fill"}]),
        "renditions[0].fit",
        'must be one of "contain", "cover", got "fill"',
    ),
    (
        "cover without height",
        body(renditions=[{"name": "a", "width": 100, "fit": "cover"}]),
        "renditions[0].fit",
        '"cover" needs a height',
    ),
    ("format bad", body(format="jpg"), "format", 'must be one of "jpeg", "webp", "png", got "jpg"'),
    ("format upper", body(format="JPEG"), "format", 'got "JPEG"'),
    ("format empty", body(format=""), "format", 'got ""'),
    ("quality zero", body(quality=0), "quality", "must be an integer between 1 and 100, got 0"),
    ("quality 101", body(quality=101), "quality", "must be an integer between 1 and 100, got 101"),
    ("quality float", body(quality=80.0), "quality", "got 80.0"),
    ("quality bool", body(quality=False), "quality", "got false"),
    ("quality string", body(quality="80"), "quality", 'got "80"'),
    ("concurrency zero", body(max_concurrency=0), "max_concurrency", "must be an integer between 1 and 1000, got 0"),
    ("concurrency big", body(max_concurrency=1001), "max_concurrency", "got 1001"),
    ("concurrency negative", body(max_concurrency=-1), "max_concurrency", "got -1"),
    (
        "tolerated negative",
        body(tolerated_failure_percent=-0.1),
        "tolerated_failure_percent",
        "must be a number between 0 and 100, got -0.1",
    ),
    ("tolerated big", body(tolerated_failure_percent=100.01), "tolerated_failure_percent", "got 100.01"),
    ("tolerated string", body(tolerated_failure_percent="5"), "tolerated_failure_percent", 'got "5"'),
    ("tolerated bool", body(tolerated_failure_percent=True), "tolerated_failure_percent", "got true"),
    ("batch id dash", body(batch_id="-abc"), "batch_id", "must not start or end with '-'"),
    ("batch id chars", body(batch_id="a/b"), "batch_id", "letters, digits"),
    ("batch id long", body(batch_id="x" * 101), "batch_id", "must be 1 to 100 characters long, got 101"),
    ("batch id empty", body(batch_id=""), "batch_id", "must be 1 to 100 characters long, got 0"),
    ("batch id int", body(batch_id=7), "batch_id", "must be a string, got 7"),
]


@pytest.mark.parametrize(("data", "field", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_field_errors(data: dict[str, Any], field: str, expected: str) -> None:
    error = errors_of(data)
    assert error.status == 400
    assert field in fields(error), error.errors
    assert expected in fields(error)[field]
    # Each case breaks one rule, so it yields exactly one error.
    assert len(error.errors) == 1, error.errors


def test_huge_number_is_out_of_range_not_a_crash() -> None:
    error = errors_of(
        b'{"source": {"container": "photos", "prefix": ""}, "output": {"container": "out"},'
        b' "tolerated_failure_percent": 1e400}'
    )
    assert fields(error) == {"tolerated_failure_percent": "must be a number between 0 and 100, got Infinity"}


def test_all_errors_are_collected_in_document_order() -> None:
    error = errors_of(
        {
            "source": {"container": "Photos", "prefx": "2024/", "blobs": []},
            "output": {"container": "photos", "prefix": "web"},
            "renditions": [{"name": "a", "width": 9000}, {"name": "a", "width": 10.0, "fit": "cover"}],
            "format": "jpg",
            "quality": True,
            "max_concurrency": "10",
            "tolerated_failure_percent": 101,
            "batch_id": "-x",
            "extra": 1,
        }
    )
    assert [e.field for e in error.errors] == [
        "extra",
        "source.prefx",
        "source.container",
        "source.blobs",
        "output.prefix",
        "renditions[0].width",
        "renditions[1].width",
        "renditions[1].fit",
        "renditions[1].name",
        "format",
        "quality",
        "max_concurrency",
        "tolerated_failure_percent",
        "batch_id",
    ]
    assert error.message == f"invalid request: extra: unknown field (and {len(error.errors) - 1} more)"


def test_to_json_shape() -> None:
    error = errors_of(body(quality=0))
    assert error.to_json() == {
        "error": "invalid_request",
        "message": "invalid request: quality: must be an integer between 1 and 100, got 0",
        "errors": [{"field": "quality", "message": "must be an integer between 1 and 100, got 0"}],
    }
    json.dumps(error.to_json())


def test_error_list_is_capped_but_counted() -> None:
    blobs = [f"{i}.txt" for i in range(MAX_REPORTED_ERRORS + 50)]
    error = errors_of(body(source={"container": "photos", "blobs": blobs}))
    assert len(error.errors) == MAX_REPORTED_ERRORS + 50
    payload = error.to_json()
    assert len(payload["errors"]) == MAX_REPORTED_ERRORS
    assert f"(first {MAX_REPORTED_ERRORS} of {MAX_REPORTED_ERRORS + 50} errors listed)" in payload["message"]


def test_echoed_lone_surrogates_survive_utf8_encoding() -> None:
    raw = b'{"source": {"container": "photos", "blobs": ["\\ud800.jpg"]}, "output": {"container": "out"}, "\\udc00": 1}'
    error = errors_of(raw)
    text = json.dumps(error.to_json(), ensure_ascii=False)
    text.encode("utf-8")  # must not raise
    assert "source.blobs[0]" in fields(error)


def test_long_unknown_key_is_truncated() -> None:
    error = errors_of(body(**{"k" * 5000: 1}))
    (field,) = fields(error)
    assert len(field) <= 60


def test_conflict_error() -> None:
    error = RequestValidationError.conflict("my-batch-001")
    assert error.status == 409
    payload = error.to_json()
    assert payload["error"] == "conflict"
    assert payload["errors"] == [{"field": "batch_id", "message": "a batch with id 'my-batch-001' is already running"}]


def test_exception_str_and_defaults() -> None:
    error = RequestValidationError([FieldError("quality", "bad")])
    assert error.status == 400
    assert str(error) == "invalid request: quality: bad"
    assert RequestValidationError([]).to_json() == {
        "error": "invalid_request",
        "message": "invalid request",
        "errors": [],
    }


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("format", "x" * 100, '"' + "x" * 35 + '..."'),
        ("quality", 10**60, str(10**60)[:36] + "..."),
    ],
)
def test_long_received_values_are_truncated(field: str, value: Any, shown: str) -> None:
    error = errors_of(body(**{field: value}))
    assert fields(error)[field].endswith(f"got {shown}")
