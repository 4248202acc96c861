"""The calibration tool: record or load a block, fit the decoder to it in seconds, score it on
held-out data, export it, and write a new profile version.

Public API (the CLI ``rtbci calibrate`` and the desktop app's "Calibrate" action call these):

- :func:`run_calibration` — everything up to a new artifact and its held-out report,
  with a progress callback; the profile is not touched.
- :func:`accept_calibration` — the guard and the new profile version, where
  :func:`profile_target` says (never into the shipped profiles).
- :func:`reject_calibration` — remove a refused artifact, keeping its report under ``rejected/``.

Everything is written to the user data directory (:mod:`rtbci.home`) unless told otherwise.
"""

from calibrate.data import min_record_seconds
from calibrate.errors import CalibrationDataError, CalibrationError, ProfileWriteError
from calibrate.pipeline import (
    CalibrationConfig,
    CalibrationProgress,
    CalibrationResult,
    accept_calibration,
    profile_target,
    reject_calibration,
    run_calibration,
)
from calibrate.split import CalibrationSplitConfig
from calibrate.stage_a import StageAConfig
from calibrate.stage_b import FinetuneConfig

__all__ = [
    "CalibrationConfig",
    "CalibrationDataError",
    "CalibrationError",
    "CalibrationProgress",
    "CalibrationResult",
    "CalibrationSplitConfig",
    "FinetuneConfig",
    "ProfileWriteError",
    "StageAConfig",
    "accept_calibration",
    "min_record_seconds",
    "profile_target",
    "reject_calibration",
    "run_calibration",
]
