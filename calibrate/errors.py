"""Errors of the calibration tool; all are :class:`~rtbci.errors.UserError` so the CLI prints one message."""

from __future__ import annotations

from rtbci.errors import UserError

__all__ = ["CalibrationDataError", "CalibrationError", "ProfileWriteError"]


class CalibrationError(UserError):
    """Calibration cannot run: no previous decoder in the profile, or a bad setting."""


class CalibrationDataError(CalibrationError):
    """The calibration block is too short, lacks a behavior stream, or lacks the decoder's input."""


class ProfileWriteError(CalibrationError):
    """The new profile version cannot be written without overwriting something silently."""
