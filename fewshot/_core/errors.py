"""Errors every layer raises or reports, importable without torch."""

from __future__ import annotations

__all__ = ["ModelNotFoundError", "first_line"]


class ModelNotFoundError(OSError):
    """Raised when a model id or folder cannot be loaded (offline, typo, bad folder)."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, for one-line errors."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
