"""The HTTP API: start, follow and act on batches (``openapi.yaml`` describes it)."""

from http_api import batches, controls
from http_api.blueprint import bp

__all__ = ["batches", "bp", "controls"]
