"""The controls: profile chooser, connect and start, stop, the output safety toggle, recording, calibrate."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

__all__ = ["Controls"]

_SAFE_STYLE = "QPushButton { background-color: #2ca02c; color: white; font-weight: bold; padding: 6px; }"
_STOPPED_STYLE = "QPushButton { background-color: #d62728; color: white; font-weight: bold; padding: 6px; }"


class Controls(QtWidgets.QGroupBox):
    """Buttons that ask for things; the main window decides and reports back with :meth:`set_state`.

    Signals
    -------
    connect_requested(str)
        Connect and start with the chosen profile file.
    stop_requested()
    output_toggled(bool)
        ``False`` is the safety stop.
    recording_toggled(bool)
    calibrate_requested()
        Open the Calibrate dialog for the chosen profile.
    """

    connect_requested = QtCore.Signal(str)
    stop_requested = QtCore.Signal()
    output_toggled = QtCore.Signal(bool)
    recording_toggled = QtCore.Signal(bool)
    calibrate_requested = QtCore.Signal()

    def __init__(self, profiles: list[Path]) -> None:
        super().__init__("Controls")
        self.profile_box = QtWidgets.QComboBox()
        self.profile_box.setObjectName("profile")
        for path in profiles:
            self.add_profile(path)
        browse = QtWidgets.QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self.connect_button = QtWidgets.QPushButton("Connect && start")
        self.connect_button.setObjectName("connect")
        self.stop_button = QtWidgets.QPushButton("Stop")
        self.stop_button.setObjectName("stop")
        self.output_button = QtWidgets.QPushButton()
        self.output_button.setObjectName("output")
        self.output_button.setCheckable(True)
        self.output_button.setToolTip(
            "Safety stop (Esc): zero the output velocity and hold the position at once"
        )
        self.record_button = QtWidgets.QPushButton("Record")
        self.record_button.setObjectName("record")
        self.record_button.setCheckable(True)
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
        self.output_button.toggled.connect(self._output_toggled)
        self.record_button.toggled.connect(self.recording_toggled)
        QtGui.QShortcut(QtGui.QKeySequence(QtCore.Qt.Key.Key_Escape), self, activated=self.safety_stop)
        layout = QtWidgets.QGridLayout(self)
        layout.addWidget(QtWidgets.QLabel("Profile"), 0, 0)
        layout.addWidget(self.profile_box, 0, 1)
        layout.addWidget(browse, 0, 2)
        layout.addWidget(self.connect_button, 1, 0)
        layout.addWidget(self.stop_button, 1, 1)
        layout.addWidget(self.record_button, 1, 2)
        layout.addWidget(self.output_button, 2, 0, 1, 3)
        layout.addWidget(self.calibrate_button, 3, 0, 1, 3)
        layout.setColumnStretch(1, 1)
        self.set_state(running=False)

    def add_profile(self, path: Path) -> None:
        """Offer ``path`` in the chooser (once) and select it."""
        path = Path(path).resolve()
        index = self.profile_box.findData(str(path))
        if index < 0:
            self.profile_box.addItem(path.name, str(path))
            index = self.profile_box.count() - 1
        self.profile_box.setCurrentIndex(index)

    def _browse(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Choose a rig profile", "", "Profiles (*.toml)")
        if path:
            self.add_profile(Path(path))

    def _output_toggled(self, enabled: bool) -> None:
        self._paint_output(enabled)
        self.output_toggled.emit(enabled)

    def _paint_output(self, enabled: bool) -> None:
        if enabled:
            self.output_button.setText("Output ENABLED — click or Esc for safety stop")
            self.output_button.setStyleSheet(_SAFE_STYLE)
        else:
            self.output_button.setText("SAFETY STOP — output zeroed and held (click to enable)")
            self.output_button.setStyleSheet(_STOPPED_STYLE)

    def safety_stop(self) -> None:
        """Turn the output off (as the Esc key does)."""
        if self.output_button.isEnabled():
            self.output_button.setChecked(False)

    def set_state(self, running: bool, starting: bool = False) -> None:
        """Enable the buttons that make sense now; a (re)started engine starts with its output enabled."""
        self.connect_button.setEnabled(not running and not starting)
        self.profile_box.setEnabled(not running and not starting)
        self.stop_button.setEnabled(running or starting)
        self.output_button.setEnabled(running)
        self.record_button.setEnabled(running)
        with QtCore.QSignalBlocker(self.output_button):
            self.output_button.setChecked(running)
        self._paint_output(running)
        if not running:
            with QtCore.QSignalBlocker(self.record_button):
                self.record_button.setChecked(False)
