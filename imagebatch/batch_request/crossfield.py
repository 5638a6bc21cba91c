"""The request rules a schema cannot express: one field against another.

Each is an :data:`~imagebatch.batch_request.schema.ObjectRule` attached to an
object of :mod:`imagebatch.batch_request.rules`, run after that object's own
fields with the object received and the fields accepted (``None`` for a field
that was absent or refused, so a rule only looks at what is valid).
"""

from __future__ import annotations

from typing import Any

from imagebatch import naming
from imagebatch.batch_request.errors import Errors
from imagebatch.batch_request.schema import join
from imagebatch.specs import EXTENSIONS


def cover_needs_height(raw: dict[str, Any], valid: dict[str, Any], path: str, errors: Errors) -> None:
    """``fit: "cover"`` without a ``height`` has no box to fill; ``"contain"``
    without one is the default and fine."""
    if valid["fit"] == "cover" and raw.get("height") is None:
        errors.add(join(path, "fit"), '"cover" needs a height (there is no box to fill)')


def outputs_apart_from_sources(raw: dict[str, Any], valid: dict[str, Any], path: str, errors: Errors) -> None:
    """Keep outputs from being read back as inputs when both live in one container.

    Outputs are every name under ``output.prefix``. Listing under
    ``source.prefix`` sees them only if one prefix starts with the other: when
    the source prefix is inside the output area every listed name is an output
    (refused); when the output area is inside the listed range ListImages
    filters it with :func:`naming.is_own_output` (allowed). An empty output
    prefix would make the whole container "output", so it is refused, as is an
    explicit blob under the output prefix.
    """
    source, output = valid["source"], valid["output"]
    if source is None or output is None:
        return
    prefix = output["prefix"]
    if source["container"] is None or source["container"] != output["container"] or prefix is None:
        return
    if prefix == "":
        errors.add("output.prefix", "must not be empty when output.container is the source container")
        return
    if source["prefix"] is not None and source["prefix"].startswith(prefix):
        errors.add(
            "source.prefix",
            f"must not start with output.prefix {prefix!r} in the same container (it would list the outputs)",
        )
    for index, name in enumerate(source["blobs"] or ()):
        if naming.is_own_output(name, prefix):
            errors.add(f"source.blobs[{index}]", f"must not be under output.prefix {prefix!r}")


def valid_output_names(raw: dict[str, Any], valid: dict[str, Any], path: str, errors: Errors) -> None:
    """Explicit blobs must yield valid output names (length, segment count); the
    longest rendition name gives the longest output name, and all renditions
    have the same depth."""
    source, output, renditions, fmt = valid["source"], valid["output"], valid["renditions"], valid["format"]
    if source is None or output is None or not renditions or fmt is None:
        return
    if not source["blobs"] or output["prefix"] is None:
        return
    longest = max((r["name"] for r in renditions), key=len)
    for index, name in enumerate(source["blobs"]):
        message = naming.blob_name_error(
            naming.output_blob_name(output["prefix"], name, longest, EXTENSIONS[fmt], naming.VERSION_PLACEHOLDER)
        )
        if message:
            errors.add(f"source.blobs[{index}]", f"gives an invalid output name: {message}")
