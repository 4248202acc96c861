"""Errors that the CLI reports as one clear message rather than a traceback."""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(Exception):
    """Something the user can fix: a bad file, profile, stream or argument.

    The message must name the file, field or stream at fault and say what was
    expected.
    """
