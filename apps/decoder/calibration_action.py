"""The window's "Calibrate…" action, start to end: ask (source, Stage B) -> run the pipeline on a worker
thread behind a progress dialog with Cancel -> show the held-out report -> on Accept, write the new
profile version and load it into the window.

Every dialog here is non-modal: the dashboard keeps redrawing and the safety stop (Esc, the output
button) stays reachable while a calibration runs. The Calibrate button is disabled until the flow
ends, so only one calibration runs at a time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from apps.decoder.calibration_dialog import CalibrationDialog
from apps.decoder.calibration_report import CalibrationReportDialog
from apps.decoder.calibration_worker import CalibrationRequest, CalibrationWorker
from calibrate import CalibrationConfig, CalibrationResult, accept_calibration
from rtbci.errors import UserError
from rtbci.profile import load_profile

__all__ = ["CalibrationAction"]

PROGRESS_STEPS = 1000
_STAGE_LABELS = {
    "record": "Recording",
    "load": "Loading the block",
    "stage_a": "Stage A",
    "stage_b": "Stage B",
    "score": "Scoring on held-out data",
    "export": "Exporting",
}


@dataclass(frozen=True)
class CalibrationHost:
    """What the calibration flow needs from the window that holds it (and nothing more).

    Attributes
    ----------
    parent
        Parent of the dialogs.
    selected_profile
        The profile path chosen in the window, or ``None``.
    record_dir
        The folder recordings go to now.
    calibrate_button
        Disabled while a calibration is open.
    show_status, report_error
        The window's status line, and its error report (title, message).
    load_profile_version
        Switches the window to an accepted profile version.
    """

    parent: QtWidgets.QWidget
    selected_profile: Callable[[], str | None]
    record_dir: Callable[[], Path]
    calibrate_button: QtWidgets.QAbstractButton
    show_status: Callable[[str], None]
    report_error: Callable[[str, str], None]
    load_profile_version: Callable[[Path], None]


class CalibrationAction(QtCore.QObject):
    """Runs calibrations for the window that holds it.

    Parameters
    ----------
    host
        What the flow needs from that window (:class:`CalibrationHost`).
    config
        Pipeline settings; the dialog's Stage B box sets ``full``. Default: the pipeline's defaults
        without tqdm bars (the progress dialog shows progress).

    Attributes
    ----------
    menu_action
        The "Calibrate…" menu entry (the window puts it in its menu bar).
    dialog, worker, progress, report
        The flow's current dialog, worker thread, progress dialog and report dialog (``None`` when not
        showing / running).
    result
        The last calibration's result, until it is accepted or discarded.
    """

    def __init__(self, host: CalibrationHost, config: CalibrationConfig | None = None) -> None:
        super().__init__(host.parent)
        self.host = host
        self.config = config or CalibrationConfig(show_progress=False)
        self.dialog: CalibrationDialog | None = None
        self.worker: CalibrationWorker | None = None
        self.progress: QtWidgets.QProgressDialog | None = None
        self.report: CalibrationReportDialog | None = None
        self.result: CalibrationResult | None = None
        self.menu_action = QtGui.QAction("&Calibrate…", host.parent)
        self.menu_action.triggered.connect(self.open)

    @property
    def busy(self) -> bool:
        """True from the moment the dialog opens until the report is accepted or discarded."""
        return any(part is not None for part in (self.dialog, self.worker, self.report))

    def _set_busy(self) -> None:
        self.host.calibrate_button.setEnabled(not self.busy)
        self.menu_action.setEnabled(not self.busy)

    # -- ask ----------------------------------------------------------------------------------------

    def open(self) -> None:
        """Open the Calibrate dialog for the profile selected in the window's chooser."""
        if self.busy:
            return
        selected = self.host.selected_profile()
        if selected is None:
            self.host.report_error("Calibration", "choose a rig profile to calibrate first")
            return
        try:
            profile = load_profile(Path(selected))
        except UserError as error:
            self.host.report_error("Calibration", str(error))
            return
        self.dialog = CalibrationDialog(profile, self.config.min_seconds, self.host.parent)
        self.dialog.accepted.connect(self._dialog_accepted)
        self.dialog.rejected.connect(self._dialog_rejected)
        self.dialog.show()
        self._set_busy()

    def _dialog_rejected(self) -> None:
        self._drop_dialog()
        self._set_busy()

    def _drop_dialog(self) -> CalibrationDialog:
        dialog, self.dialog = self.dialog, None
        dialog.deleteLater()
        return dialog

    def _dialog_accepted(self) -> None:
        dialog = self._drop_dialog()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        record_path = self.host.record_dir() / f"{dialog.profile_path.stem}-calibration-{stamp}.h5"
        self.start(dialog.request(record_path, self.config))

    # -- run ----------------------------------------------------------------------------------------

    def start(self, request: CalibrationRequest) -> None:
        """Run ``request`` on a worker thread behind a progress dialog (the dialog calls this on OK)."""
        self.worker = CalibrationWorker(request, self)
        self.worker.progressed.connect(self._progressed)
        self.worker.succeeded.connect(self._succeeded)
        self.worker.failed.connect(self._failed)
        self.worker.cancelled.connect(self._cancelled)
        self.worker.finished.connect(self._worker_finished)
        self.progress = QtWidgets.QProgressDialog(
            "Starting the calibration…", "Cancel", 0, PROGRESS_STEPS, self.host.parent
        )
        self.progress.setWindowTitle(f"Calibrating {request.profile_path.name}")
        self.progress.setWindowModality(QtCore.Qt.WindowModality.NonModal)
        self.progress.setAutoClose(False)
        self.progress.setAutoReset(False)
        self.progress.setMinimumDuration(0)
        self.progress.setMinimumWidth(560)
        self.progress.canceled.connect(self.cancel)
        self.progress.show()
        self.host.show_status(f"calibrating {request.profile_path.name}…")
        self._set_busy()
        self.worker.start()

    def cancel(self) -> None:
        """Stop the running calibration at the pipeline's next progress report (a recording at once)."""
        if self.worker is not None:
            self.worker.cancel()
            self.host.show_status("cancelling the calibration…")

    def _progressed(self, stage: str, fraction: float, message: str) -> None:
        if self.progress is None:
            return
        stages = self.worker.request.stages()
        index = stages.index(stage)
        self.progress.setValue(round(PROGRESS_STEPS * (index + min(max(fraction, 0.0), 1.0)) / len(stages)))
        self.progress.setLabelText(f"{_STAGE_LABELS[stage]} ({index + 1}/{len(stages)}): {message}")

    def _close_progress(self) -> None:
        if self.progress is not None:
            self.progress.canceled.disconnect(self.cancel)  # closing the dialog would emit it
            self.progress.close()
            self.progress.deleteLater()
            self.progress = None

    def _succeeded(self, result: CalibrationResult) -> None:
        self._close_progress()
        self.result = result
        self.report = CalibrationReportDialog(result, self.host.parent)
        self.report.accept_requested.connect(self._accept_requested)
        self.report.discarded.connect(self._discarded)
        self.report.show()
        self.host.show_status(
            f"calibrated: held-out R² {result.heldout_r2:.3f} — accept or discard it in the report"
        )

    def _failed(self, message: str) -> None:
        self._close_progress()
        self.host.report_error("Calibration failed", message)

    def _cancelled(self) -> None:
        self._close_progress()
        self.host.show_status("calibration cancelled; the profile is unchanged")

    def _worker_finished(self) -> None:
        self.worker.deleteLater()
        self.worker = None
        self._set_busy()

    # -- decide -------------------------------------------------------------------------------------

    def _accept_requested(self, force: bool) -> None:
        try:
            version = accept_calibration(self.result, force=force)
        except UserError as error:  # ProfileWriteError: the profile changed on disk, or would not validate
            self.host.report_error("The new profile version was not written", str(error))
            return
        if version is None:
            self.report.show_refused()
            self.host.show_status("not accepted: the previous decoder scores better")
            return
        self._close_report()
        archived = f"; previous version archived as {version.archived.name}" if version.archived else ""
        self.host.load_profile_version(version.path)
        self.host.show_status(f"accepted the calibrated decoder into {version.path.name}{archived}")

    def _discarded(self) -> None:
        self._close_report()
        self.host.show_status("calibration discarded; the profile is unchanged")

    def _close_report(self) -> None:
        report, self.report, self.result = self.report, None, None
        report.discarded.disconnect(self._discarded)  # closing an accepted report is not a discard
        report.close()
        report.deleteLater()
        self._set_busy()

    def shutdown(self) -> None:
        """Cancel a running calibration and wait for its thread (the window is closing)."""
        if self.worker is not None:
            self.worker.cancel()
            self.worker.wait()
