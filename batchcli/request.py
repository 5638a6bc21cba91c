"""Turn ``submit`` options into a ``POST /api/batches`` body.

Only the *syntax* of the options is checked here (``--rendition`` shapes);
every rule about values (container names, ranges, overlaps) is left to the
server, which reports all problems at once, so the CLI and the API can never
disagree about what is valid.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

_RENDITION = re.compile(r"(?P<name>[^:]+):(?P<width>\d+)(?:x(?P<height>\d+))?(?::(?P<fit>contain|cover))?")


def parse_rendition(text: str) -> dict[str, Any]:
    """``thumb:320x320:cover`` -> ``{"name": "thumb", "width": 320, "height": 320, "fit": "cover"}``."""
    match = _RENDITION.fullmatch(text)
    if not match:
        raise argparse.ArgumentTypeError(
            f"invalid rendition {text!r}: expected name:width[xheight][:cover|:contain], e.g. thumb:320x320:cover"
        )
    rendition: dict[str, Any] = {"name": match["name"], "width": int(match["width"])}
    if match["height"]:
        rendition["height"] = int(match["height"])
    if match["fit"]:
        rendition["fit"] = match["fit"]
    return rendition


def batch_request(args: argparse.Namespace) -> dict[str, Any]:
    """Only the options given are sent, so the server's defaults apply to the rest."""
    source: dict[str, Any] = {"container": args.source_container}
    if args.blob:
        source["blobs"] = list(args.blob)
    else:
        source["prefix"] = args.prefix if args.prefix is not None else ""
    output: dict[str, Any] = {"container": args.output_container}
    if args.output_prefix is not None:
        output["prefix"] = args.output_prefix
    body: dict[str, Any] = {"source": source, "output": output}
    optional = {
        "renditions": args.rendition or None,
        "format": args.format,
        "quality": args.quality,
        "max_concurrency": args.max_concurrency,
        "tolerated_failure_percent": args.tolerated_failure_percent,
        "batch_id": args.batch_id,
        "deadline_minutes": getattr(args, "deadline_minutes", None),
    }
    body.update({key: value for key, value in optional.items() if value is not None})
    sample = getattr(args, "review_sample", None)
    if sample is not None:
        review: dict[str, Any] = {"sample": sample}
        if getattr(args, "review_timeout_minutes", None) is not None:
            review["timeout_minutes"] = args.review_timeout_minutes
        if getattr(args, "review_on_timeout", None) is not None:
            review["on_timeout"] = args.review_on_timeout
        body["review"] = review
    return body
