"""The safety stop from anywhere (pytest-qt, offscreen, a real engine on the simulated rig over loopback
LSL): Esc or F12 pressed with the Calibrate… dialog, a file chooser, an error box or the Decoder menu
focused, or with a calibration recording, zeroes the output stream (read by a real pylsl inlet), leaves
that dialog or menu open, and is recorded by the engine with its time. Also: the output starts held and
is armed by a click; stopping disarms and greys the button; Ctrl+Q quits; Reset position is an engine
command that the engine logs."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before Qt is imported

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pytest
from app_fixtures import OutputReader, random_artifact, write_unique_profile
from PySide6 import QtCore, QtWidgets

from apps.decoder.controls import OutputState
from apps.decoder.main_window import DecoderWindow, EngineState
from rtbci.profile import load_profile
from rtbci.sim.rig_process import SimulatedRig

pytestmark = pytest.mark.slow

LEFT = QtCore.Qt.MouseButton.LeftButton
ESC = QtCore.Qt.Key.Key_Escape
START_TIMEOUT_S = 120.0


@dataclass
class Rig:
    """A dashboard decoding the simulated rig, and a real inlet on its output stream."""

    window: DecoderWindow
    output: OutputReader


def process_events_until(predicate: Callable[[], bool], timeout_s: float) -> None:
    """Run the Qt event loop until ``predicate()`` holds (module fixtures have no qtbot)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"not within {timeout_s} s"
        QtWidgets.QApplication.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.01)


@pytest.fixture(scope="module")
def rig(qapp, tmp_path_factory) -> Iterator[Rig]:
    """One live-rig profile (``arm_on_start = false``) decoded by one window for the whole module."""
    folder = tmp_path_factory.mktemp("safety-stop")
    profile_path = write_unique_profile(folder, random_artifact(), output={"arm_on_start": False})
    with SimulatedRig(load_profile(profile_path)):
        window = DecoderWindow([profile_path], record_dir=folder / "recordings", lower_priority=False)
        window.show()
        window.connect_engine()
        process_events_until(lambda: window.state is EngineState.RUNNING, START_TIMEOUT_S)
        output = OutputReader(window.feed.description.output_stream)
        yield Rig(window, output)
        output.close()
        window.close()


@pytest.fixture(autouse=True)
def held_after_each_test(rig) -> Iterator[None]:
    """Each test starts with the output held, whatever the test before it left."""
    yield
    if rig.window.controls.output_state is OutputState.ARMED:
        rig.window.set_output_enabled(False, "between tests")


def held(output: OutputReader) -> bool:
    """Whether the output stream now carries zero velocity and a constant position."""
    samples = output.samples(30)[5:]  # a bin pushed just before the change may still be on its way
    return bool((samples[:, :2] == 0).all() and (samples[:, 2:] == samples[0, 2:]).all())


def arm(qtbot, rig: Rig) -> None:
    """Click the output button to arm the output, and see the decoded velocity go out."""
    assert rig.window.controls.output_state is OutputState.HELD
    qtbot.mouseClick(rig.window.controls.output_button, LEFT)
    assert rig.window.controls.output_state is OutputState.ARMED
    assert (rig.output.samples(30)[5:, :2] != 0).any(), "armed: the random decoder moves"


def press_safety_key(qtbot, rig: Rig, target: QtWidgets.QWidget, key: QtCore.Qt.Key = ESC) -> None:
    """Press ``key`` on ``target``; the output must be held at once, and the engine must have recorded
    the stop with its time."""
    before = rig.window.engine.status()["output_events"]
    t_pressed = time.monotonic()
    qtbot.keyClick(target, key)
    assert rig.window.controls.output_state is OutputState.HELD
    assert held(rig.output), "the output stream must carry zero velocity after the safety key"
    events = rig.window.engine.status()["output_events"]
    assert len(events) == len(before) + 1
    name = "Esc" if key == ESC else "F12"
    assert events[-1]["enabled"] is False and events[-1]["source"] == f"{name} key"
    assert events[-1]["time"] > (before[-1]["time"] if before else 0.0)
    assert time.monotonic() - t_pressed < 5.0
    assert rig.window.output_events[-1].time == events[-1]["time"]


def test_the_output_starts_held_on_a_live_rig_and_a_click_arms_it(qtbot, rig):
    controls = rig.window.controls
    assert controls.output_state is OutputState.HELD and controls.output_button.isEnabled()
    assert "HELD" in controls.output_button.text()
    assert held(rig.output), "a live rig's output starts held"
    assert rig.window.output_events == []
    arm(qtbot, rig)
    assert rig.window.engine.status()["output_events"][-1]["source"] == "output button"
    qtbot.mouseClick(controls.output_button, LEFT)  # the button is a safety stop too
    assert controls.output_state is OutputState.HELD and held(rig.output)
    assert "Esc or F12" in controls.safety_keys.text()


def test_esc_in_the_main_window_and_f12(qtbot, rig):
    arm(qtbot, rig)
    press_safety_key(qtbot, rig, rig.window.controls.profile_box)
    arm(qtbot, rig)
    press_safety_key(qtbot, rig, rig.window, QtCore.Qt.Key.Key_F12)


def test_esc_in_the_calibrate_dialog(qtbot, rig):
    arm(qtbot, rig)
    rig.window.calibration.open()
    dialog = rig.window.calibration.dialog
    qtbot.waitUntil(dialog.isVisible)
    press_safety_key(qtbot, rig, dialog.session_path)
    assert dialog.isVisible(), "Esc is the safety stop, so it does not close the dialog"
    qtbot.mouseClick(dialog.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Cancel), LEFT)
    assert rig.window.calibration.dialog is None


def test_esc_in_an_error_box(qtbot, rig):
    arm(qtbot, rig)
    rig.window.report_error("Something failed", "for this test")
    (box,) = [
        widget
        for widget in QtWidgets.QApplication.topLevelWidgets()
        if isinstance(widget, QtWidgets.QMessageBox) and widget.text() == "for this test"
    ]
    qtbot.waitUntil(box.isVisible)
    press_safety_key(qtbot, rig, box)
    assert box.isVisible()
    box.close()
    rig.window.errors.clear()


def test_esc_in_a_modal_file_chooser(qtbot, rig):
    arm(qtbot, rig)
    seen: dict[str, bool] = {}

    def in_the_chooser() -> None:  # runs inside the chooser's own event loop
        chooser = QtWidgets.QApplication.activeModalWidget()
        assert isinstance(chooser, QtWidgets.QFileDialog)
        press_safety_key(qtbot, rig, chooser.focusWidget() or chooser)
        seen["open after Esc"] = chooser.isVisible()
        chooser.reject()

    QtCore.QTimer.singleShot(500, in_the_chooser)
    qtbot.mouseClick(rig.window.controls.browse_button, LEFT)  # returns when the chooser closes
    assert seen == {"open after Esc": True}


def test_esc_with_the_decoder_menu_open(qtbot, rig):
    arm(qtbot, rig)
    menu = rig.window.decoder_menu
    menu.popup(rig.window.mapToGlobal(QtCore.QPoint(20, 20)))
    qtbot.waitUntil(menu.isVisible)
    assert QtWidgets.QApplication.activePopupWidget() is menu
    press_safety_key(qtbot, rig, menu)
    assert menu.isVisible(), "Esc is the safety stop, so it does not close the menu"
    menu.close()


def test_esc_while_a_calibration_records(qtbot, rig):
    calibration = rig.window.calibration
    calibration.open()
    dialog = calibration.dialog
    dialog.record.setChecked(True)
    qtbot.mouseClick(dialog.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok), LEFT)
    labels: list[str] = []
    calibration.worker.progressed.connect(lambda stage, fraction, message: labels.append(stage))
    qtbot.waitUntil(lambda: "record" in labels, timeout=30_000)
    arm(qtbot, rig)
    progress = calibration.progress
    cancel = progress.findChild(QtWidgets.QPushButton)
    cancel.setFocus()
    press_safety_key(qtbot, rig, cancel)
    assert calibration.worker is not None and progress.isVisible(), "Esc does not cancel the calibration"
    calibration.cancel()
    qtbot.waitUntil(lambda: calibration.worker is None, timeout=30_000)


def test_reset_position_brings_the_cursor_back_and_the_engine_logs_it(qtbot, rig):
    arm(qtbot, rig)
    window = rig.window
    qtbot.wait(1000)  # the random decoder drifts the position
    assert window.kinematics.reset_button.isEnabled()
    inlet = rig.output.inlet
    inlet.flush()
    qtbot.mouseClick(window.kinematics.reset_button, LEFT)
    rows: list[list[float]] = []
    while len(rows) < 25:  # every bin from the click on, none dropped
        chunk, _ = inlet.pull_chunk(timeout=5.0, max_samples=25)
        assert chunk, "no output within 5 s"
        rows.extend(chunk)
    samples = np.asarray(rows[:25], np.float32)
    # The bin that applies the reset integrates from zero: its position is exactly its velocity step.
    bin_s = np.float32(window.feed.description.bin_ms / 1000.0)
    from_zero = np.isclose(samples[:, 2:], samples[:, :2] * bin_s, rtol=1e-5, atol=1e-7).all(axis=1)
    assert from_zero[:15].any(), "no bin restarted the position from zero"
    assert abs(samples[:, 2:]).max() > 0, "the position moves again after the reset"
    events = window.engine.status()["events"]
    assert any(event.endswith("position reset (reset button)") for event in events), events
    assert "position reset (reset button)" in window.statusBar().currentMessage()


def test_stopping_disarms_and_greys_the_output_button(qtbot, rig):
    arm(qtbot, rig)
    window = rig.window
    qtbot.mouseClick(window.controls.stop_button, LEFT)
    assert window.state is EngineState.IDLE
    button = window.controls.output_button
    assert window.controls.output_state is OutputState.UNAVAILABLE and not button.isEnabled()
    assert "no engine" in button.text() and "#d9d9d9" in button.styleSheet()
    stops = [event["enabled"] for event in window.last_report["output_events"]]
    assert stops == [event.enabled for event in window.output_events] and stops[-1] is True
    window.connect_engine()
    process_events_until(lambda: window.state is EngineState.RUNNING, START_TIMEOUT_S)
    restarted = OutputReader(window.feed.description.output_stream)
    assert window.controls.output_state is OutputState.HELD and held(restarted), "a restart starts held"
    restarted.close()
    rig.output.close()
    rig.output = OutputReader(window.feed.description.output_stream)  # for any test after this one


def test_an_armed_profile_arms_itself_and_ctrl_q_quits(qtbot, tmp_path):
    profile_path = write_unique_profile(tmp_path, random_artifact(), output={"arm_on_start": True})
    with SimulatedRig(load_profile(profile_path)):
        window = DecoderWindow([profile_path], record_dir=tmp_path, lower_priority=False)
        qtbot.addWidget(window)
        window.show()
        window.connect_engine()
        qtbot.waitUntil(lambda: window.controls.output_state is OutputState.ARMED, timeout=120_000)
        assert [(event.enabled, event.source) for event in window.output_events] == [(True, "arm_on_start")]
        output = OutputReader(window.feed.description.output_stream)
        assert (output.samples(30)[5:, :2] != 0).any()
        output.close()
        window.activateWindow()
        qtbot.waitUntil(window.isActiveWindow)
        qtbot.keyClick(window, QtCore.Qt.Key.Key_Q, QtCore.Qt.KeyboardModifier.ControlModifier)
        qtbot.waitUntil(lambda: not window.isVisible())
        assert window.state is EngineState.IDLE and window.engine is None
    assert window.last_report["bins"] > 0
