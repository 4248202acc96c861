"""Calibration end to end from a Session file: artifact, held-out R², report, profile version, guards."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
from calibrate_fixtures import (
    heldout_r2_by_onnxruntime,
    make_previous_model,
    profile_text_with_model,
    simulated_block,
    write_block,
)

from calibrate import (
    CalibrationConfig,
    CalibrationDataError,
    CalibrationError,
    CalibrationSplitConfig,
    accept_calibration,
    run_calibration,
)
from calibrate.previous import load_previous
from calibrate.split import split_calibration_block
from rtbci.cli import main
from rtbci.home import SHIPPED_PROFILES
from rtbci.io.session import Session
from rtbci.profile import load_profile
from rtbci.runtime import load_backend, read_manifest
from rtbci.signal import featurize
from rtbci.train.stage_a import StageAConfig, run_stage_a

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def blocks(tmp_path_factory) -> dict:
    """A previous decoder fit on one session, and a 65 s calibration block of a later session."""
    folder = tmp_path_factory.mktemp("calibrate")
    fit_session = simulated_block(60.0, session=4)
    block = simulated_block(65.0, session=5)
    return {
        "previous": make_previous_model(folder / "previous", fit_session),
        "oracle": make_previous_model(folder / "oracle", block, oracle=True),
        "block": block,
        "block_file": write_block(block, folder / "block.h5"),
    }


def _tree_digest(folder: Path) -> str:
    """SHA-256 over every file's path and bytes under ``folder``."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def test_calibration_from_file_writes_a_loadable_artifact_and_a_new_profile_version(
    blocks, tmp_path, capsys, rtbci_home
):
    profile_path = blocks["previous"].write_profile(tmp_path / "rig.toml")
    original = profile_path.read_text()
    report_path = tmp_path / "report.json"

    # --force: this test checks the artifact and the profile version whatever the scores (the
    # guard has its own test); a tiny random backbone may or may not beat the previous decoder.
    code = main(
        [
            *("calibrate", "--profile", str(profile_path), "--from", str(blocks["block_file"])),
            *("--json", str(report_path), "--force"),
        ]
    )

    output = capsys.readouterr().out
    report = json.loads(report_path.read_text())
    assert code == 0
    assert "held-out R²" in output and "ridge on raw features" in output and "previous decoder" in output
    assert set(report["heldout_r2"]) == {"calibrated", "ridge_raw", "previous"}
    assert set(report["heldout_r2"]["calibrated"]) == {"vel_x", "vel_y", "mean"}
    start, stop = report["split_bins"]["heldout"]
    assert report["split_bins"]["train"][1] < start and stop - start == pytest.approx(0.2 * stop, abs=1)
    assert report["better_than_previous"] == (
        report["heldout_r2_mean"] >= report["heldout_r2"]["previous"]["mean"]
    )
    assert report["tensorrt"].startswith("not built")  # no TensorRT on this machine
    assert report["profile_written"] == str(profile_path)
    # A lab profile is updated in place; the artifact goes to the user data directory, plainly named.
    assert Path(report["artifact"]).parent == rtbci_home / "models"
    assert re.fullmatch(r"rig-sim-S0-d05-\d{8}T\d{6}Z", Path(report["artifact"]).name)
    assert "TensorRT" not in output  # nothing to say on a machine without TensorRT

    # The new version points at the artifact, with its hash, date and held-out R²; the old one is archived.
    profile = load_profile(profile_path)
    artifact = profile.artifact_dir()
    manifest = read_manifest(artifact)
    assert profile.model.sha256 == manifest.sha256 == report["sha256"]
    assert profile.model.heldout_r2 == pytest.approx(report["heldout_r2_mean"], abs=1e-6)
    assert profile.model.calibrated == report["calibrated_at"] == manifest.calibration_date
    assert manifest.session_id == "sim-S0-d05"
    # The frozen backbone keeps the LFP z-scoring it was trained with (refitting it on the block
    # halved a two-subject student's held-out R²).
    assert manifest.normalization is not None
    assert manifest.normalization == read_manifest(blocks["previous"].artifact_dir).normalization
    assert (tmp_path / "rig.v1.toml").read_text() == original
    assert (artifact / "calibration.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # The artifact loads (hash checked against the profile) and its held-out R², recomputed by
    # stepping it in ONNX Runtime over the block from the first bin, is the reported one.
    load_backend("onnxruntime", artifact, expected_sha256=profile.model.sha256)
    recomputed = heldout_r2_by_onnxruntime(artifact, blocks["block"], profile_path, start)
    reported = [report["heldout_r2"]["calibrated"][axis] for axis in ("vel_x", "vel_y")]
    np.testing.assert_allclose(recomputed, reported, atol=1e-4)


def test_worse_than_previous_keeps_the_old_profile_unless_forced(blocks, tmp_path):
    profile_path = blocks["oracle"].write_profile(tmp_path / "rig.toml")
    original = profile_path.read_text()
    stages = []

    result = run_calibration(
        profile_path,
        session_file=blocks["block_file"],
        config=CalibrationConfig(show_progress=False),
        progress=lambda update: stages.append(update.stage),
    )

    assert stages[0] == "load" and "stage_a" in stages and stages[-1] == "export"
    assert result.heldout_r2 < result.previous_r2 and not result.better_than_previous
    assert "WORSE than the previous one on held-out data" in result.summary()
    assert accept_calibration(result) is None
    assert profile_path.read_text() == original
    assert not list(tmp_path.glob("rig.v*.toml"))

    version = accept_calibration(result, force=True)
    assert version.path == profile_path and version.archived == tmp_path / "rig.v1.toml"
    assert version.archived.read_text() == original
    assert load_profile(profile_path).model.sha256 == result.exported.manifest.sha256


def test_a_refused_calibration_keeps_only_its_report_and_names_the_out_profile(
    blocks, tmp_path, capsys, rtbci_home
):
    profile_path = blocks["oracle"].write_profile(tmp_path / "rig.toml")
    original = profile_path.read_text()
    elsewhere = tmp_path / "lab" / "elsewhere.toml"

    code = main(
        [
            *("calibrate", "--profile", str(profile_path), "--from", str(blocks["block_file"])),
            *("--out-profile", str(elsewhere)),
        ]
    )

    output = capsys.readouterr().out
    assert code == 1
    assert f"nothing written to {elsewhere}" in output
    assert not elsewhere.exists() and profile_path.read_text() == original
    # No artifact is left behind; only the report, under rejected/, with the scores that refused it.
    assert not any((rtbci_home / "models").iterdir())
    (rejected,) = (rtbci_home / "rejected").iterdir()
    assert re.fullmatch(r"[A-Za-z0-9_-]+", rejected.name)
    assert f"report kept in {rejected}" in output
    assert sorted(path.name for path in rejected.iterdir()) == ["calibration.json", "calibration.png"]
    report = json.loads((rejected / "calibration.json").read_text())
    scores = report["rejected"]
    assert scores["heldout_r2_mean"] < scores["previous_heldout_r2_mean"]
    assert scores["heldout_r2_mean"] == pytest.approx(report["heldout_r2_mean"])


def test_calibrating_a_shipped_template_writes_only_to_the_user_data_directory(
    blocks, tmp_path, capsys, rtbci_home
):
    shipped = SHIPPED_PROFILES / "demo.toml"
    before = _tree_digest(SHIPPED_PROFILES)

    for _ in range(2):  # --force: written whatever the scores
        assert (
            main(["calibrate", "--profile", str(shipped), "--from", str(blocks["block_file"]), "--force"])
            == 0
        )

    output = capsys.readouterr().out
    assert _tree_digest(SHIPPED_PROFILES) == before
    lab_copy = rtbci_home / "profiles" / "demo.toml"
    assert (
        f"profile: wrote {lab_copy} (previous version saved as {lab_copy.with_name('demo.v1.toml')})"
        in output
    )
    profile = load_profile(lab_copy)
    assert profile.artifact_dir().parent == rtbci_home / "models"
    assert load_profile(lab_copy.with_name("demo.v1.toml")).artifact_dir().parent == rtbci_home / "models"
    assert "The bundled demo decoder" not in lab_copy.read_text()
    assert "# Calibrated by `rtbci calibrate`" in lab_copy.read_text()
    load_backend("onnxruntime", profile.artifact_dir(), expected_sha256=profile.model.sha256)


def _without_stream(session: Session, kind: str) -> Session:
    kept = {name: stream for name, stream in session.streams.items() if stream.kind != kind}
    return Session(session.meta, kept)


def test_a_block_without_behavior_says_what_is_needed(blocks, tmp_path):
    profile_path = blocks["previous"].write_profile(tmp_path / "rig.toml")
    source = write_block(_without_stream(blocks["block"], "kinematics"), tmp_path / "no_behavior.h5")
    with pytest.raises(CalibrationDataError, match=r"no behavior stream.*vel_x.*record at least 62 s"):
        run_calibration(profile_path, session_file=source, config=CalibrationConfig(show_progress=False))


def test_a_short_block_says_how_much_is_needed(tmp_path, blocks, rtbci_home):
    profile_path = blocks["previous"].write_profile(tmp_path / "rig.toml")
    source = write_block(simulated_block(20.0, session=6), tmp_path / "short.h5")
    needed = r"only 20\.0 s .* needs at least 60 s .*record at least 62 s"
    with pytest.raises(CalibrationDataError, match=needed):
        run_calibration(profile_path, session_file=source, config=CalibrationConfig(show_progress=False))
    code = main(["calibrate", "--profile", str(profile_path), "--from", str(source), "--min-seconds", "90"])
    assert code == 2  # a user error: one message, no traceback
    assert not (tmp_path / "models").exists() and not (rtbci_home / "models").exists()


def test_a_profile_without_a_model_is_refused(tmp_path, blocks):
    profile_path = tmp_path / "rig.toml"
    profile_path.write_text(profile_text_with_model("nomodel", None, None))
    with pytest.raises(CalibrationError, match=r"no \[model\] section"):
        run_calibration(profile_path, session_file=blocks["block_file"])


def test_a_record_shorter_than_the_minimum_is_refused_before_recording(tmp_path, blocks):
    profile_path = blocks["previous"].write_profile(tmp_path / "rig.toml")
    # 60 s of recording leaves less than the 60 s of aligned bins calibration needs: refused up front.
    for seconds in (30.0, 60.0):
        refused = rf"a {seconds:g} s recording is too short.* at least 62 s"
        with pytest.raises(CalibrationDataError, match=refused):
            run_calibration(profile_path, record_seconds=seconds, record_path=tmp_path / "rec.h5")
    assert not (tmp_path / "rec.h5").exists()


def test_stage_a_switches_off_a_channel_that_died_since_training(blocks, tmp_path):
    profile = load_profile(blocks["previous"].write_profile(tmp_path / "rig.toml"))
    previous = load_previous(profile)
    binned = featurize(blocks["block"], profile, progress=False)
    # Channel 17 reads at the amplifier floor: far below anything the decoder was trained on.
    normalization = previous.checkpoint.normalization
    mean, std = np.asarray(normalization["mean"]), np.asarray(normalization["std"])
    lfp = binned.lfp.copy()
    lfp[:, 17, :] = mean[17] - 10.0 * std[17]
    binned = dataclasses.replace(binned, lfp=lfp)
    window_bins = previous.checkpoint.encoder_config.window_bins
    split = split_calibration_block(len(binned), window_bins, CalibrationSplitConfig())

    encoder, known = previous.decoder().encoder, previous.checkpoint.session_ids
    checked = run_stage_a(encoder, known, binned, split, StageAConfig(), progress=False)
    assert 17 in checked.switched_off_channels
    live = checked.fitted.decoder.encoder.tokenizer.channel_live
    assert live[17] == 0 and int(live.sum()) == len(live) - len(checked.switched_off_channels)

    unchecked = run_stage_a(
        previous.decoder().encoder, known, binned, split, StageAConfig(channel_check_sd=None), progress=False
    )
    assert unchecked.switched_off_channels == []
    assert bool(unchecked.fitted.decoder.encoder.tokenizer.channel_live.all())


def test_stage_a_reads_again_a_channel_an_earlier_calibration_switched_off(blocks, tmp_path):
    profile = load_profile(blocks["previous"].write_profile(tmp_path / "rig.toml"))
    previous = load_previous(profile)
    state = dict(previous.checkpoint.state_dict)
    live = state["encoder.tokenizer.channel_live"].clone()
    live[5] = 0.0  # channel 5 reads normally in this block
    state["encoder.tokenizer.channel_live"] = live
    checkpoint = dataclasses.replace(previous.checkpoint, state_dict=state)
    earlier = dataclasses.replace(previous, checkpoint=checkpoint)
    binned = featurize(blocks["block"], profile, progress=False)
    window_bins = checkpoint.encoder_config.window_bins
    split = split_calibration_block(len(binned), window_bins, CalibrationSplitConfig())

    known = earlier.checkpoint.session_ids
    checked = run_stage_a(earlier.decoder().encoder, known, binned, split, StageAConfig(), progress=False)
    assert 5 not in checked.switched_off_channels
    assert checked.fitted.decoder.encoder.tokenizer.channel_live[5] == 1

    unchecked = run_stage_a(
        earlier.decoder().encoder, known, binned, split, StageAConfig(channel_check_sd=None), progress=False
    )
    assert unchecked.fitted.decoder.encoder.tokenizer.channel_live[5] == 0
