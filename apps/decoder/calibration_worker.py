"""The calibration worker: :func:`calibrate.run_calibration` on its own QThread, its progress and its
outcome as Qt signals, and Cancel.

The pipeline fits for seconds to minutes; running it on the GUI thread would freeze the redraw
(the engine decodes in its own process meanwhile and is never touched here).
"""

from __future__ import annotations

import threading
import traceback
from dataclasses import dataclass
from pathlib import Path

from PySide6 import QtCore

from calibrate import CalibrationConfig, CalibrationProgress, run_calibration
from calibrate.pipeline import STAGES
from rtbci.errors import UserError
from rtbci.signal import Labels

__all__ = ["CalibrationCancelledError", "CalibrationRequest", "CalibrationWorker"]


@dataclass(frozen=True)
class CalibrationRequest:
    """One calibration to run: give exactly one of ``session_file`` and ``record_seconds``.

    Attributes
    ----------
    profile_path
        The rig profile whose decoder is calibrated.
    session_file
        A Session file (or an importable recording), as ``--from``.
    record_seconds
        Record this long from the profile's LSL streams first, as ``--record``.
    record_path
        Where that recording goes.
    config
        Pipeline settings; ``config.full`` runs Stage B.
    labels
        What the decoder is fit to, as ``--labels``: ``hand``, or without a hand ``cue`` or
        ``refit`` (a recording runs the cursor task meanwhile).
    """

    profile_path: Path
    session_file: Path | None
    record_seconds: float | None
    record_path: Path | None
    config: CalibrationConfig
    labels: Labels = "hand"

    def stages(self) -> tuple[str, ...]:
        """The pipeline stages this request goes through, in order (for an overall progress figure)."""
        skipped = {"record"} if self.record_seconds is None else set()
        if not self.config.full:
            skipped.add("stage_b")
        return tuple(stage for stage in STAGES if stage not in skipped)


class CalibrationCancelledError(Exception):
    """Raised inside the worker thread to unwind the pipeline after Cancel."""


class CalibrationWorker(QtCore.QThread):
    """Runs one :class:`CalibrationRequest`; emits exactly one of ``succeeded``, ``failed`` and ``cancelled``.

    Cancel sets the pipeline's ``stop`` event (a recording ends at once, its file kept) and makes the
    next progress report raise :class:`CalibrationCancelledError`, which unwinds the pipeline through its
    own ``with``/``finally`` blocks: a cancelled calibration writes no profile.

    Signals
    -------
    progressed(str, float, str)
        Stage name, fraction of that stage done (0..1), and what is happening.
    succeeded(object)
        The :class:`calibrate.CalibrationResult`.
    failed(str)
        The error's message (a user error's own message; never a traceback).
    cancelled()
    """

    progressed = QtCore.Signal(str, float, str)
    succeeded = QtCore.Signal(object)
    failed = QtCore.Signal(str)
    cancelled = QtCore.Signal()

    def __init__(self, request: CalibrationRequest, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.request = request
        self._stop = threading.Event()

    def cancel(self) -> None:
        """Ask the pipeline to stop at its next progress report (a recording stops at once)."""
        self._stop.set()

    @property
    def cancel_requested(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._stop.is_set()

    def _report(self, update: CalibrationProgress) -> None:
        if self._stop.is_set():
            raise CalibrationCancelledError
        self.progressed.emit(update.stage, update.fraction, update.message)

    def run(self) -> None:
        """The thread's body (call :meth:`start`, not this)."""
        request = self.request
        try:
            result = run_calibration(
                request.profile_path,
                session_file=request.session_file,
                record_seconds=request.record_seconds,
                record_path=request.record_path,
                config=request.config,
                progress=self._report,
                stop=self._stop,
                labels=request.labels,
            )
        except CalibrationCancelledError:
            self.cancelled.emit()
        except UserError as error:
            # After Cancel, an error is the stop's consequence (a recording cut short), not news.
            if self._stop.is_set():
                self.cancelled.emit()
            else:
                self.failed.emit(str(error))
        except Exception as error:  # the thread's boundary: anything else becomes a message, not a crash
            traceback.print_exc()
            self.failed.emit(f"{type(error).__name__}: {error}")
        else:
            self.succeeded.emit(result)
