"""The dashboard on the simulated rig (pytest-qt, offscreen): curves get data, inputs show connected,
the safety-stop button zeroes the output stream (read by a real LSL inlet), a screenshot of the
running window is saved, closing it leaves no process behind, and a failed start is a dialog."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before Qt is imported

from pathlib import Path

import numpy as np
import psutil
import pytest
from app_fixtures import OutputReader, child_processes, random_artifact, write_unique_profile
from PySide6 import QtCore, QtGui, QtWidgets

from apps.decoder.controls import OutputState
from apps.decoder.health_panel import Light
from apps.decoder.main_window import DecoderWindow, EngineState
from rtbci.io.store import read_session
from rtbci.profile import load_profile
from rtbci.sim.rig_process import SimulatedRig

pytestmark = pytest.mark.slow

ARTIFACTS = Path(os.environ.get("RTBCI_ARTIFACTS", Path(__file__).resolve().parents[1] / "artifacts"))


def distinct_colors(image: QtGui.QImage, step: int = 7) -> int:
    """Distinct pixel colours on a grid of every ``step``-th pixel."""
    return len(
        {image.pixel(x, y) for x in range(0, image.width(), step) for y in range(0, image.height(), step)}
    )


def plot_geometry(window: DecoderWindow) -> list[QtCore.QRect]:
    """Where the plots are (the panels are rebuilt on every start, so looked up each time)."""
    kinematics, latency = window.kinematics, window.latency
    plots = (kinematics.traces, kinematics.cursor, latency.histogram, latency.timeline)
    return [plot.geometry() for plot in plots]


def test_dashboard_decodes_the_simulated_rig_and_closes_cleanly(qtbot, tmp_path):
    before = child_processes()
    profile_path = write_unique_profile(tmp_path, random_artifact())
    with SimulatedRig(load_profile(profile_path)) as rig:
        window = DecoderWindow([profile_path], record_dir=tmp_path, lower_priority=False)
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        idle_geometry = plot_geometry(window)
        window.connect_engine()
        qtbot.waitUntil(lambda: window.state is EngineState.RUNNING, timeout=120_000)
        assert window.errors == []
        feed = window.feed
        qtbot.waitUntil(lambda: feed.bins >= 150 and feed.follower is not None, timeout=30_000)
        qtbot.wait(1500)  # truth lags the bins by the training lag; the health table needs two status polls

        x, y = window.kinematics.velocity_curves[0].getData()
        assert len(x) >= 100 and np.isfinite(y).all() and np.ptp(y) > 0
        truth_x, _ = window.kinematics.truth_curves[0].getData()
        assert len(truth_x) >= 50
        edges, percent = window.latency.histogram_curve.getData()
        assert len(edges) == len(percent) + 1 and percent.sum() == pytest.approx(100.0)
        assert len(window.latency.timeline_curve.getData()[0]) >= 100

        for role in ("spikes", "lfp"):
            assert window.health.cells[role][2].text() == "connected"
            assert window.health.lights[role] in (Light.GREEN, Light.AMBER)
        assert window.health.cells["behavior"][2].text() == "connected"
        assert "engine: running" in window.health.engine_line.text()
        assert window.model_card.values["backend"].text() == "onnxruntime"

        output = OutputReader(feed.description.output_stream)
        assert window.controls.output_state is OutputState.ARMED, "the demo profile arms itself"
        assert (output.samples(25)[:, :2] != 0).any()
        qtbot.mouseClick(window.controls.output_button, QtCore.Qt.MouseButton.LeftButton)
        assert window.controls.output_state is OutputState.HELD
        held = output.samples(25)
        assert (held[:, :2] == 0).all(), "the safety stop must zero the output velocity"
        assert (held[:, 2:] == held[0, 2:]).all(), "the safety stop must hold the position"
        output.close()

        qtbot.mouseClick(window.controls.record_button, QtCore.Qt.MouseButton.LeftButton)
        recording = window.recording_path
        assert recording is not None and recording.parent == tmp_path
        qtbot.waitUntil(lambda: "recording on" in window.health.engine_line.text(), timeout=10_000)
        rec = window.controls.rec_indicator
        qtbot.waitUntil(lambda: rec.isVisible() and "REC  0:01" in rec.text(), timeout=5_000)
        assert rec.text().endswith(" MB")
        qtbot.mouseClick(window.controls.record_button, QtCore.Qt.MouseButton.LeftButton)
        assert window.recording_path is None and window.errors == [] and not rec.isVisible()
        assert len(read_session(recording).streams["decoded"].data) > 0

        qtbot.wait(500)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        screenshot = ARTIFACTS / "decoder_window.png"
        image = window.grab().toImage()
        assert image.save(str(screenshot))
        print(f"screenshot of the running dashboard: {screenshot}")
        assert distinct_colors(image) > 20, "the window looks blank"
        for panel in (window.kinematics, window.latency, window.health, window.model_card, window.controls):
            assert panel.isVisible() and panel.width() > 100 and panel.height() > 100
            assert distinct_colors(panel.grab().toImage(), step=3) > 3, f"{type(panel).__name__} is blank"

        rig.stop()  # the inputs go silent: their lights turn red
        qtbot.waitUntil(lambda: window.health.lights["lfp"] is Light.RED, timeout=15_000)
        assert window.health.lights["spikes"] is Light.RED

        assert plot_geometry(window) == idle_geometry, "the plots moved while running"
        engine_pid = feed.description.pid
        window.stop_engine()
        qtbot.wait(100)
        assert plot_geometry(window) == idle_geometry, "the plots moved on stop"
        button = window.controls.output_button
        assert not button.isEnabled() and "no engine" in button.text(), "stopped: the output button is off"
        window.close()
        assert window.state is EngineState.IDLE
        assert not psutil.pid_exists(engine_pid)
    assert child_processes() == before


def test_a_missing_stream_shows_an_error_dialog_not_a_traceback(qtbot, tmp_path):
    before = child_processes()
    profile_path = write_unique_profile(tmp_path, random_artifact(), resolve_timeout_s=0.5)
    window = DecoderWindow([profile_path], lower_priority=False)
    qtbot.addWidget(window)
    window.show()
    window.connect_engine()
    qtbot.waitUntil(lambda: len(window.errors) > 0, timeout=120_000)
    assert window.state is EngineState.IDLE
    assert "no LSL stream for spikes" in window.errors[0] and "Traceback" not in window.errors[0]
    dialogs = [w for w in QtWidgets.QApplication.topLevelWidgets() if isinstance(w, QtWidgets.QMessageBox)]
    assert any(dialog.isVisible() and "no LSL stream" in dialog.text() for dialog in dialogs)
    assert window.controls.connect_button.isEnabled()
    window.close()
    assert child_processes() == before


def test_an_invalid_profile_shows_an_error_dialog(qtbot, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[rig]\nname = "x"\n')
    window = DecoderWindow([bad], lower_priority=False)
    qtbot.addWidget(window)
    assert window.errors and "bad.toml" in window.errors[0] and "streams" in window.errors[0]
    window.connect_engine()
    assert window.state is EngineState.IDLE
    window.close()
