"""Render specifications shared by request validation, the image pipeline and
the orchestration input.

They are frozen dataclasses with explicit ``to_dict``/``from_dict`` so that what
travels through Durable Functions is plain, small JSON that any replay of the
orchestrator decodes identically.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

OutputFormat = Literal["jpeg", "webp", "png"]
Fit = Literal["contain", "cover"]

FORMATS: tuple[OutputFormat, ...] = ("jpeg", "webp", "png")
FITS: tuple[Fit, ...] = ("contain", "cover")

CONTENT_TYPES: dict[str, str] = {
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "png": "image/png",
}
EXTENSIONS: dict[str, str] = {"jpeg": "jpg", "webp": "webp", "png": "png"}

MIN_WIDTH = 16
MAX_WIDTH = 8192
DEFAULT_QUALITY = 82


@dataclass(frozen=True)
class Rendition:
    """One output size.

    ``fit="contain"`` scales the image to fit inside ``width`` x ``height``
    (or just ``width`` when ``height`` is None) keeping its aspect ratio;
    ``fit="cover"`` fills the whole box and centre-crops the overflow. Neither
    ever upscales: a source smaller than the box keeps its own size.
    """

    name: str
    width: int
    height: int | None = None
    fit: Fit = "contain"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "width": self.width, "height": self.height, "fit": self.fit}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rendition:
        return cls(
            name=data["name"],
            width=int(data["width"]),
            height=None if data.get("height") is None else int(data["height"]),
            fit=data.get("fit", "contain"),
        )


DEFAULT_RENDITIONS: tuple[Rendition, ...] = (
    Rendition("large", 1600),
    Rendition("medium", 800),
    Rendition("thumb", 320),
)


@dataclass(frozen=True)
class RenderSpec:
    """Everything the pipeline needs to turn one source image into renditions."""

    renditions: tuple[Rendition, ...] = DEFAULT_RENDITIONS
    format: OutputFormat = "jpeg"
    quality: int = DEFAULT_QUALITY

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]

    def fingerprint(self) -> str:
        """A short stable string identifying these parameters.

        Stored in blob metadata so that a re-run can tell whether an existing
        output was made with the same settings (idempotent skip).
        """
        parts = [self.format, str(self.quality)]
        parts += [f"{r.name}:{r.width}x{r.height or 0}:{r.fit}" for r in self.renditions]
        return ";".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "renditions": [r.to_dict() for r in self.renditions],
            "format": self.format,
            "quality": self.quality,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RenderSpec:
        return cls(
            renditions=tuple(Rendition.from_dict(r) for r in data["renditions"]),
            format=data.get("format", "jpeg"),
            quality=int(data.get("quality", DEFAULT_QUALITY)),
        )


@dataclass(frozen=True)
class SourceBlob:
    """A listed input image: just enough to process it and detect changes."""

    name: str
    etag: str | None = None
    size: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "etag": self.etag, "size": self.size}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SourceBlob:
        return cls(name=data["name"], etag=data.get("etag"), size=data.get("size"))


REVIEW_ON_TIMEOUT: tuple[str, ...] = ("reject", "approve")


@dataclass(frozen=True)
class ReviewSpec:
    """Proof before the batch: render ``sample`` images first, then wait up to
    ``timeout_minutes`` for a person to approve or reject (``on_timeout`` decides
    when nobody does). See ``orchestrators/review.py``."""

    sample: int
    timeout_minutes: int = 1440
    on_timeout: str = "reject"

    def to_dict(self) -> dict[str, Any]:
        return {"sample": self.sample, "timeout_minutes": self.timeout_minutes, "on_timeout": self.on_timeout}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ReviewSpec | None:
        if not data:
            return None
        return cls(
            sample=int(data["sample"]),
            timeout_minutes=int(data.get("timeout_minutes") or 1440),
            on_timeout=str(data.get("on_timeout") or "reject"),
        )


@dataclass(frozen=True)
class BatchRequest:
    """A validated ``POST /api/batches`` body.

    Exactly one of ``source_prefix`` (list the container under a prefix; ``""``
    lists the whole container) and ``source_blobs`` (an explicit list) is set.
    Once a run starts, an explicit list is stored once in a blob
    (``source_list_blob``, with ``source_count`` names) and ``source_blobs`` is
    dropped, so up to 10,000 names never travel through Durable messages.
    """

    source_container: str
    output_container: str
    source_prefix: str | None = None
    source_blobs: tuple[str, ...] | None = None
    output_prefix: str = ""
    spec: RenderSpec = field(default_factory=RenderSpec)
    max_concurrency: int = 10
    tolerated_failure_percent: float = 0.0
    batch_id: str | None = None
    source_list_blob: str | None = None
    source_count: int | None = None
    # Optional: minutes after the run's start when no new image starts any more.
    deadline_minutes: int | None = None
    # Optional: render a sample first and wait for approval (proof before the batch).
    review: ReviewSpec | None = None

    def with_stored_list(self, blob: str) -> BatchRequest:
        """This request with its explicit list replaced by the blob that holds it."""
        count = len(self.source_blobs or ())
        return replace(self, source_blobs=None, source_list_blob=blob, source_count=count)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "source_container": self.source_container,
            "source_prefix": self.source_prefix,
            "source_blobs": None if self.source_blobs is None else list(self.source_blobs),
            "output_container": self.output_container,
            "output_prefix": self.output_prefix,
            "spec": self.spec.to_dict(),
            "max_concurrency": self.max_concurrency,
            "tolerated_failure_percent": self.tolerated_failure_percent,
            "batch_id": self.batch_id,
        }
        if self.deadline_minutes:
            data["deadline_minutes"] = self.deadline_minutes
        if self.review is not None:
            data["review"] = self.review.to_dict()
        if self.source_list_blob:
            data["source_list"] = {"blob": self.source_list_blob, "count": self.source_count}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BatchRequest:
        blobs = data.get("source_blobs")
        return cls(
            source_container=data["source_container"],
            source_prefix=data.get("source_prefix"),
            source_blobs=None if blobs is None else tuple(blobs),
            output_container=data["output_container"],
            output_prefix=data.get("output_prefix", ""),
            spec=RenderSpec.from_dict(data["spec"]),
            max_concurrency=int(data.get("max_concurrency", 10)),
            tolerated_failure_percent=float(data.get("tolerated_failure_percent", 0.0)),
            batch_id=data.get("batch_id"),
            source_list_blob=(data.get("source_list") or {}).get("blob"),
            source_count=(data.get("source_list") or {}).get("count"),
            deadline_minutes=int(data["deadline_minutes"]) if data.get("deadline_minutes") else None,
            review=ReviewSpec.from_dict(data.get("review")),
        )
