"""The window's "Calibrate…" action, start to end: ask (source, Stage B) -> run the pipeline on a worker
thread behind a progress dialog with Cancel -> show the held-out report -> on Accept, write the new
profile version and load it into the window.

Every dialog here is non-modal: the dashboard keeps redrawing and the safety stop (Esc, the output
button) stays reachable while a calibration runs. The Calibrate button is disabled until the flow
ends, so only one calibration runs at a time.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6 import QtCore, QtGui, QtWidgets

from apps.decoder.calibration_dialog import CalibrationDialog
from apps.decoder.calibration_report import CalibrationReportDialog
from apps.decoder.calibration_worker import CalibrationRequest, CalibrationWorker
from calibrate import CalibrationConfig, CalibrationResult, accept_calibration
from rtbci.errors import UserError
from rtbci.profile import load_profile

if TYPE_CHECKING:
    from apps.decoder.main_window import DecoderWindow

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


class CalibrationAction(QtCore.QObject):
    """Runs calibrations for a :class:`~apps.decoder.main_window.DecoderWindow`.

    Parameters
    ----------
    window
        Supplies the profile (its chooser), the recordings folder, error reporting, and
        :meth:`~apps.decoder.main_window.DecoderWindow.load_profile_version`.
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

    def __init__(self, window: DecoderWindow, config: CalibrationConfig | None = None) -> None:
        super().__init__(window)
        self.window = window
        self.config = config or CalibrationConfig(show_progress=False)
        self.dialog: CalibrationDialog | None = None
        self.worker: CalibrationWorker | None = None
        self.progress: QtWidgets.QProgressDialog | None = None
        self.report: CalibrationReportDialog | None = None
        self.result: CalibrationResult | None = None
        self.menu_action = QtGui.QAction("&Calibrate…", window)
        self.menu_action.triggered.connect(self.open)

    @property
    def busy(self) -> bool:
        """True from the moment the dialog opens until the report is accepted or discarded."""
        return any(part is not None for part in (self.dialog, self.worker, self.report))

    def _set_busy(self) -> None:
        self.window.controls.calibrate_button.setEnabled(not self.busy)
        self.menu_action.setEnabled(not self.busy)

    # -- ask ----------------------------------------------------------------------------------------

    def open(self) -> None:
        """Open the Calibrate dialog for the profile selected in the window's chooser."""
        if self.busy:
            return
        selected = self.window.controls.profile_box.currentData()
        if selected is None:
            self.window.report_error("Calibration", "choose a rig profile to calibrate first")
            return
        try:
            profile = load_profile(Path(selected))
        except UserError as error:
            self.window.report_error("Calibration", str(error))
            return
        self.dialog = CalibrationDialog(profile, self.config.min_seconds, self.window)
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
        record_path = self.window.record_dir / f"{dialog.profile_path.stem}-calibration-{stamp}.h5"
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
            "Starting the calibration…", "Cancel", 0, PROGRESS_STEPS, self.window
        )
        self.progress.setWindowTitle(f"Calibrating {request.profile_path.name}")
        self.progress.setWindowModality(QtCore.Qt.WindowModality.NonModal)
        self.progress.setAutoClose(False)
        self.progress.setAutoReset(False)
        self.progress.setMinimumDuration(0)
        self.progress.setMinimumWidth(560)
        self.progress.canceled.connect(self.cancel)
        self.progress.show()
        self.window.statusBar().showMessage(f"calibrating {request.profile_path.name}…")
        self._set_busy()
        self.worker.start()

    def cancel(self) -> None:
        """Stop the running calibration at the pipeline's next progress report (a recording at once)."""
        if self.worker is not None:
            self.worker.cancel()
            self.window.statusBar().showMessage("cancelling the calibration…")

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
        self.report = CalibrationReportDialog(result, self.window)
        self.report.accept_requested.connect(self._accept_requested)
        self.report.discarded.connect(self._discarded)
        self.report.show()
        self.window.statusBar().showMessage(
            f"calibrated: held-out R² {result.heldout_r2:.3f} — accept or discard it in the report"
        )

    def _failed(self, message: str) -> None:
        self._close_progress()
        self.window.report_error("Calibration failed", message)

    def _cancelled(self) -> None:
        self._close_progress()
        self.window.statusBar().showMessage("calibration cancelled; the profile is unchanged")

    def _worker_finished(self) -> None:
        self.worker.deleteLater()
        self.worker = None
        self._set_busy()

    # -- decide -------------------------------------------------------------------------------------

    def _accept_requested(self, force: bool) -> None:
        try:
            version = accept_calibration(self.result, force=force)
        except UserError as error:  # ProfileWriteError: the profile changed on disk, or would not validate
            self.window.report_error("The new profile version was not written", str(error))
            return
        if version is None:
            self.report.show_refused()
            self.window.statusBar().showMessage("not accepted: the previous decoder scores better")
            return
        self._close_report()
        archived = f"; previous version archived as {version.archived.name}" if version.archived else ""
        self.window.load_profile_version(version.path)
        self.window.statusBar().showMessage(
            f"accepted the calibrated decoder into {version.path.name}{archived}"
        )

    def _discarded(self) -> None:
        self._close_report()
        self.window.statusBar().showMessage("calibration discarded; the profile is unchanged")

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
