"""Orchestrator functions (deterministic; no I/O)."""

from orchestrators.image_processing import bp

__all__ = ["bp"]
