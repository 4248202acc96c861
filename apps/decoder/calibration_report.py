"""The calibration report dialog: held-out R² of the calibrated decoder against the baselines, the
held-out plot, and Accept / Discard (then "Accept anyway" when the guard keeps the previous decoder)."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from calibrate import CalibrationResult

__all__ = ["CalibrationReportDialog"]

PLOT_WIDTH = 900  # pixels; the PNG is scaled down to this to fit a laptop screen


class CalibrationReportDialog(QtWidgets.QDialog):
    """Shows a :class:`calibrate.CalibrationResult` and asks whether to use it.

    The dialog only asks; whoever opened it writes the profile and answers with :meth:`show_refused`
    when the guard kept the previous decoder.

    Signals
    -------
    accept_requested(bool)
        Accept was clicked; ``True`` means "Accept anyway" (force past the guard).
    discarded()
        Discard was clicked (or the dialog closed): no profile is written.
    """

    accept_requested = QtCore.Signal(bool)
    discarded = QtCore.Signal()

    def __init__(self, result: CalibrationResult, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.result = result
        self.setWindowTitle(f"Calibration of {result.profile.path.name}: held-out report")
        self.summary = QtWidgets.QPlainTextEdit(result.summary())
        self.summary.setReadOnly(True)
        self.summary.setFont(QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.SystemFont.FixedFont))
        self.summary.setLineWrapMode(QtWidgets.QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.plot = QtWidgets.QLabel()
        pixmap = QtGui.QPixmap(str(result.report_png))
        if pixmap.isNull():
            self.plot.setText(f"(no plot: {result.report_png} could not be read)")
        else:
            self.plot.setPixmap(
                pixmap.scaledToWidth(
                    min(PLOT_WIDTH, pixmap.width()), QtCore.Qt.TransformationMode.SmoothTransformation
                )
            )
        scroll = QtWidgets.QScrollArea()
        scroll.setWidget(self.plot)
        scroll.setWidgetResizable(True)
        self.verdict = QtWidgets.QLabel(self._verdict_text())
        self.verdict.setWordWrap(True)
        self.accept_button = QtWidgets.QPushButton("Accept")
        self.accept_button.setObjectName("accept_calibration")
        self.discard_button = QtWidgets.QPushButton("Discard")
        self.discard_button.setObjectName("discard_calibration")
        self.accept_button.clicked.connect(self._accept_clicked)
        self.discard_button.clicked.connect(self.reject)
        self.rejected.connect(self.discarded)
        self._force = False

        buttons = QtWidgets.QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.discard_button)
        buttons.addWidget(self.accept_button)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.verdict)
        layout.addLayout(buttons)
        self.summary.setFixedHeight(self.summary.fontMetrics().lineSpacing() * 8)
        self.resize(PLOT_WIDTH + 60, 800)

    def _verdict_text(self) -> str:
        result = self.result
        where = f"artifact: {result.exported.artifact_dir} (sha256 {result.exported.manifest.sha256[:12]}…)"
        if result.better_than_previous:
            return (
                f"{where}\nAccept writes a new version of {result.profile.path.name} pointing to it "
                "(the current version is archived); Discard leaves the profile as it is."
            )
        return (
            f"{where}\nThe calibrated decoder scores worse than the previous one on held-out data: "
            "Accept keeps the previous decoder unless you then choose Accept anyway."
        )

    def _accept_clicked(self) -> None:
        self.accept_requested.emit(self._force)

    def show_refused(self) -> None:
        """The guard kept the previous decoder: say so and turn Accept into "Accept anyway" (force)."""
        result = self.result
        self._force = True
        self.accept_button.setText("Accept anyway")
        self.verdict.setText(
            f"Not accepted: the calibrated decoder's held-out R² {result.heldout_r2:.3f} is below the "
            f"previous decoder's {result.previous_r2:.3f}, so {result.profile.path.name} keeps the previous "
            "decoder. Accept anyway writes the new version regardless (the CLI's --force)."
        )
