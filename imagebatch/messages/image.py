"""One image: ``ProcessImageInput`` -> ``ImageResult`` (with its ``OutputEntry`` items),
and ``StorageRefusal``, the storage error that retrying cannot fix."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Self, cast

from imagebatch.messages.base import IMAGE_STATUSES, Fields, ImageStatus, Message
from imagebatch.specs import RenderSpec, SourceBlob


def results_by_segment(fields: Fields, key: str) -> dict[str, tuple[ImageResult, ...]]:
    """``{"<segment>": [ImageResult, ...]}`` (results carried inline when a blob write failed)."""
    inline = fields.obj(key) if fields.has(key) else None
    if inline is None:
        return {}
    return {str(segment): inline.objs(str(segment), ImageResult.read) for segment in inline.data}


def write_inline(inline: Mapping[str, Iterable[ImageResult]]) -> dict[str, list[dict[str, Any]]]:
    return {segment: [result.to_dict() for result in results] for segment, results in inline.items()}


@dataclass(frozen=True)
class ProcessImageInput(Message):
    """ProcessImage's input: one source image and how to render it (``cancel_blob``: the
    run's hold marker, checked before the image starts)."""

    source_container: str
    source: SourceBlob
    output_container: str
    output_prefix: str
    spec: RenderSpec
    cancel_blob: str | None = None

    def _write(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "source_container": self.source_container,
            "source": self.source.to_dict(),
            "output_container": self.output_container,
            "output_prefix": self.output_prefix,
            "spec": self.spec.to_dict(),
        }
        if self.cancel_blob:
            data["cancel_blob"] = self.cancel_blob
        return data

    @classmethod
    def _read(cls, fields: Fields, version: int) -> Self:
        return cls(
            source_container=fields.text("source_container"),
            source=fields.foreign("source", SourceBlob.from_dict),
            output_container=fields.text("output_container"),
            output_prefix=fields.text("output_prefix"),
            spec=fields.foreign("spec", RenderSpec.from_dict),
            cancel_blob=fields.opt_text("cancel_blob"),
        )


@dataclass(frozen=True)
class OutputEntry(Message):
    """One rendition written for an image (``size`` travels as ``bytes``)."""

    rendition: str
    blob: str
    width: int
    height: int
    size: int

    def _write(self) -> dict[str, Any]:
        return {
            "rendition": self.rendition,
            "blob": self.blob,
            "width": self.width,
            "height": self.height,
            "bytes": self.size,
        }

    @classmethod
    def _read(cls, fields: Fields, version: int) -> Self:
        return cls(
            rendition=fields.text("rendition"),
            blob=fields.text("blob"),
            width=fields.integer("width"),
            height=fields.integer("height"),
            size=fields.integer("bytes"),
        )


@dataclass(frozen=True)
class ImageResult(Message):
    """One image's result: ProcessImage's output, and the record the shard writes to its
    results blob and the manifest lists (``imagebatch.results`` builds them).

    ``kind``/``message``: why it failed, was not started or is unknown;
    ``removed_outputs``: an earlier run's renditions removed with a failed source;
    ``recovered``: re-checked in storage after its record was lost."""

    name: str
    status: ImageStatus
    outputs: tuple[OutputEntry, ...] = ()
    duration_ms: int = 0
    kind: str | None = None
    message: str | None = None
    removed_outputs: int | None = None
    recovered: bool = False

    def _write(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "status": self.status,
            "outputs": [o.to_dict() for o in self.outputs],
            "duration_ms": self.duration_ms,
        }
        if self.kind is not None:
            data["kind"] = self.kind
            data["message"] = self.message or ""
        if self.removed_outputs:
            data["removed_outputs"] = self.removed_outputs
        if self.recovered:
            data["recovered"] = True
        return data

    @classmethod
    def _read(cls, fields: Fields, version: int) -> Self:
        status = fields.text("status")
        if status not in IMAGE_STATUSES:
            raise fields.error("status", f"must be one of {', '.join(IMAGE_STATUSES)}, got {status!r}")
        return cls(
            name=fields.text("name"),
            status=cast(ImageStatus, status),
            outputs=fields.objs("outputs", OutputEntry.read),
            duration_ms=fields.integer("duration_ms"),
            kind=fields.opt_text("kind"),
            message=fields.opt_text("message"),
            removed_outputs=fields.opt_integer("removed_outputs"),
            recovered=fields.flag("recovered"),
        )


@dataclass(frozen=True)
class StorageRefusal(Message):
    """A storage error that retrying cannot fix (``blob_gone``, ``storage_error``)."""

    kind: str
    message: str

    def _write(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message}

    @classmethod
    def _read(cls, fields: Fields, version: int) -> Self:
        return cls(kind=fields.text("kind"), message=fields.text("message"))
