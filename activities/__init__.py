"""Activity functions (the only place the batch does I/O)."""

from activities.functions import bp

__all__ = ["bp"]
