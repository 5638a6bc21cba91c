"""Azure Blob Storage naming rules and the app's output naming scheme.

Why this module exists: every name that reaches storage comes either from a
client (``POST /api/batches``) or from a listing, and every output name is
*derived* from a source name. Keeping the rules and the derivation in one
Azure-free place means request validation, ListImages and ProcessImage all
agree on what is valid and on where a rendition lands, and each rule can be
unit-tested without storage.

The ``*_error`` functions return ``None`` when the value is acceptable and a
short, lowercase message otherwise ("must be ...") so that callers can attach
it to a field path without rewording it. They accept ``object`` because they
are applied to raw JSON values.

Output layout (same container as the source or another one)::

    {output_prefix}{source name, extension kept}/{rendition}.{ext}
    {output_prefix}_batches/{instance_id}/manifest.json
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

# --- containers -------------------------------------------------------------

_CONTAINER_CHARS = re.compile(r"[a-z0-9-]+")
_RESERVED_CONTAINERS = frozenset({"$root", "$web", "$logs"})


def container_name_error(name: object) -> str | None:
    """Check Azure's container naming rules.

    3-63 characters of lowercase letters, digits and dashes; starts and ends
    with a letter or digit; no two dashes in a row. The special containers
    ``$root``, ``$web`` and ``$logs`` are valid in Azure but refused here:
    ``$web`` is served publicly by static websites and ``$root`` changes URL
    shapes, neither is a place a batch should silently read from or write to.
    """
    if not isinstance(name, str):
        return "must be a string"
    if name in _RESERVED_CONTAINERS:
        return "must not be a special container ($root, $web, $logs)"
    if not 3 <= len(name) <= 63:
        return f"must be 3 to 63 characters long, got {len(name)}"
    if not _CONTAINER_CHARS.fullmatch(name):
        return "must contain only lowercase letters, digits and dashes"
    if name[0] == "-" or name[-1] == "-":
        return "must start and end with a letter or digit"
    if "--" in name:
        return "must not contain consecutive dashes"
    return None


# --- blob names and prefixes --------------------------------------------------

MAX_BLOB_NAME_LENGTH = 1024
MAX_PATH_SEGMENTS = 254
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def _path_error(value: str) -> str | None:
    """Rules shared by blob names and prefixes (everything but the end).

    ``..`` is refused anywhere, not only as a whole segment: it is the cheap,
    conservative reading of Azure's guidance, it keeps names safe for the dev
    host's file-system storage and for anyone who syncs outputs to disk, and
    real photo names almost never contain it.
    """
    if len(value) > MAX_BLOB_NAME_LENGTH:
        return f"must be at most {MAX_BLOB_NAME_LENGTH} characters long, got {len(value)}"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (contains a lone surrogate)"
    if _CONTROL_CHARS.search(value):
        return "must not contain control characters (U+0000-U+001F, U+007F)"
    if "\\" in value:
        return "must not contain a backslash"
    if value.startswith("/"):
        return "must not start with '/'"
    if ".." in value:
        return "must not contain '..'"
    segments = value.split("/")
    if any(s == "." for s in segments):
        return "must not contain a '.' path segment"
    if len(segments) > MAX_PATH_SEGMENTS:
        return f"must have at most {MAX_PATH_SEGMENTS} path segments, got {len(segments)}"
    return None


def blob_name_error(name: object) -> str | None:
    """Check a blob name: 1-1024 characters, no control characters, no
    backslash, no leading ``/``, no ``..``, no ``.`` segment, no trailing ``/``
    or ``.`` and at most 254 ``/``-separated segments.

    Azure accepts more than this, but names breaking these rules behave badly
    in tools (trailing dots are stripped by some clients, backslashes become
    ``/`` in the portal, ``..`` reads as traversal) so the batch refuses them.
    """
    if not isinstance(name, str):
        return "must be a string"
    if not name:
        return "must not be empty"
    error = _path_error(name)
    if error:
        return error
    if name.endswith("/") or name.endswith("."):
        return "must not end with '/' or '.'"
    return None


def prefix_error(prefix: object) -> str | None:
    """Check a listing/output prefix: ``""`` or a blob-name-like string.

    Same character and segment rules as :func:`blob_name_error`, but it may
    end with ``/`` (it usually should) and, since a prefix is matched as a
    plain string, it may also end with ``.`` (``"IMG."``). Whether a prefix
    *must* end with ``/`` depends on its use, so that is left to the caller.
    """
    if not isinstance(prefix, str):
        return "must be a string"
    if not prefix:
        return None
    return _path_error(prefix)


# --- images ----------------------------------------------------------------

IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".tif", ".tiff", ".bmp"})


def is_image_name(name: str) -> bool:
    """True when the blob name's extension (case-insensitive) is one we decode.

    Only the last path segment is looked at, so ``"a.jpg/readme"`` is not an
    image and ``"2024.v2/cat.JPG"`` is.
    """
    base = name.rsplit("/", 1)[-1]
    dot = base.rfind(".")
    if dot <= 0:  # no extension, or a dot-file such as ".jpg"
        return False
    return base[dot:].lower() in IMAGE_EXTENSIONS


# --- output naming -----------------------------------------------------------

BATCHES_FOLDER = "_batches/"


VERSION_LENGTH = 10
_VERSION = re.compile(rf"[0-9a-f]{{{VERSION_LENGTH}}}")
# Stands in for a real version where only the length of a name matters (validation).
VERSION_PLACEHOLDER = "0" * VERSION_LENGTH


def output_version(source_etag: str, spec_fingerprint: str) -> str:
    """The content version of a rendition: a short hash of the source version (etag)
    and the render parameters, so a changed source or changed parameters give a new
    URL, and an unchanged pair gives the same one (docs/design.md, section 6)."""
    return hashlib.sha256(f"{source_etag}\n{spec_fingerprint}".encode()).hexdigest()[:VERSION_LENGTH]


def output_blob_name(output_prefix: str, source_name: str, rendition: str, extension: str, version: str) -> str:
    """Where one version of rendition ``rendition`` of ``source_name`` is written.

    ``("web/", "2024/cat.jpg", "thumb", "webp", "3f2a9c01d4") -> "web/2024/cat.jpg/thumb.3f2a9c01d4.webp"``

    The source's extension is *kept* in the folder name. Stripping it
    (``web/2024/cat/thumb.webp``) would make ``cat.jpg`` and ``cat.png``
    overwrite each other's renditions within one batch, and would make the
    output-to-source mapping ambiguous; keeping it costs only a slightly odd
    looking folder. It also guarantees outputs never collide with the batch
    folder: instance ids cannot contain ``.``. The version (:func:`output_version`)
    makes every name serve one content forever, so renditions can be cached as
    ``immutable``; the manifest maps each source to its current names.

    ``extension`` is given without a dot (``specs.EXTENSIONS``); a leading dot
    is tolerated.
    """
    return f"{output_folder(output_prefix, source_name)}{rendition}.{version}.{extension.removeprefix('.')}"


def output_folder(output_prefix: str, source_name: str) -> str:
    """The folder of every rendition (and version) of one source."""
    return f"{output_prefix}{source_name}/"


def is_rendition_version(name: str, folder: str, rendition: str, extension: str) -> bool:
    """Whether ``name`` is *some* version of ``rendition`` in ``folder`` (or its
    unversioned name from before versions existed), for removing old versions."""
    if not name.startswith(folder):
        return False
    base = name[len(folder) :]
    ext = extension.removeprefix(".")
    if base == f"{rendition}.{ext}":
        return True
    head, dot, version = base.removesuffix(f".{ext}").rpartition(".")
    return base.endswith(f".{ext}") and bool(dot) and head == rendition and bool(_VERSION.fullmatch(version))


def batch_folder(output_prefix: str, instance_id: str) -> str:
    """Folder holding one batch's bookkeeping (its runs, the latest-run pointer), beside its outputs."""
    return f"{output_prefix}{BATCHES_FOLDER}{instance_id}/"


# --- runs ----------------------------------------------------------------------
#
# Each start of a batch id is a *run* with its own id, and everything a run writes
# for itself (plans, per-shard results, the cancel marker, manifest, report) lives
# under its own folder. A leftover shard of a cancelled or terminated run can then
# only ever write into *its* run's folder, never into the manifest of a newer run
# of the same batch id (see docs/design.md, "Runs").

_RUN_ID = re.compile(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}")


def new_run_id(now: datetime, entropy: str) -> str:
    """``20261201T113400Z-1a2b3c``: sortable by start time, unique with the
    entropy (hex) part. Chosen by the HTTP starter, never by an orchestrator."""
    return f"{now.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}-{entropy[:6].lower()}"


def is_run_id(value: object) -> bool:
    return isinstance(value, str) and _RUN_ID.fullmatch(value) is not None


def run_folder(output_prefix: str, instance_id: str, run: str) -> str:
    """Everything one run writes for itself: ``.../_batches/{id}/runs/{run}/``."""
    return f"{batch_folder(output_prefix, instance_id)}runs/{run}/"


def manifest_blob_name(output_prefix: str, instance_id: str, run: str) -> str:
    """The manifest of one run, inside :func:`run_folder` (kept after later runs)."""
    return run_folder(output_prefix, instance_id, run) + "manifest.json"


def latest_run_blob_name(output_prefix: str, instance_id: str) -> str:
    """The stable pointer to the batch's latest finished run (run id, status,
    manifest and report names): the one URL that does not change between runs."""
    return batch_folder(output_prefix, instance_id) + "latest.json"


def cancel_blob_name(output_prefix: str, instance_id: str, run: str) -> str:
    """The run's cancel marker: once it exists, ProcessImage starts no new image of the run."""
    return run_folder(output_prefix, instance_id, run) + "cancel.json"


def controls_blob_name(output_prefix: str, instance_id: str, run: str) -> str:
    """The run's control document (pause, bound), read by lanes at each segment boundary."""
    return run_folder(output_prefix, instance_id, run) + "controls.json"


def proof_blob_name(output_prefix: str, instance_id: str, run: str) -> str:
    """The run's proof sheet (its sample's renditions beside their sources), beside its manifest."""
    return run_folder(output_prefix, instance_id, run) + "proof.html"


def review_blob_name(output_prefix: str, instance_id: str, run: str) -> str:
    """The run's review decision: written once (first wins), by a person or by the timeout."""
    return run_folder(output_prefix, instance_id, run) + "review.json"


def plan_folder(output_prefix: str, instance_id: str, run: str, plan_id: str) -> str:
    """Where ListImages writes one listing's shard files.

    Each ListImages attempt writes under a fresh ``plan_id``: Durable may run an
    activity twice, and only the attempt recorded in the history must be read back.
    """
    return f"{run_folder(output_prefix, instance_id, run)}plans/{plan_id}/"


def shard_plan_blob(folder: str, shard: int) -> str:
    """The list of images of shard ``shard`` inside a :func:`plan_folder`."""
    return f"{folder}{shard:05d}.json"


def shard_parts_prefix(output_prefix: str, instance_id: str, run: str, shard: int) -> str:
    """Where one shard of one run writes the per-image results of its segments."""
    return f"{run_folder(output_prefix, instance_id, run)}parts/{shard:05d}-"


def segment_part_blob(parts_prefix: str, segment: int) -> str:
    """The per-image results of one segment (``SEGMENT_SIZE`` images) of a shard."""
    return f"{parts_prefix}{segment:04d}.json"


def source_list_blob(output_prefix: str, instance_id: str, run: str) -> str:
    """An explicit ``source.blobs`` list, stored once by the HTTP starter so it never
    travels through Durable messages (inputs, plans, continue-as-new)."""
    return run_folder(output_prefix, instance_id, run) + "source-list.json"


def run_scratch_prefixes(output_prefix: str, instance_id: str, run: str) -> tuple[str, ...]:
    """What a run writes only for itself while it runs; removed once its manifest is written."""
    folder = run_folder(output_prefix, instance_id, run)
    return (f"{folder}plans/", f"{folder}parts/", f"{folder}cancel.json", f"{folder}source-list.json")


def shard_instance_id(instance_id: str, run: str, shard: int) -> str:
    """The instance id of a shard sub-orchestration: ``{batch}:{run}:{shard}``.

    Explicit and run-scoped (instead of the extension's ``{parent}:{sequence}``),
    so a shard of an older run that is still finishing never collides with a
    shard of a new run of the same batch, and ``{batch}:`` lists exactly the
    batch's shards (batch ids cannot contain ``:``).
    """
    return f"{instance_id}:{run}:{shard:05d}"


def shard_instance_prefix(instance_id: str, run: str | None = None) -> str:
    """The instance-id prefix of the shards of a batch (or of one of its runs)."""
    return f"{instance_id}:" if run is None else f"{instance_id}:{run}:"


def is_own_output(name: str, output_prefix: str) -> bool:
    """True when ``name`` is something this app writes for ``output_prefix``.

    ListImages must skip these when it lists the *output* container (source
    and output containers equal), so renditions are never fed back in as
    sources. With an empty output prefix only the ``_batches/`` folder is
    ours; request validation refuses an empty output prefix when the
    containers are equal, so that case only arises with separate containers,
    where the check is not needed at all.
    """
    if output_prefix and name.startswith(output_prefix):
        return True
    return name.startswith(output_prefix + BATCHES_FOLDER)


# --- Durable instance ids ------------------------------------------------------

MAX_INSTANCE_ID_LENGTH = 100
_INSTANCE_ID_CHARS = re.compile(r"[A-Za-z0-9_-]+")


def instance_id_error(batch_id: object) -> str | None:
    """Check a client-chosen batch id, used verbatim as the Durable instance id.

    Restricting it to ``[A-Za-z0-9_-]`` keeps it safe in URLs (status query
    routes), in blob names (:func:`batch_folder`) and in Azure Table keys used
    by the Durable storage provider, which forbid ``/ \\ # ?``.
    """
    if not isinstance(batch_id, str):
        return "must be a string"
    if not 1 <= len(batch_id) <= MAX_INSTANCE_ID_LENGTH:
        return f"must be 1 to {MAX_INSTANCE_ID_LENGTH} characters long, got {len(batch_id)}"
    if not _INSTANCE_ID_CHARS.fullmatch(batch_id):
        return "must contain only letters, digits, '_' and '-'"
    if batch_id[0] == "-" or batch_id[-1] == "-":
        return "must not start or end with '-'"
    return None
