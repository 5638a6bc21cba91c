"""Per-image results, batch progress and the batch manifest.

A result's shape is ``imagebatch.messages.ImageResult`` (it travels from
ProcessImage to its shard, then to a results blob and the manifest); the helpers
here build it and return its plain dict, as the manifest and the report read it.
Every result stays compact: names, counts and sizes, never image bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from imagebatch.messages import BatchStatus, ImageResult, ImageStatus, OutputEntry

# Failure kinds not produced by the image decoder.
KIND_BLOB_GONE = "blob_gone"
KIND_TOO_LARGE = "too_large"
KIND_TRANSIENT_EXHAUSTED = "transient_exhausted"
KIND_STORAGE_ERROR = "storage_error"
# Why an image was not started (status "not_started", not a failure).
KIND_CANCELLED = "cancelled"
# Status "unknown": its result record was lost and storage could not confirm its outputs.
KIND_RECORD_LOST = "record_lost"

MAX_MESSAGE_CHARS = 300


def output_entry(rendition: str, blob: str, width: int, height: int, size: int) -> dict[str, Any]:
    """One rendition of an image's result (``imagebatch.messages.OutputEntry``)."""
    return OutputEntry(rendition, blob, int(width), int(height), int(size)).to_dict()


def image_result(
    name: str,
    status: ImageStatus,
    *,
    outputs: Iterable[Mapping[str, Any]] = (),
    duration_ms: int = 0,
    kind: str | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    """One image's result as it travels and is recorded (``imagebatch.messages.ImageResult``)."""
    return ImageResult(
        name=name,
        status=status,
        outputs=tuple(OutputEntry.from_dict(o) for o in outputs),
        duration_ms=int(duration_ms),
        kind=kind,
        message=None if kind is None else (message or "")[:MAX_MESSAGE_CHARS],
    ).to_dict()


def failed_result(name: str, kind: str, message: str, duration_ms: int = 0) -> dict[str, Any]:
    return image_result(name, "failed", kind=kind, message=message, duration_ms=duration_ms)


def not_started_result(name: str, message: str = "the run was cancelled before this image started") -> dict[str, Any]:
    """An image the run never started (cancel): neither done nor failed, and
    exactly what a re-submission of the batch will process."""
    return image_result(name, "not_started", kind=KIND_CANCELLED, message=message)


@dataclass
class Progress:
    """Counts shown while a batch runs (custom status) and in its summary."""

    total: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    in_flight: int = 0
    not_started: int = 0

    @property
    def completed(self) -> int:
        return self.done + self.skipped + self.failed

    def record(self, result: Mapping[str, Any]) -> None:
        status = result.get("status")
        if status == "processed":
            self.done += 1
        elif status == "skipped":
            self.skipped += 1
        elif status == "not_started":
            self.not_started += 1
        else:
            self.failed += 1

    def to_dict(self) -> dict[str, int]:
        return {**asdict(self), "completed": self.completed}

    @classmethod
    def from_dict(cls, counts: Mapping[str, Any]) -> Progress:
        keys = ("total", "done", "skipped", "failed", "in_flight", "not_started")
        return cls(**{key: int(counts.get(key, 0)) for key in keys})

    def add(self, counts: Mapping[str, Any]) -> None:
        """Add another progress' finished counts (a shard's) to these."""
        for key in ("done", "skipped", "failed", "not_started"):
            setattr(self, key, getattr(self, key) + int(counts.get(key, 0)))


def failure_percent(progress: Progress) -> float:
    return 0.0 if progress.total == 0 else 100.0 * progress.failed / progress.total


def batch_status(progress: Progress, tolerated_failure_percent: float) -> BatchStatus:
    """Step Functions' ToleratedFailurePercentage: the batch fails only when the
    share of failed images is strictly above the tolerated share."""
    return "failed" if failure_percent(progress) > tolerated_failure_percent else "succeeded"


def custom_status(
    stage: str, progress: Progress, manifest: str | None = None, *, run: str | None = None
) -> dict[str, Any]:
    """What ``set_custom_status`` carries: counts only, so it stays far under
    the 16 KB limit whatever the batch size."""
    status: dict[str, Any] = {"stage": stage, "progress": progress.to_dict()}
    if run:
        status["run"] = run
    if manifest:
        status["manifest"] = manifest
    return status


def build_manifest(
    *,
    instance_id: str,
    run: str,
    request: Mapping[str, Any],
    results: Sequence[Mapping[str, Any]],
    progress: Progress,
    status: BatchStatus,
    started: str,
    finished: str,
    listing_error: str | None = None,
    warnings: list[str] | None = None,
) -> dict[str, Any]:
    failures = [
        {"name": r["name"], "kind": r.get("kind"), "message": r.get("message")}
        for r in results
        if r.get("status") == "failed"
    ]
    durations = sorted(int(r.get("duration_ms", 0)) for r in results if r.get("status") in ("processed", "skipped"))
    not_started = [r["name"] for r in results if r.get("status") == "not_started"]
    manifest: dict[str, Any] = {
        "batch_id": instance_id,
        "run": run,
        "status": status,
        "parameters": dict(request),
        "counts": progress.to_dict(),
        "failure_percent": round(failure_percent(progress), 3),
        "timings": {
            "started": started,
            "finished": finished,
            "image_ms_median": durations[len(durations) // 2] if durations else None,
            "image_ms_max": durations[-1] if durations else None,
        },
        "failures": failures,
        "not_started": not_started,
        "images": [dict(r) for r in results],
    }
    if listing_error:
        manifest["listing_error"] = listing_error
    if warnings:
        manifest["warnings"] = list(warnings)
    return manifest


def compact_summary(manifest: Mapping[str, Any], manifest_location: str) -> dict[str, Any]:
    """The orchestration output and the webhook body: no per-image lists."""
    return {
        "batch_id": manifest["batch_id"],
        "run": manifest.get("run"),
        "status": manifest["status"],
        "counts": manifest["counts"],
        "failure_percent": manifest["failure_percent"],
        "started": manifest["timings"]["started"],
        "finished": manifest["timings"]["finished"],
        "manifest": manifest_location,
        **({"warnings": manifest["warnings"]} if manifest.get("warnings") else {}),
        **({"review": _review_summary(manifest["review"])} if manifest.get("review") else {}),
    }


def _review_summary(review: Mapping[str, Any]) -> dict[str, Any]:
    """The review without its list of sample images (the output stays small)."""
    return {key: value for key, value in review.items() if key != "sample_images"}


def manifest_not_written(location: str, reason: str) -> dict[str, Any]:
    """What replaces the manifest location in a summary when it could not be
    written: the summary itself (counts, status) is then the run's only record,
    and re-submitting the batch writes the manifest where it was meant to go."""
    return {"manifest": None, "report": None, "manifest_error": manifest_error_text(location, reason)}


def manifest_error_text(location: str, reason: str) -> str:
    """Why a run has no manifest, in one line (``BatchSummary.manifest_error``)."""
    return one_line(f"the manifest could not be written to {location}: {reason}")


def one_line(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """A reason for people: its first line, no traceback, at most ``limit`` characters."""
    first = next((line.strip() for line in str(text).splitlines() if line.strip()), "")
    return first if len(first) <= limit else first[: limit - 1] + "…"
