"""The request bodies of the API, declared once.

:data:`BATCH_REQUEST` (``POST /api/batches``), :data:`CONTROL_UPDATE`
(``PATCH /api/batches/{id}``) and :data:`REVIEW_DECISION` (``POST
.../approve`` and ``.../reject``) are what the server validates with
(:mod:`imagebatch.batch_request`) *and* what ``openapi.yaml``'s request schemas
are generated from (``python -m scripts.openapi``; a test fails when the
committed file differs). Types, ranges, enums, lengths, patterns, required and
unknown fields, defaults and descriptions live only here; the few rules over
several fields are the functions of :mod:`~imagebatch.batch_request.crossfield`.

The ``pattern`` of a name field is the JSON-Schema reading of an
:mod:`imagebatch.naming` rule (which ListImages also applies, and whose messages
the server gives); ``tests/test_openapi.py`` checks the two agree on every
naming test case a regex can express.
"""

from __future__ import annotations

from imagebatch import naming
from imagebatch.batch_request.crossfield import cover_needs_height, outputs_apart_from_sources, valid_output_names
from imagebatch.batch_request.schema import Array, Enum, Field, Int, Number, Object, String
from imagebatch.specs import DEFAULT_QUALITY, DEFAULT_RENDITIONS, FITS, FORMATS, MAX_WIDTH, MIN_WIDTH, REVIEW_ON_TIMEOUT

# Each rendition is one more encode per image; 10 covers every srcset we have
# seen while keeping one ProcessImage call well inside its time budget.
MAX_RENDITIONS = 10
# Bigger jobs should use a prefix: the explicit list travels in the orchestration
# input (and so in its history), and 10k names fit the 1 MiB body anyway.
MAX_EXPLICIT_BLOBS = 10_000
MIN_QUALITY = 1
MAX_QUALITY = 100
MIN_CONCURRENCY = 1
MAX_CONCURRENCY = 1000
DEFAULT_MAX_CONCURRENCY = 10
MIN_DEADLINE_MINUTES = 1
MAX_DEADLINE_MINUTES = 525600  # one year
# Proof before the batch: a sample a person can look through on one page.
MIN_REVIEW_SAMPLE = 1
MAX_REVIEW_SAMPLE = 100
MIN_REVIEW_TIMEOUT_MINUTES = 1
MAX_REVIEW_TIMEOUT_MINUTES = 43200  # 30 days
DEFAULT_REVIEW_TIMEOUT_MINUTES = 1440
DEFAULT_REVIEW_ON_TIMEOUT = "reject"
MAX_REASON_LENGTH = 1000
MIN_TOLERATED_FAILURE_PERCENT = 0
MAX_TOLERATED_FAILURE_PERCENT = 100
DEFAULT_FORMAT = "jpeg"
MAX_RENDITION_NAME_LENGTH = 32
RENDITION_NAME_PATTERN = rf"[a-z0-9_-]{{1,{MAX_RENDITION_NAME_LENGTH}}}"

# Blob names and prefixes: no control characters or backslash, no leading '/',
# no '..', no '.' segment (naming._path_error); a blob name also no trailing '/' or '.'.
_PATH = r"(?!/)(?!.*\.\.)(?!(?:.*/)?\.(?:/|$))"
_PATH_CHAR = r"[^\u0000-\u001f\u007f\\]"


def _folder_error(prefix: str) -> str | None:
    """A non-empty output prefix must end with '/' so outputs form a folder and
    :func:`naming.is_own_output` cannot match unrelated names (``"web"`` would
    also match ``"website/a.jpg"``)."""
    return "must end with '/'" if prefix and not prefix.endswith("/") else None


def _image_error(name: str) -> str | None:
    if naming.is_image_name(name):
        return None
    return f"must have an image extension ({' '.join(sorted(naming.IMAGE_EXTENSIONS))})"


CONTAINER_NAME = String(
    name="ContainerName",
    min_length=3,
    max_length=63,
    pattern=r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$",
    checks=(naming.container_name_error,),
    doc="Azure container name: lowercase letters, digits and single dashes, starting and ending with a letter"
    " or digit. `$root`, `$web` and `$logs` are refused.",
)
BLOB_NAME = String(
    name="BlobName",
    min_length=1,
    max_length=naming.MAX_BLOB_NAME_LENGTH,
    pattern=rf"^{_PATH}(?!.*[/.]$){_PATH_CHAR}+$",
    checks=(naming.blob_name_error, _image_error),
    doc="No control characters, backslash, leading `/`, `..`, `.` segment, trailing `/` or `.`; at most"
    f" {naming.MAX_PATH_SEGMENTS} `/`-separated segments; must end in an image extension"
    f" ({' '.join(sorted(naming.IMAGE_EXTENSIONS))}, any case).",
)
BATCH_ID = String(
    name="BatchId",
    min_length=1,
    max_length=naming.MAX_INSTANCE_ID_LENGTH,
    pattern=rf"^[A-Za-z0-9_]([A-Za-z0-9_-]{{0,{naming.MAX_INSTANCE_ID_LENGTH - 2}}}[A-Za-z0-9_])?$",
    checks=(naming.instance_id_error,),
    doc="Becomes the Durable instance id (default: a generated one). Letters, digits, `_` and `-`, not starting"
    " or ending with `-`.",
)

SOURCE = Object(
    name="Source",
    doc="Exactly one of `prefix` (list the container under it) and `blobs`. The server also treats a `null`"
    " one as absent, which this oneOf does not express.",
    exactly_one=("prefix", "blobs"),
    fields=(
        Field("container", CONTAINER_NAME, required=True),
        Field(
            "prefix",
            String(
                max_length=naming.MAX_BLOB_NAME_LENGTH,
                pattern=rf"^{_PATH}{_PATH_CHAR}*$",
                checks=(naming.prefix_error,),
            ),
            doc='`""` lists the whole container. Otherwise blob-name-like, may end with `/` (or `.`); matched as a'
            " plain string prefix.",
        ),
        Field(
            "blobs",
            Array(BLOB_NAME, min_items=1, max_items=MAX_EXPLICIT_BLOBS, noun="blob names", unique=True),
            doc="Explicit blob names; duplicates are errors (not de-duplicated).",
        ),
    ),
)
OUTPUT = Object(
    name="Output",
    doc="When `container` equals `source.container`: `prefix` must be non-empty, `source.prefix` must not"
    " start with it and no `source.blobs` entry may lie under it. (Outputs inside the listed source range"
    " are skipped when listing.) Explicit blobs must also give output names of at most"
    f" {naming.MAX_BLOB_NAME_LENGTH} characters.",
    fields=(
        Field("container", CONTAINER_NAME, required=True),
        Field(
            "prefix",
            String(
                max_length=naming.MAX_BLOB_NAME_LENGTH,
                pattern=rf"^$|^{_PATH}{_PATH_CHAR}*/$",
                checks=(naming.prefix_error, _folder_error),
            ),
            default="",
            doc='`""` or a prefix ending with `/` (same characters as a blob name).',
        ),
    ),
)
_DIMENSION = Int(MIN_WIDTH, MAX_WIDTH)
RENDITION = Object(
    name="Rendition",
    fields=(
        Field(
            "name",
            String(
                min_length=1,
                max_length=MAX_RENDITION_NAME_LENGTH,
                pattern=f"^{RENDITION_NAME_PATTERN}$",
                message=f"must be 1 to {MAX_RENDITION_NAME_LENGTH} characters of a-z 0-9 _ -",
            ),
            required=True,
            doc="Used as the output file name (`thumb` -> `.../thumb.jpg`).",
        ),
        Field("width", _DIMENSION, required=True),
        Field("height", _DIMENSION),
        Field(
            "fit",
            Enum(FITS),
            default="contain",
            doc="`contain` fits inside width x height keeping the aspect ratio; `cover` fills the box and"
            " centre-crops, so it requires `height`. Never upscales.",
        ),
    ),
    rules=(cover_needs_height,),
)
REVIEW = Object(
    name="Review",
    doc="Proof before the batch: the run first renders `sample` images, spread evenly over the sorted listing,"
    " writes a proof sheet (`proof.html` beside the manifest: each sample image's renditions beside its source,"
    " sizes, bytes saved, failures) and waits (`AwaitingApproval`) for `approve` or `reject`, or"
    " `timeout_minutes`.",
    fields=(
        Field("sample", Int(MIN_REVIEW_SAMPLE, MAX_REVIEW_SAMPLE), required=True),
        Field(
            "timeout_minutes",
            Int(MIN_REVIEW_TIMEOUT_MINUTES, MAX_REVIEW_TIMEOUT_MINUTES),
            default=DEFAULT_REVIEW_TIMEOUT_MINUTES,
            doc="From when the proof sheet is ready (durable timers; beyond the storage provider's timer limit"
            " is fine).",
        ),
        Field(
            "on_timeout",
            Enum(REVIEW_ON_TIMEOUT),
            default=DEFAULT_REVIEW_ON_TIMEOUT,
            doc="What happens when nobody decides in time.",
        ),
    ),
)

BATCH_REQUEST = Object(
    name="BatchRequest",
    doc='`null` for an optional field means "use the default". Unknown fields at any level are errors, as are'
    " duplicate keys in one object and the literals NaN/Infinity.",
    fields=(
        Field("source", SOURCE, required=True),
        Field("output", OUTPUT, required=True),
        Field(
            "renditions",
            Array(RENDITION, min_items=1, max_items=MAX_RENDITIONS, noun="renditions", unique_key="name"),
            default=[r.to_dict() for r in DEFAULT_RENDITIONS],
            doc="Output sizes; names must be unique. Default: "
            + ", ".join(f"{r.name} {r.width}" for r in DEFAULT_RENDITIONS)
            + " (width only, `contain`).",
        ),
        Field("format", Enum(FORMATS), default=DEFAULT_FORMAT),
        Field(
            "quality",
            Int(MIN_QUALITY, MAX_QUALITY),
            default=DEFAULT_QUALITY,
            doc="Encoder quality (JPEG/WebP; ignored for PNG). Only JSON integers, not 82.0.",
        ),
        Field(
            "max_concurrency",
            Int(MIN_CONCURRENCY, MAX_CONCURRENCY),
            default=DEFAULT_MAX_CONCURRENCY,
            doc="The most ProcessImage calls in flight at once.",
        ),
        Field(
            "tolerated_failure_percent",
            Number(MIN_TOLERATED_FAILURE_PERCENT, MAX_TOLERATED_FAILURE_PERCENT),
            default=0,
            doc="Share of images that may fail while the batch still counts as a success (like Step Functions'"
            " ToleratedFailurePercentage).",
        ),
        Field(
            "batch_id",
            BATCH_ID,
            doc="Becomes the Durable instance id (default: a generated one). Letters, digits, `_` and `-`, not"
            " starting or ending with `-`. 409 if that batch is still running.",
        ),
        Field(
            "deadline_minutes",
            Int(MIN_DEADLINE_MINUTES, MAX_DEADLINE_MINUTES),
            doc="Minutes after the run starts when no new image starts any more (up to a year; durable timers,"
            " so longer than the storage provider's timer limit is fine). Images in hand finish; the run ends"
            " `DeadlineExceeded` with a manifest listing what was not started, and re-submitting processes"
            " exactly the rest.",
        ),
        Field("review", REVIEW),
    ),
    rules=(outputs_apart_from_sources, valid_output_names),
)

CONTROL_UPDATE = Object(
    name="ControlsUpdate",
    fields=(Field("max_concurrency", Int(MIN_CONCURRENCY, MAX_CONCURRENCY), required=True),),
)

REVIEW_DECISION = Object(
    name="ReviewDecision",
    fields=(
        Field(
            "reason",
            String(
                max_length=MAX_REASON_LENGTH,
                message=f"must be a string of at most {MAX_REASON_LENGTH} characters",
            ),
            doc="Kept in the manifest.",
        ),
    ),
)

REQUEST_BODIES = (BATCH_REQUEST, CONTROL_UPDATE, REVIEW_DECISION)
