"""App settings, read once from the environment (Functions app settings /
``local.settings.json`` Values).

Kept Azure-free and explicit so activities and tests agree on names and
defaults, and so that nothing reads ``os.environ`` from orchestrator code
(orchestrators must stay deterministic; activities read settings instead).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from imagebatch.libvips import BACKENDS
from imagebatch.messages import RetryOptions

DEFAULT_CACHE_CONTROL = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class AppSettings:
    """Settings the activities need.

    ``storage_connection`` names the connection the way Functions bindings do:
    either an app setting holding a connection string, or identity-based
    settings ``<name>__blobServiceUri`` / ``<name>__accountName`` (plus optional
    ``<name>__clientId`` for a user-assigned managed identity).
    """

    storage_connection: str = "AzureWebJobsStorage"
    notify_webhook_url: str | None = None
    notify_timeout_seconds: float = 10.0
    notify_attempts: int = 3
    max_pixels: int = 100_000_000
    cache_control: str = DEFAULT_CACHE_CONTROL
    list_page_size: int = 5000
    max_source_bytes: int = 256 * 1024 * 1024
    retry_first_interval_ms: int = 2000
    retry_max_attempts: int = 4
    shard_size: int | None = None  # None: imagebatch.sharding.effective_shard_size
    image_backend: str = "auto"
    # Peak memory one image's decode may take; larger ones are refused as too_large
    # (imagebatch.imaging.render_image). Per-process budget that concurrent decodes
    # share (imagebatch.memory_budget; sizing in docs/design.md section 7).
    max_decode_mb: int = 256
    memory_budget_mb: int = 1024

    def __post_init__(self) -> None:
        if self.image_backend not in BACKENDS:
            raise ValueError(f"IMAGE_BACKEND must be one of {', '.join(BACKENDS)}, got {self.image_backend!r}")
        if self.max_decode_mb < 1 or self.memory_budget_mb < 1:
            raise ValueError("IMAGE_MAX_DECODE_MB and IMAGE_MEMORY_BUDGET_MB must be at least 1")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AppSettings:
        env = os.environ if env is None else env
        return cls(
            storage_connection=env.get("IMAGES_STORAGE_CONNECTION", "AzureWebJobsStorage") or "AzureWebJobsStorage",
            notify_webhook_url=env.get("NOTIFY_WEBHOOK_URL") or None,
            notify_timeout_seconds=float(env.get("NOTIFY_TIMEOUT_SECONDS", "10")),
            notify_attempts=int(env.get("NOTIFY_ATTEMPTS", "3")),
            max_pixels=int(env.get("IMAGE_MAX_PIXELS", "100000000")),
            cache_control=env.get("RENDITION_CACHE_CONTROL", DEFAULT_CACHE_CONTROL),
            list_page_size=int(env.get("LIST_PAGE_SIZE", "5000")),
            max_source_bytes=int(env.get("MAX_SOURCE_BYTES", str(256 * 1024 * 1024))),
            retry_first_interval_ms=int(env.get("ACTIVITY_RETRY_FIRST_INTERVAL_MS", "2000")),
            retry_max_attempts=int(env.get("ACTIVITY_RETRY_MAX_ATTEMPTS", "4")),
            shard_size=int(env["SHARD_SIZE"]) if env.get("SHARD_SIZE") else None,
            image_backend=(env.get("IMAGE_BACKEND") or "auto").strip().lower(),
            max_decode_mb=int(env.get("IMAGE_MAX_DECODE_MB") or "256"),
            memory_budget_mb=int(env.get("IMAGE_MEMORY_BUDGET_MB") or "1024"),
        )

    def retry_options(self) -> RetryOptions:
        """The activity retry policy handed to the orchestrator in its input
        (orchestrators may not read settings themselves)."""
        return RetryOptions(
            first_interval_ms=self.retry_first_interval_ms,
            max_attempts=self.retry_max_attempts,
            backoff=2.0,
            max_interval_ms=30000,
        )
