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

from rtbci.lazy import lazy_exports

# Loaded on first use, so that the light `calibrate.command` (the `rtbci calibrate` entry
# point) does not import torch for `--help`.
__getattr__, __all__ = lazy_exports(
    __name__,
    {
        "CalibrationConfig": "calibrate.pipeline",
        "CalibrationDataError": "calibrate.errors",
        "CalibrationError": "calibrate.errors",
        "CalibrationProgress": "calibrate.pipeline",
        "CalibrationResult": "calibrate.pipeline",
        "CalibrationSplitConfig": "calibrate.split",
        "ProfileWriteError": "calibrate.errors",
        "StageAConfig": "rtbci.train.stage_a",
        "StageBConfig": "rtbci.train.stage_b",
        "accept_calibration": "calibrate.pipeline",
        "min_record_seconds": "calibrate.data",
        "profile_target": "calibrate.pipeline",
        "reject_calibration": "calibrate.pipeline",
        "run_calibration": "calibrate.pipeline",
    },
)
