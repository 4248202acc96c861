"""The "Calibrate…" dialog: where the block comes from (a Session file or a new recording), what its
labels are (the hand, or without a hand the task's cues or ReFIT), and whether to run the full
fine-tune (Stage B)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from apps.decoder.calibration_worker import CalibrationRequest
from calibrate import CalibrationConfig, min_record_seconds
from rtbci.io.importers import SUPPORTED_SUFFIXES
from rtbci.profile import Profile

__all__ = ["CalibrationDialog"]

DEFAULT_RECORD_S = 120.0  # two minutes: what the calibration benchmark's Stage A gets
# The labels box: each choice, its text, and what it means.
LABEL_CHOICES = (
    ("hand", "Hand (behavior stream)", "Fit to the block's behavior stream: a hand, or the task software's."),
    (
        "cue",
        "Cues (the task moves the cursor)",
        "No hand: the cursor task moves the cursor to each target by itself (assist 1) and the "
        "participant follows it; the labels are the cued velocity. Recording runs the task in this "
        "window on the decoder's output: start the decoder, and stop any other `rtbci task` for this rig.",
    ),
    (
        "refit",
        "ReFIT (closed loop)",
        "No hand: a closed-loop block at the profile's assist; the labels are the decoded velocity "
        "turned toward the target, zero on it (Gilja et al. 2012). Recording runs the task in this "
        "window on the decoder's output: start the decoder, and stop any other `rtbci task` for this rig.",
    ),
)


class CalibrationDialog(QtWidgets.QDialog):
    """Asks for the calibration's source and stage; :meth:`request` turns the answers into a request.

    Parameters
    ----------
    profile
        The profile to calibrate (shown, not chosen here: the window's profile chooser picks it).
        Its path is kept as :attr:`profile_path`, so changing the chooser meanwhile does not change
        the request.
    min_seconds
        Aligned bins the pipeline needs (``CalibrationConfig.min_seconds``); the seconds box starts at
        :func:`calibrate.min_record_seconds` of it, the recording length the pipeline accepts.
    parent
        The main window.
    """

    def __init__(self, profile: Profile, min_seconds: float, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.profile_path = Path(profile.path)
        self.setWindowTitle(f"Calibrate {self.profile_path.name}")
        shortest = min_record_seconds(min_seconds, profile)
        self.from_file = QtWidgets.QRadioButton("Session file")
        self.from_file.setChecked(True)
        self.session_path = QtWidgets.QLineEdit()
        self.session_path.setPlaceholderText("a Session .h5, or an NWB / XDF / Blackrock recording")
        self.browse_button = QtWidgets.QPushButton("Browse…")
        self.browse_button.clicked.connect(self._browse)
        self.record = QtWidgets.QRadioButton("Record from the profile's LSL streams")
        self.record_seconds = QtWidgets.QDoubleSpinBox()
        self.record_seconds.setDecimals(0)
        self.record_seconds.setRange(shortest, 3600.0)
        self.record_seconds.setValue(max(DEFAULT_RECORD_S, shortest))
        self.record_seconds.setSuffix(" s")
        self.record_seconds.setToolTip(
            f"At least {shortest:g} s: calibration needs {min_seconds:g} s of bins with both neural data "
            "and behavior, and a recording loses a little at its start and end"
        )
        self.labels = QtWidgets.QComboBox()
        for index, (value, text, tip) in enumerate(LABEL_CHOICES):
            self.labels.addItem(text, value)
            self.labels.setItemData(index, tip, QtCore.Qt.ItemDataRole.ToolTipRole)
        self.labels.currentIndexChanged.connect(self._show_label_tip)
        self._show_label_tip()
        self.full = QtWidgets.QCheckBox("Full fine-tune (Stage B): slower, may fit better")
        self.buttons = QtWidgets.QDialogButtonBox(
            QtWidgets.QDialogButtonBox.StandardButton.Ok | QtWidgets.QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok).setText("Calibrate")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        file_row = QtWidgets.QHBoxLayout()
        file_row.addWidget(self.session_path, 1)
        file_row.addWidget(self.browse_button)
        layout = QtWidgets.QFormLayout(self)
        layout.addRow(QtWidgets.QLabel(f"Profile: {self.profile_path}"))
        layout.addRow(self.from_file)
        layout.addRow(file_row)
        layout.addRow(self.record, self.record_seconds)
        layout.addRow("Labels", self.labels)
        layout.addRow(self.full)
        layout.addRow(
            QtWidgets.QLabel("The last 20% of the block is held out; every score is on held-out data.")
        )
        layout.addRow(self.buttons)
        for signal in (self.from_file.toggled, self.session_path.textChanged):
            signal.connect(self._update_enabled)
        self._update_enabled()

    def _browse(self) -> None:
        patterns = " ".join(f"*{suffix}" for suffix in (".h5", *SUPPORTED_SUFFIXES))
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Choose a calibration block", "", f"Recordings ({patterns});;All files (*)"
        )
        if path:
            self.session_path.setText(path)

    def _show_label_tip(self) -> None:
        self.labels.setToolTip(LABEL_CHOICES[self.labels.currentIndex()][2])

    def _update_enabled(self) -> None:
        use_file = self.from_file.isChecked()
        self.session_path.setEnabled(use_file)
        self.browse_button.setEnabled(use_file)
        self.record_seconds.setEnabled(not use_file)
        ok = self.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(not use_file or bool(self.session_path.text().strip()))

    def request(self, record_path: Path, config: CalibrationConfig) -> CalibrationRequest:
        """The calibration the answers describe, of :attr:`profile_path`.

        Parameters
        ----------
        record_path
            Where a recording goes (unused for a Session file).
        config
            Base pipeline settings; ``full`` is taken from the Stage B box, the labels from the
        labels box.
        """
        use_file = self.from_file.isChecked()
        return CalibrationRequest(
            profile_path=self.profile_path,
            session_file=Path(self.session_path.text().strip()) if use_file else None,
            record_seconds=None if use_file else self.record_seconds.value(),
            record_path=None if use_file else record_path,
            config=dataclasses.replace(config, full=self.full.isChecked()),
            labels=self.labels.currentData(),
        )
