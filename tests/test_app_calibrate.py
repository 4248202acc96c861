"""The desktop app's "Calibrate…" action (pytest-qt, offscreen, real files): the dialog, the worker
thread with its progress dialog, the held-out report, Accept / Accept anyway / Discard, Cancel, the
error boxes, and the engine restarting on the accepted profile version."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before Qt is imported

import dataclasses
import json
from pathlib import Path

import pytest
from calibrate_fixtures import (
    DEMO_PROFILE,
    heldout_r2_by_onnxruntime,
    make_previous_model,
    simulated_block,
    streaming_rig,
    with_recording_edges,
    with_task_instead_of_hand,
    write_block,
)
from PySide6 import QtCore, QtWidgets

from apps.decoder.calibration_dialog import CalibrationDialog
from apps.decoder.calibration_worker import CalibrationRequest, CalibrationWorker
from apps.decoder.main_window import DecoderWindow, EngineState
from calibrate import CalibrationConfig, CalibrationDataError, StageBConfig, min_record_seconds
from calibrate.data import RECORDING_EDGE_S, check_block, featurize_block
from calibrate.scoring import CALIBRATED
from rtbci.io.store import read_session
from rtbci.profile import load_profile
from rtbci.signal import LABELS
from rtbci.train.stage_b import STAGE_B_FINETUNE

CALIBRATION_TIMEOUT_MS = 90_000
OK = QtWidgets.QDialogButtonBox.StandardButton.Ok
LEFT = QtCore.Qt.MouseButton.LeftButton


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict:
    """A previous decoder fit on one session; one that has seen the calibration block (so calibration
    cannot beat it); and a 65 s calibration block of a later session, as a Session file."""
    folder = tmp_path_factory.mktemp("app-calibrate")
    block = simulated_block(65.0, session=5)
    return {
        "previous": make_previous_model(folder / "previous", simulated_block(60.0, session=4)),
        "oracle": make_previous_model(folder / "oracle", block, oracle=True),
        "block": block,
        "block_file": write_block(block, folder / "block.h5"),
    }


def test_the_shortest_recording_the_dialog_offers_holds_enough_bins(qtbot, tmp_path):
    """The dialog's minimum is the pipeline's own length rule: a simulated recording of exactly that
    length, with the worst losses a live recording may have at its edges, passes the pipeline's
    checks; one of the 60 s the pipeline needs in bins (what the dialog used to offer) does not."""
    config = CalibrationConfig(show_progress=False)
    profile = load_profile(DEMO_PROFILE)
    dialog = CalibrationDialog(profile, config.min_seconds)
    qtbot.addWidget(dialog)
    shortest = min_record_seconds(config.min_seconds, profile)
    assert dialog.record_seconds.minimum() == shortest > config.min_seconds
    assert dialog.record_seconds.value() >= shortest
    dialog.record.setChecked(True)
    dialog.record_seconds.setValue(config.min_seconds)  # below the minimum: the box keeps the minimum
    request = dialog.request(tmp_path / "block.h5", config)
    assert request.record_seconds == shortest

    recording = with_recording_edges(simulated_block(request.record_seconds), RECORDING_EDGE_S)
    check_block(recording, profile, "lfp", config.min_seconds, "recording")
    binned = featurize_block(recording, profile, config.min_seconds, "recording", progress=False)
    assert len(binned) * profile.bin_s >= config.min_seconds

    too_short = with_recording_edges(simulated_block(config.min_seconds), RECORDING_EDGE_S)
    with pytest.raises(CalibrationDataError, match=rf"record at least {shortest:g} s"):
        check_block(too_short, profile, "lfp", config.min_seconds, "recording")


def test_the_dialog_asks_where_the_labels_come_from(qtbot, tmp_path):
    config = CalibrationConfig(show_progress=False)
    dialog = CalibrationDialog(load_profile(DEMO_PROFILE), config.min_seconds)
    qtbot.addWidget(dialog)
    choices = [dialog.labels.itemData(index) for index in range(dialog.labels.count())]
    assert choices == list(LABELS) and dialog.labels.currentData() == "hand", "hand unless chosen"
    assert dialog.request(tmp_path / "block.h5", config).labels == "hand"
    dialog.labels.setCurrentIndex(dialog.labels.findData("cue"))
    assert "assist 1" in dialog.labels.toolTip() and "other `rtbci task`" in dialog.labels.toolTip()
    dialog.record.setChecked(True)
    request = dialog.request(tmp_path / "block.h5", config)
    assert request.labels == "cue" and request.record_seconds is not None
    dialog.labels.setCurrentIndex(dialog.labels.findData("refit"))
    assert "Gilja" in dialog.labels.toolTip()
    assert dialog.request(tmp_path / "block.h5", config).labels == "refit"


@pytest.fixture
def labels(monkeypatch) -> list[str]:
    """Every label the calibration progress dialog shows, in order."""
    shown: list[str] = []
    original = QtWidgets.QProgressDialog.setLabelText

    def record(dialog: QtWidgets.QProgressDialog, text: str) -> None:
        shown.append(text)
        original(dialog, text)

    monkeypatch.setattr(QtWidgets.QProgressDialog, "setLabelText", record)
    return shown


def open_window(qtbot, profile_path: Path, record_dir: Path) -> DecoderWindow:
    window = DecoderWindow([profile_path], record_dir=record_dir, lower_priority=False)
    qtbot.addWidget(window)
    window.show()
    return window


def calibrate_through_dialog(
    qtbot,
    window: DecoderWindow,
    session_file: Path | None = None,
    record_seconds: float | None = None,
    labels: str = "hand",
) -> None:
    """Click Calibrate…, choose the source and labels in the dialog, click Calibrate (Stage B as
    configured)."""
    qtbot.mouseClick(window.controls.calibrate_button, LEFT)
    dialog = window.calibration.dialog
    assert dialog is not None and dialog.isVisible()
    assert not window.controls.calibrate_button.isEnabled() and not window.calibration.menu_action.isEnabled()
    if session_file is not None:
        assert not dialog.buttons.button(OK).isEnabled(), "no file chosen yet"
        dialog.session_path.setText(str(session_file))
    else:
        dialog.record.setChecked(True)
        dialog.record_seconds.setValue(record_seconds)
    dialog.labels.setCurrentIndex(dialog.labels.findData(labels))
    dialog.full.setChecked(window.calibration.config.full)
    qtbot.mouseClick(dialog.buttons.button(OK), LEFT)
    assert window.calibration.worker is not None and window.calibration.progress.isVisible()


def wait_until_done(qtbot, window: DecoderWindow) -> None:
    qtbot.waitUntil(lambda: window.calibration.worker is None, timeout=CALIBRATION_TIMEOUT_MS)


def error_boxes() -> list[str]:
    return [
        widget.text()
        for widget in QtWidgets.QApplication.topLevelWidgets()
        if isinstance(widget, QtWidgets.QMessageBox) and widget.isVisible()
    ]


@pytest.mark.slow
def test_calibrate_from_a_session_file_report_and_accept(qtbot, models, tmp_path, labels):
    profile_path = models["previous"].write_profile(tmp_path / "rig.toml")
    original = profile_path.read_text()
    window = open_window(qtbot, profile_path, tmp_path)

    calibrate_through_dialog(qtbot, window, session_file=models["block_file"])
    wait_until_done(qtbot, window)

    assert window.errors == []
    assert any(label.startswith("Stage A (2/4): step") for label in labels), labels
    assert labels[-1].startswith("Exporting (4/4): wrote ")
    report = window.calibration.report
    assert report is not None and report.isVisible()
    result = report.result
    assert result.stage_b_seconds is None  # Stage A only: the box was left unticked

    # The report shows the pipeline's held-out table; its calibrated row is the result's R², per axis
    # and mean, and so is the JSON report beside the artifact.
    text = report.summary.toPlainText()
    assert text == result.summary()
    calibrated_row = next(line for line in text.splitlines() if line.startswith("calibrated"))
    shown = [float(value) for value in calibrated_row.split()[1:]]
    r2 = result.scores.r2(CALIBRATED)
    assert shown == pytest.approx([*r2, r2.mean()], abs=5e-4)
    assert {"ridge on raw features", "previous decoder"} <= {line[:24].strip() for line in text.splitlines()}
    written = json.loads(result.report_json.read_text())["heldout_r2"]["calibrated"]
    assert [written["vel_x"], written["vel_y"]] == pytest.approx(list(r2), abs=1e-9)
    assert not report.plot.pixmap().isNull() and report.plot.pixmap().width() > 300

    # A tiny random backbone may or may not beat the previous decoder; either way Accept ends with the
    # new version written (through "Accept anyway" when the guard first keeps the previous decoder).
    qtbot.mouseClick(report.accept_button, LEFT)
    if not result.better_than_previous:
        assert report.accept_button.text() == "Accept anyway" and profile_path.read_text() == original
        qtbot.mouseClick(report.accept_button, LEFT)

    assert window.calibration.report is None and window.errors == []
    profile = load_profile(profile_path)
    assert profile.model.sha256 == result.exported.manifest.sha256
    assert profile.artifact_dir() == result.exported.artifact_dir.resolve()
    assert (tmp_path / "rig.v1.toml").read_text() == original
    # The artifact the window now runs, stepped in ONNX Runtime, scores what the report showed.
    recomputed = heldout_r2_by_onnxruntime(
        profile.artifact_dir(), models["block"], profile_path, result.split.heldout.start
    )
    assert shown[:2] == pytest.approx(list(recomputed), abs=5e-4)
    assert window.controls.profile_box.currentData() == str(profile_path.resolve())
    assert window.profile.model.sha256 == result.exported.manifest.sha256
    assert window.model_card.values["sha256"].text().startswith(result.exported.manifest.sha256[:12])
    assert window.controls.calibrate_button.isEnabled()


@pytest.mark.slow
def test_a_worse_decoder_is_kept_out_until_accept_anyway(qtbot, models, tmp_path):
    profile_path = models["oracle"].write_profile(tmp_path / "rig.toml")
    original = profile_path.read_text()
    window = open_window(qtbot, profile_path, tmp_path)

    calibrate_through_dialog(qtbot, window, session_file=models["block_file"])
    wait_until_done(qtbot, window)
    report = window.calibration.report
    result = report.result
    assert not result.better_than_previous
    assert "WORSE than the previous one on held-out data" in report.summary.toPlainText()

    qtbot.mouseClick(report.accept_button, LEFT)
    assert profile_path.read_text() == original and not list(tmp_path.glob("rig.v*.toml"))
    assert report.isVisible() and report.accept_button.text() == "Accept anyway"
    assert f"{result.heldout_r2:.3f} is below the previous decoder's {result.previous_r2:.3f}" in (
        report.verdict.text()
    )

    qtbot.mouseClick(report.accept_button, LEFT)
    assert load_profile(profile_path).model.sha256 == result.exported.manifest.sha256
    assert (tmp_path / "rig.v1.toml").read_text() == original
    assert window.profile.model.sha256 == result.exported.manifest.sha256
    assert window.errors == []


@pytest.mark.slow
def test_discard_after_a_full_fine_tune_writes_no_profile(qtbot, models, tmp_path, labels):
    profile_path = models["previous"].write_profile(tmp_path / "rig.toml")
    original = profile_path.read_text()
    window = open_window(qtbot, profile_path, tmp_path)
    # Stage B with a handful of steps: this checks the wiring, the calibration benchmark the fit.
    loop = dataclasses.replace(STAGE_B_FINETUNE.loop, steps=6, eval_every=3, batch_size=4)
    few_steps = dataclasses.replace(STAGE_B_FINETUNE, loop=loop)
    window.calibration.config = dataclasses.replace(
        window.calibration.config, full=True, stage_b=StageBConfig(few_steps)
    )

    calibrate_through_dialog(qtbot, window, session_file=models["block_file"])
    wait_until_done(qtbot, window)
    report = window.calibration.report
    assert report.result.stage_b_seconds is not None
    assert any(label.startswith("Stage B (3/5): step") for label in labels), labels

    qtbot.mouseClick(report.discard_button, LEFT)
    assert window.calibration.report is None and not report.isVisible()
    assert profile_path.read_text() == original and not list(tmp_path.glob("rig.v*.toml"))
    assert window.profile.model.sha256 == models["previous"].sha256
    assert window.controls.calibrate_button.isEnabled() and window.errors == []
    assert "discarded" in window.statusBar().currentMessage()


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("short.h5", None, r"only 20.0 s of lfp with behavior; calibration needs at least 60 s"),
        ("garbage.h5", b"not an HDF5 file", "garbage.h5: cannot be opened as HDF5"),
    ],
    ids=["too-short", "not-hdf5"],
)
def test_a_bad_block_shows_the_pipelines_message_and_the_window_stays_usable(
    qtbot, models, tmp_path, name, content, expected, rtbci_home
):
    profile_path = models["previous"].write_profile(tmp_path / "rig.toml")
    original = profile_path.read_text()
    source = tmp_path / name
    if content is None:
        write_block(simulated_block(20.0, session=6), source)
    else:
        source.write_bytes(content)
    window = open_window(qtbot, profile_path, tmp_path)

    calibrate_through_dialog(qtbot, window, session_file=source)
    wait_until_done(qtbot, window)

    assert len(window.errors) == 1
    assert window.errors[0].startswith("Calibration failed: ") and expected in window.errors[0]
    assert "Traceback" not in window.errors[0]
    assert any(expected in text for text in error_boxes())
    assert window.calibration.report is None and window.calibration.progress is None
    assert profile_path.read_text() == original and not (rtbci_home / "models").exists()
    assert window.controls.calibrate_button.isEnabled()
    window.calibration.menu_action.trigger()  # still usable: the dialog opens again (from the menu)
    assert window.calibration.dialog.isVisible()
    window.calibration.dialog.reject()
    assert not window.calibration.busy


def test_cancel_during_stage_a_unwinds_the_pipeline_and_exports_nothing(qtbot, models, tmp_path, rtbci_home):
    profile_path = models["previous"].write_profile(tmp_path / "rig.toml")
    request = CalibrationRequest(
        profile_path, models["block_file"], None, None, CalibrationConfig(show_progress=False)
    )
    worker = CalibrationWorker(request)
    stages: list[str] = []

    def cancel_once_fitting(stage: str, fraction: float, message: str) -> None:
        stages.append(stage)
        if stage == "stage_a":
            worker.cancel()  # in the worker thread: the very next progress report unwinds the pipeline

    worker.progressed.connect(cancel_once_fitting, QtCore.Qt.ConnectionType.DirectConnection)
    with qtbot.waitSignal(worker.cancelled, timeout=CALIBRATION_TIMEOUT_MS):
        worker.start()
    worker.wait()

    assert stages == ["load", "stage_a"]
    assert not (rtbci_home / "models").exists(), "a cancelled calibration exports no artifact"


@pytest.fixture
def live_rig(models, tmp_path):
    """A profile on the previous decoder with stream names of its own, and the simulated rig
    streaming them over real LSL on loopback (in a thread of this process)."""
    profile_path = models["previous"].write_profile(tmp_path / "rig.toml")
    with streaming_rig(profile_path):
        yield profile_path


@pytest.mark.slow
def test_cancel_ends_a_recording_keeps_its_file_and_writes_no_profile(
    qtbot, live_rig, tmp_path, labels, rtbci_home
):
    original = live_rig.read_text()
    window = open_window(qtbot, live_rig, tmp_path / "recordings")

    calibrate_through_dialog(qtbot, window, record_seconds=120.0)
    qtbot.waitUntil(
        lambda: any(label.startswith("Recording (1/5): spikes") for label in labels), timeout=30_000
    )
    qtbot.mouseClick(window.calibration.progress.findChild(QtWidgets.QPushButton), LEFT)  # its Cancel
    wait_until_done(qtbot, window)  # within a second or so, not the 120 s asked for

    assert window.errors == [] and window.calibration.report is None
    assert "cancelled" in window.statusBar().currentMessage()
    assert live_rig.read_text() == original and not (rtbci_home / "models").exists()
    (recording,) = (tmp_path / "recordings").glob("rig-calibration-*.h5")
    session = read_session(recording)  # the recording is kept, closed and readable
    assert 0 < session.streams["lfp"].duration < 60.0
    assert window.controls.calibrate_button.isEnabled()


@pytest.mark.slow
def test_accepting_restarts_a_running_engine_on_the_new_version(qtbot, live_rig, tmp_path):
    window = open_window(qtbot, live_rig, tmp_path)
    # A short recording keeps this test quick; the 60 s default is the pipeline's concern.
    window.calibration.config = CalibrationConfig(show_progress=False, min_seconds=8.0)
    window.connect_engine()
    qtbot.waitUntil(lambda: window.state is EngineState.RUNNING, timeout=120_000)
    first_engine = window.engine

    calibrate_through_dialog(qtbot, window, record_seconds=10.0)
    bins_at_start = window.feed.bins
    wait_until_done(qtbot, window)
    assert window.errors == []
    assert window.feed.bins > bins_at_start + 200, "the engine keeps decoding while calibration runs"
    report = window.calibration.report
    result = report.result
    assert result.recorded is not None and result.recorded.path.parent == tmp_path

    qtbot.mouseClick(report.accept_button, LEFT)
    if not result.better_than_previous:
        qtbot.mouseClick(report.accept_button, LEFT)  # "Accept anyway"
    assert window.engine is not first_engine and window.state is not EngineState.IDLE
    qtbot.waitUntil(lambda: window.state is EngineState.RUNNING, timeout=120_000)
    assert window.feed.description is not None and window.errors == []
    assert load_profile(live_rig).model.sha256 == result.exported.manifest.sha256
    assert window.model_card.values["sha256"].text().startswith(result.exported.manifest.sha256[:12])
    window.close()
    assert window.state is EngineState.IDLE


@pytest.mark.slow
def test_a_cued_block_from_a_file_calibrates_through_the_dialog(qtbot, models, tmp_path):
    profile_path = models["previous"].write_profile(tmp_path / "rig.toml")
    cued = write_block(
        with_task_instead_of_hand(models["block"], load_profile(profile_path)), tmp_path / "cued.h5"
    )
    window = open_window(qtbot, profile_path, tmp_path)

    calibrate_through_dialog(qtbot, window, session_file=cued, labels="cue")
    wait_until_done(qtbot, window)

    assert window.errors == []
    result = window.calibration.report.result
    assert result.labels == "cue" and "(labels: cue):" in window.calibration.report.summary.toPlainText()
    assert json.loads(result.report_json.read_text())["labels"] == "cue"


@pytest.mark.slow
def test_a_cued_recording_runs_the_task_while_the_engine_decodes(qtbot, live_rig, tmp_path):
    window = open_window(qtbot, live_rig, tmp_path)
    window.calibration.config = CalibrationConfig(show_progress=False, min_seconds=8.0)
    window.connect_engine()
    qtbot.waitUntil(lambda: window.state is EngineState.RUNNING, timeout=120_000)

    calibrate_through_dialog(qtbot, window, record_seconds=10.0, labels="cue")
    wait_until_done(qtbot, window)

    assert window.errors == []
    result = window.calibration.report.result
    assert result.labels == "cue" and set(result.recorded.health) == {"spikes", "lfp", "task"}
    block = read_session(result.recorded.path)
    assert block.streams["task"].n_samples == pytest.approx(10.0 / 0.02, rel=0.15), "a row per decoded bin"
    assert "target_on trial=1" in block.streams["task_markers"].data[:, 0].tolist()
    assert "behavior" not in block.streams
    window.close()
