"""``rtbci calibrate --record`` against the live simulated rig over real LSL on loopback."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from calibrate_fixtures import make_previous_model, profile_text_with_model, simulated_block, streaming_rig

import calibrate.pipeline
from calibrate import min_record_seconds
from calibrate.data import check_block, featurize_block, load_block
from calibrate.record import record_block
from rtbci.cli import main
from rtbci.io.store import read_session
from rtbci.profile import load_profile

pytestmark = pytest.mark.slow

SECONDS = 10.0


@pytest.fixture
def live_rig(tmp_path):
    """A profile with stream names of its own, and the simulated rig streaming them."""
    previous = make_previous_model(tmp_path / "previous", simulated_block(30.0, session=4))
    profile_path = previous.write_profile(tmp_path / "rig.toml")
    with streaming_rig(profile_path):
        yield profile_path


def test_record_saves_the_session_first_then_calibrates_it(
    live_rig, tmp_path, monkeypatch, capsys, rtbci_home
):
    recording = tmp_path / "recordings" / "block.h5"

    def failing_stage_a(*args, **kwargs):
        raise RuntimeError("fitting failed")

    # A failure after recording loses nothing: the Session file is complete and closed. (Patched in a
    # context of its own: monkeypatch.undo() would also undo the test's RTBCI_HOME.)
    arguments = ["calibrate", "--profile", str(live_rig), "--min-seconds", "8", "--force"]
    with monkeypatch.context() as patch, pytest.raises(RuntimeError, match="fitting failed"):
        patch.setattr(calibrate.pipeline, "run_stage_a", failing_stage_a)
        main([*arguments, "--record", str(SECONDS), "--save", str(recording)])
    session = read_session(recording)
    assert session.meta.subject == "sim-S0" and session.meta.session_id.startswith("sim-S0-cal-")
    assert "recovered" not in session.meta.provenance
    assert {name: stream.kind for name, stream in session.streams.items()} == {
        "spikes": "spikes",
        "lfp": "lfp",
        "behavior": "kinematics",
    }
    for stream in session.streams.values():
        assert stream.n_samples == pytest.approx(SECONDS * 1000, rel=0.1)
        assert stream.duration == pytest.approx(SECONDS, abs=1.0)
    assert session.streams["behavior"].channel_labels[2:4] == ["vel_x", "vel_y"]

    # The whole pipeline, recording included, through the CLI.
    second = tmp_path / "recordings" / "second.h5"
    report_path = tmp_path / "report.json"
    code = main([*arguments, "--record", str(SECONDS), "--save", str(second), "--json", str(report_path)])

    output = capsys.readouterr().out
    report = json.loads(report_path.read_text())
    assert code == 0
    assert f"recorded {second}" in output
    assert report["source"] == str(second)
    for role in ("spikes", "lfp", "behavior"):
        health = report["recording"][role]
        assert health["samples"] == pytest.approx(health["expected"], rel=0.1)
        assert health["gaps"] == 0 and health["state"] == "connected"
    assert load_profile(live_rig).model.sha256 == report["sha256"]
    assert Path(report["artifact"]).is_relative_to(rtbci_home)  # the test's own data directory


def test_a_live_recording_of_the_length_rules_minimum_holds_enough_bins(tmp_path):
    """The length rule against real LSL: a recording of exactly ``min_record_seconds`` from the
    streaming simulated rig leaves the aligned bins the pipeline's check asks for."""
    profile_path = tmp_path / "rig.toml"
    profile_path.write_text(profile_text_with_model(uuid.uuid4().hex[:10], None, None), encoding="utf-8")
    profile = load_profile(profile_path)
    min_seconds = 3.0
    seconds = min_record_seconds(min_seconds, profile)
    with streaming_rig(profile_path):
        recorded = record_block(profile, seconds, tmp_path / "block.h5", show_bar=False)
    block = load_block(recorded.path)
    check_block(block, profile, "lfp", min_seconds, "recording")
    binned = featurize_block(block, profile, min_seconds, "recording", progress=False)
    assert len(binned) * profile.bin_s >= min_seconds
