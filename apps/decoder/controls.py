"""The controls: profile chooser, connect and start, stop, arming the output, recording, calibrate."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from apps.decoder.safety import SAFETY_KEYS

__all__ = ["Controls", "OutputState"]

SAFETY_KEY_NAMES = " or ".join(SAFETY_KEYS.values())


class OutputState(StrEnum):
    """The output as the operator sees it on the output button."""

    UNAVAILABLE = "unavailable"  # no engine running: nothing to arm
    HELD = "held"  # zero velocity, position held: click to arm
    ARMED = "armed"  # decoded output goes out: click, Esc or F12 to stop


_BUTTON = "QPushButton {{ background-color: {}; color: {}; font-weight: bold; padding: 6px; }}"
_OUTPUT_LOOKS = {
    OutputState.UNAVAILABLE: ("Output: no engine running", _BUTTON.format("#d9d9d9", "#7f7f7f")),
    OutputState.HELD: ("Output HELD (zero) — click to ARM", _BUTTON.format("#ffbf00", "black")),
    OutputState.ARMED: (
        f"Output ARMED — click or {SAFETY_KEY_NAMES} for the safety stop",
        _BUTTON.format("#2ca02c", "white"),
    ),
}


class Controls(QtWidgets.QGroupBox):
    """Buttons that ask for things; the main window decides and reports back with :meth:`set_state`.

    Signals
    -------
    connect_requested(str)
        Connect and start with the chosen profile file.
    stop_requested()
    output_requested(bool)
        ``True``: arm the output; ``False``: the safety stop. The window answers with
        :meth:`show_output`.
    recording_toggled(bool)
    calibrate_requested()
        Open the Calibrate dialog for the chosen profile.
    """

    connect_requested = QtCore.Signal(str)
    stop_requested = QtCore.Signal()
    output_requested = QtCore.Signal(bool)
    recording_toggled = QtCore.Signal(bool)
    calibrate_requested = QtCore.Signal()

    def __init__(self, profiles: list[Path]) -> None:
        super().__init__("Controls")
        self.profile_box = QtWidgets.QComboBox()
        self.profile_box.setObjectName("profile")
        for path in profiles:
            self.add_profile(path, select=False)
        self.profile_box.setCurrentIndex(0)  # the profile asked for comes first, not the last one listed
        self.browse_button = QtWidgets.QPushButton("Browse…")
        self.browse_button.clicked.connect(self._browse)
        self.connect_button = QtWidgets.QPushButton("Connect && start")
        self.connect_button.setObjectName("connect")
        self.stop_button = QtWidgets.QPushButton("Stop")
        self.stop_button.setObjectName("stop")
        self.output_button = QtWidgets.QPushButton()
        self.output_button.setObjectName("output")
        self.output_button.setToolTip(
            "Held: the output velocity is zero and the position holds; click to arm it.\n"
            f"Armed: the decoded output goes out; click, or press {SAFETY_KEY_NAMES} anywhere, to stop it."
        )
        self.output_state = OutputState.UNAVAILABLE
        self.safety_keys = QtWidgets.QLabel(
            f"<b>Safety stop: {SAFETY_KEY_NAMES}</b> — from any window, dialog or menu"
        )
        self.safety_keys.setObjectName("safety_keys")
        self.record_button = QtWidgets.QPushButton("Record")
        self.record_button.setObjectName("record")
        self.record_button.setCheckable(True)
        self.rec_indicator = QtWidgets.QLabel()
        self.rec_indicator.setObjectName("rec")
        self.rec_indicator.setStyleSheet(
            "QLabel { background-color: #d62728; color: white; font-weight: bold; padding: 4px; }"
        )
        self.rec_indicator.setToolTip("Recording inputs, features, outputs and timing to a Session file")
        self.rec_indicator.hide()
        fixed = QtWidgets.QSizePolicy.Policy.Fixed
        for label in (self.safety_keys, self.rec_indicator):  # as tall as their text, not stretched
            label.setSizePolicy(QtWidgets.QSizePolicy.Policy.Preferred, fixed)
        self.calibrate_button = QtWidgets.QPushButton("Calibrate…")
        self.calibrate_button.setObjectName("calibrate")
        self.calibrate_button.setToolTip(
            "Fit the profile's decoder to a new block (a Session file or a new recording), score it on "
            "held-out data, and accept it as a new profile version"
        )
        self.calibrate_button.clicked.connect(self.calibrate_requested)
        self.connect_button.clicked.connect(
            lambda: self.connect_requested.emit(self.profile_box.currentData())
        )
        self.stop_button.clicked.connect(self.stop_requested)
        self.output_button.clicked.connect(
            lambda: self.output_requested.emit(self.output_state is OutputState.HELD)
        )
        self.record_button.toggled.connect(self.recording_toggled)
        layout = QtWidgets.QGridLayout(self)
        layout.addWidget(QtWidgets.QLabel("Profile"), 0, 0)
        layout.addWidget(self.profile_box, 0, 1)
        layout.addWidget(self.browse_button, 0, 2)
        layout.addWidget(self.connect_button, 1, 0)
        layout.addWidget(self.stop_button, 1, 1)
        layout.addWidget(self.record_button, 1, 2)
        layout.addWidget(self.output_button, 2, 0, 1, 3)
        layout.addWidget(self.safety_keys, 3, 0, 1, 3)
        layout.addWidget(self.rec_indicator, 4, 0, 1, 3)
        layout.addWidget(self.calibrate_button, 5, 0, 1, 3)
        layout.setColumnStretch(1, 1)
        self.set_state(running=False)

    def add_profile(self, path: Path, select: bool = True) -> None:
        """Offer ``path`` in the chooser (once), and select it unless ``select`` is False."""
        path = Path(path).resolve()
        index = self.profile_box.findData(str(path))
        if index < 0:
            self.profile_box.addItem(path.name, str(path))
            index = self.profile_box.count() - 1
        if select:
            self.profile_box.setCurrentIndex(index)

    def _browse(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Choose a rig profile", "", "Profiles (*.toml)")
        if path:
            self.add_profile(Path(path))

    def show_output(self, state: OutputState) -> None:
        """Show the output's state on its button (enabled only while there is an engine to arm or stop)."""
        self.output_state = state
        text, style = _OUTPUT_LOOKS[state]
        self.output_button.setText(text)
        self.output_button.setStyleSheet(style)
        self.output_button.setEnabled(state is not OutputState.UNAVAILABLE)

    def show_recording(self, elapsed_s: float | None, size_bytes: int = 0) -> None:
        """The REC indicator: elapsed time and file size while recording, hidden (``None``) otherwise."""
        if elapsed_s is None:
            self.rec_indicator.hide()
            return
        minutes, seconds = divmod(int(elapsed_s), 60)
        self.rec_indicator.setText(f"● REC  {minutes}:{seconds:02d}  ·  {size_bytes / 1e6:.1f} MB")
        self.rec_indicator.show()

    def set_state(self, running: bool, starting: bool = False) -> None:
        """Enable the buttons that make sense now; a running engine's output shows as held until the
        window says it is armed."""
        self.connect_button.setEnabled(not running and not starting)
        self.profile_box.setEnabled(not running and not starting)
        self.stop_button.setEnabled(running or starting)
        self.record_button.setEnabled(running)
        self.show_output(OutputState.HELD if running else OutputState.UNAVAILABLE)
        if not running:
            self.show_recording(None)
            with QtCore.QSignalBlocker(self.record_button):
                self.record_button.setChecked(False)
