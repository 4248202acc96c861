"""The main window: panels laid out, the engine started and stopped, and the ~30 Hz redraw."""

from __future__ import annotations

import time
from enum import StrEnum
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from apps.decoder.calibration_action import CalibrationAction, CalibrationHost
from apps.decoder.channels import read_decoder_channels
from apps.decoder.controls import Controls, OutputState
from apps.decoder.feed import DashboardFeed, FeedConfig
from apps.decoder.health_panel import HealthPanel
from apps.decoder.kinematics_panel import KinematicsPanel
from apps.decoder.latency_panel import LatencyPanel
from apps.decoder.model_card import ModelCard
from apps.decoder.priority import EngineLauncher
from apps.decoder.safety import SafetyStopFilter
from apps.decoder.signal_panel import SignalPanel
from rtbci.engine.engine import EngineOptions
from rtbci.engine.process import EngineProcess, OutputEvent
from rtbci.errors import UserError
from rtbci.profile import Profile, load_profile

__all__ = ["DecoderWindow", "EngineState"]

REDRAW_MS = 33  # about 30 frames a second
# The right column (controls, model card, stream health) has this width whatever its texts say, so
# the plots keep their size when the engine starts, stops or the profile changes.
SIDE_WIDTH = 600


class EngineState(StrEnum):
    """Where the window's engine stands."""

    IDLE = "idle"
    STARTING = "starting"
    RUNNING = "running"


class DecoderWindow(QtWidgets.QMainWindow):
    """The decoder dashboard.

    The engine starts with its output held (zero velocity, position held); the operator arms it with
    the output button, or the profile's ``[output] arm_on_start`` arms it once the engine serves. The
    safety stop (Esc or F12 from anywhere in the application, or the output button) holds it again,
    and only a new click arms it.

    Parameters
    ----------
    profiles
        Profiles offered in the chooser; the first is selected.
    backend
        Backend override for the engine (``None``: the profile's).
    record_dir
        Where recordings are written (``<rig>-<time>.h5``).
    feed_config
        History lengths and status polling.
    lower_priority
        Run the engine at a higher priority than the GUI thread, on a core of its own where there are
        cores to spare (:mod:`apps.decoder.priority`); ``False`` for tests on a shared machine.

    Attributes
    ----------
    state
        :class:`EngineState`.
    engine, feed
        The running engine process and what the panels read (``None`` when idle).
    errors
        Every error shown to the user, in order (the dialogs are not modal, so nothing blocks).
    last_report
        The final report of the last engine stopped (bins, late, latency summaries, ...).
    calibration
        The "Calibrate…" action (:class:`~apps.decoder.calibration_action.CalibrationAction`).
    frames
        Redraws done since the window opened.
    output_events
        Every :class:`~rtbci.engine.process.OutputEvent` the engine recorded for this window (arm,
        safety stop), in order.
    safety_keys
        The application-wide filter that takes Esc and F12 before any dialog or menu.
    """

    def __init__(
        self,
        profiles: list[Path],
        backend: str | None = None,
        record_dir: Path = Path("recordings"),
        feed_config: FeedConfig | None = None,
        lower_priority: bool = True,
    ) -> None:
        super().__init__()
        self.setWindowTitle("rtbci decoder")
        self.resize(1500, 900)
        self.backend = backend
        self.record_dir = Path(record_dir)
        self.feed_config = feed_config or FeedConfig()
        self.state = EngineState.IDLE
        self.engine: EngineProcess | None = None
        self.feed: DashboardFeed | None = None
        self.profile: Profile | None = None
        self.errors: list[str] = []
        self.frames = 0
        self.recording_path: Path | None = None
        self._recording_since = 0.0
        self.last_report: dict = {}
        self._status_seen: dict | None = None
        self._reported_engine_error = False
        self.output_events: list[OutputEvent] = []
        self._stopped_while_starting = False
        # Engines start from a launcher thread with the decoder's priority (and core, where there are
        # cores to spare); this (the GUI) thread yields to them.
        self.launcher = EngineLauncher(prioritize=lower_priority)
        if lower_priority:
            self.launcher.place_gui_thread()

        self.controls = Controls(profiles)
        self.model_card = ModelCard()
        self.controls.connect_requested.connect(self.connect_engine)
        self.controls.stop_requested.connect(self.stop_engine)
        self.controls.output_requested.connect(lambda arm: self.set_output_enabled(arm, "output button"))
        self.controls.recording_toggled.connect(self.set_recording)
        self.calibration = CalibrationAction(
            CalibrationHost(
                parent=self,
                selected_profile=self.controls.profile_box.currentData,
                record_dir=lambda: self.record_dir,
                calibrate_button=self.controls.calibrate_button,
                show_status=self.statusBar().showMessage,
                report_error=self.report_error,
                load_profile_version=self.load_profile_version,
            )
        )
        self.controls.calibrate_requested.connect(self.calibration.open)
        self.decoder_menu = self.menuBar().addMenu("&Decoder")
        self.decoder_menu.addAction(self.calibration.menu_action)
        self.decoder_menu.addSeparator()
        self.quit_action = QtGui.QAction("&Quit", self)
        self.quit_action.setShortcut(QtGui.QKeySequence("Ctrl+Q"))
        self.quit_action.setToolTip("Stop the engine and close the window")
        self.quit_action.triggered.connect(self.close)
        self.decoder_menu.addAction(self.quit_action)
        self.safety_keys = SafetyStopFilter(self)
        self.safety_keys.triggered.connect(lambda key: self.safety_stop(f"{key} key"))
        self.safety_keys.install()
        central = QtWidgets.QWidget()
        self.layout_grid = QtWidgets.QGridLayout(central)
        self.side_panel = QtWidgets.QWidget()
        self.side_panel.setFixedWidth(SIDE_WIDTH)
        side = QtWidgets.QVBoxLayout(self.side_panel)
        side.setContentsMargins(0, 0, 0, 0)
        side.addWidget(self.controls)
        side.addWidget(self.model_card)
        self.side = side
        self.plots = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        # Below the kinematics: latency, and the signal views (redrawn only while their tab is shown).
        self.lower_tabs = QtWidgets.QTabWidget()
        self.plots.addWidget(self.lower_tabs)
        self.layout_grid.addWidget(self.plots, 0, 0)
        self.layout_grid.addWidget(self.side_panel, 0, 1)
        self.layout_grid.setColumnStretch(0, 1)
        self.setCentralWidget(central)
        # The status bar exists from the start, so its first message moves no plot.
        self.statusBar().showMessage("not started: choose a profile, then Connect & start")
        self.kinematics: KinematicsPanel | None = None
        self.latency: LatencyPanel | None = None
        self.health: HealthPanel | None = None
        self.signals: SignalPanel | None = None
        if profiles:
            self._choose_profile(profiles[0])
        self.controls.profile_box.currentIndexChanged.connect(self._profile_selected)
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(REDRAW_MS)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    # -- panels -----------------------------------------------------------------------------------

    def _choose_profile(self, path: Path) -> Profile | None:
        try:
            profile = load_profile(path)
        except ValueError as error:  # ProfileError: names the file and every bad field
            self.report_error("Invalid profile", str(error))
            self.model_card.show_invalid(path)
            return None
        self.profile = profile
        self._build_panels(profile)
        self.model_card.show_profile(profile)
        return profile

    def _profile_selected(self, index: int) -> None:
        """The chooser changed: panels and model card follow (the chooser is locked while running)."""
        path = Path(self.controls.profile_box.itemData(index))
        if self.state is EngineState.IDLE and (self.profile is None or self.profile.path != path):
            self._choose_profile(path)

    def _build_panels(self, profile: Profile) -> None:
        tab = self.lower_tabs.currentIndex()
        for panel in (self.kinematics, self.latency, self.signals, self.health):
            if panel is not None:
                panel.setParent(None)
                panel.deleteLater()
        features = profile.features
        self.kinematics = KinematicsPanel(
            profile.output.velocity_clamp, features.bin_ms, self.feed_config.trace_s, self.feed_config.trail_s
        )
        self.kinematics.reset_requested.connect(lambda: self.reset_position("reset button"))
        self.latency = LatencyPanel(
            features.bin_ms, profile.engine.late_deadline_ms, self.feed_config.latency_s
        )
        self.health = HealthPanel(profile)
        try:
            channels, unavailable = read_decoder_channels(profile), ""
        except (UserError, ValueError, OSError) as error:  # no model, or an unreadable artifact
            channels, unavailable = None, f"no signal views: {str(error).splitlines()[0]}"
        self.signals = SignalPanel(
            channels, features.bin_ms, self.feed_config.signal_s, unavailable, profile.streams.spikes.channels
        )
        self.plots.insertWidget(0, self.kinematics)
        self.lower_tabs.addTab(self.latency, "Latency")
        self.lower_tabs.addTab(self.signals, "Signals")
        self.lower_tabs.setCurrentIndex(max(tab, 0))
        self.plots.setSizes([500, 400])
        self.side.addWidget(self.health)

    # -- engine control ---------------------------------------------------------------------------

    def connect_engine(self, profile_path: str | Path | None = None) -> None:
        """Start the engine process on the chosen profile; it connects and warms up in the background."""
        if self.state is not EngineState.IDLE:
            return
        path = Path(profile_path or self.controls.profile_box.currentData())
        if self._choose_profile(path) is None:
            return
        options = EngineOptions(
            backend=self.backend,
            output_enabled=False,
            realtime_priority=self.launcher.placement.realtime_priority,
        )
        self.engine = EngineProcess(path, options)
        self.launcher.launch(self.engine)
        self.state = EngineState.STARTING
        self._reported_engine_error = False
        self._stopped_while_starting = False
        self.controls.set_state(running=False, starting=True)
        self.health.show_stopped("starting — resolving streams, loading the model, warming up")
        self.statusBar().showMessage(f"starting the engine on {path.name}…")

    def stop_engine(self) -> None:
        """Stop decoding (and recording) and end the engine process (final report: :attr:`last_report`)."""
        if self.feed is not None:
            self.feed.close()
            self.feed = None
        if self.engine is not None:
            self.last_report = self.engine.stop()
            self.engine = None
            self.statusBar().showMessage(f"stopped after {self.last_report.get('bins', 0)} bins")
        self.recording_path = None
        self.state = EngineState.IDLE
        self.controls.set_state(running=False)
        if self.kinematics is not None:
            self.kinematics.reset_button.setEnabled(False)
        if self.health is not None:
            self.health.show_stopped("stopped")

    def load_profile_version(self, path: str | Path) -> None:
        """Select a new (e.g. calibrated) profile version in the chooser and load it; an engine that is
        running or starting restarts on it."""
        self.controls.add_profile(Path(path))
        if self.state is EngineState.IDLE:
            self._choose_profile(Path(path))
        else:
            self.stop_engine()
            self.connect_engine(path)

    def set_output_enabled(self, enabled: bool, source: str) -> None:
        """Arm the output (``True``) or hold it (``False``, the safety stop: zero velocity, held
        position); the engine records the event with its time and ``source`` (what asked)."""
        if self.engine is None or self.state is not EngineState.RUNNING:
            return
        try:
            event = self.engine.set_output_enabled(enabled, source)
        except UserError as error:
            self.report_error("Arming the output failed" if enabled else "The safety stop failed", str(error))
            return
        self.output_events.append(event)
        self.controls.show_output(OutputState.ARMED if enabled else OutputState.HELD)
        self.statusBar().showMessage(
            f"output ARMED ({source})"
            if enabled
            else f"SAFETY STOP ({source}) at LSL time {event.time:.3f} s: output zeroed and held"
        )

    def reset_position(self, source: str) -> None:
        """Zero the decoded position (the cursor back to the centre); the engine does it at its next bin
        and logs ``position reset (<source>)`` as an engine event."""
        if self.engine is None or self.state is not EngineState.RUNNING:
            return
        try:
            asked = self.engine.reset_position(source)
        except UserError as error:
            self.report_error("Resetting the position failed", str(error))
            return
        self.statusBar().showMessage(f"position reset ({source}) at LSL time {asked:.3f} s")

    def safety_stop(self, source: str) -> None:
        """The safety stop (Esc, F12): hold the output now; an engine still starting will not arm itself.

        The keys are taken for this in every dialog and menu, so they never close or cancel anything.
        """
        if self.state is EngineState.STARTING:
            self._stopped_while_starting = True
            self.statusBar().showMessage(f"SAFETY STOP ({source}): the engine starts with its output held")
        elif self.state is EngineState.RUNNING:
            self.set_output_enabled(False, source)
        else:
            self.statusBar().showMessage(f"safety stop ({source}): no engine is running, so no output")

    def set_recording(self, on: bool) -> None:
        """Start or stop recording to a new Session file in :attr:`record_dir`."""
        if self.engine is None or self.state is not EngineState.RUNNING:
            return
        try:
            if on:
                self.record_dir.mkdir(parents=True, exist_ok=True)
                stamp = time.strftime("%Y%m%d-%H%M%S")
                self.recording_path = self.record_dir / f"{self.profile.rig.name}-{stamp}.h5"
                self.engine.start_recording(self.recording_path)
                self._recording_since = time.monotonic()
                self.statusBar().showMessage(f"recording to {self.recording_path}")
            else:
                counters = self.engine.stop_recording()
                self.statusBar().showMessage(
                    f"recorded {counters.get('bins_written', 0)} bins to {self.recording_path}"
                )
                self.recording_path = None
                self.controls.show_recording(None)
        except (UserError, OSError) as error:
            self.report_error("Recording failed", str(error))
            with QtCore.QSignalBlocker(self.controls.record_button):
                self.controls.record_button.setChecked(False)

    # -- redraw -----------------------------------------------------------------------------------

    def _tick(self) -> None:
        if self.state is EngineState.STARTING:
            self._poll_start()
        if self.state is EngineState.RUNNING:
            try:
                self.feed.update()
            except UserError as error:
                self.report_error("The engine stopped", str(error))
                self.stop_engine()
                return
            self.kinematics.refresh(self.feed)
            self.latency.refresh(self.feed)
            if self.signals.isVisible():
                self.signals.refresh(self.feed)
            if self.recording_path is not None:
                size = self.recording_path.stat().st_size if self.recording_path.exists() else 0
                self.controls.show_recording(time.monotonic() - self._recording_since, size)
            if self.feed.status is not self._status_seen:
                self._status_seen = self.feed.status
                self.health.refresh(self.feed)
                self._check_engine_errors(self.feed.status)
            self.frames += 1

    def _poll_start(self) -> None:
        try:
            description = self.engine.poll_started()
        except UserError as error:
            self.report_error("The engine could not start", str(error))
            self.engine.stop()
            self.engine = None
            self.state = EngineState.IDLE
            self.controls.set_state(running=False)
            self.health.show_stopped("could not start (see the error)")
            return
        if description is None:
            return
        self.feed = DashboardFeed(self.profile, self.engine, self.feed_config)
        self.feed.attach_truth()
        self.model_card.show_engine(description)
        self.state = EngineState.RUNNING
        self.controls.set_state(running=True)
        self.kinematics.reset_button.setEnabled(True)
        self.statusBar().showMessage(
            f"decoding {self.profile.rig.name} → {description.output_stream}; output held until armed"
        )
        if self.profile.output.arm_on_start and not self._stopped_while_starting:
            self.set_output_enabled(True, "arm_on_start")

    def _check_engine_errors(self, status: dict) -> None:
        if status["errors"] and not self._reported_engine_error:
            self._reported_engine_error = True
            self.report_error("The decoder reported an error", "\n".join(status["errors"]))

    def report_error(self, title: str, message: str) -> None:
        """Show ``message`` in a dialog that does not block the redraw (and keep it in :attr:`errors`)."""
        self.errors.append(f"{title}: {message}")
        self.statusBar().showMessage(f"{title}: {message.splitlines()[0]}")
        box = QtWidgets.QMessageBox(QtWidgets.QMessageBox.Icon.Critical, title, message, parent=self)
        box.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        """Closing the window stops the engine process; nothing is left running."""
        self.timer.stop()
        self.safety_keys.uninstall()
        self.calibration.shutdown()
        self.stop_engine()
        super().closeEvent(event)
