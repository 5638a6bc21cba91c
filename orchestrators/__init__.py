"""Orchestrator functions (deterministic; no I/O)."""

from orchestrators import image_processing, shard  # noqa: F401 - importing registers them on bp
from orchestrators.blueprint import bp

__all__ = ["bp"]
