"""Calibration without a hand, end to end over real LSL: the simulated participant in closed loop,
the engine serving the bundled demo decoder, and ``rtbci calibrate --record S --labels cue``
running the cued task in-process while it records."""

from __future__ import annotations

import json
import threading
import tomllib
from pathlib import Path

import numpy as np
import pytest

from calibrate import min_record_seconds
from rtbci.cli import main
from rtbci.demo import private_copy, write_profile
from rtbci.engine import Engine
from rtbci.io.session import StreamKind
from rtbci.io.store import read_session
from rtbci.profile import load_profile
from rtbci.sim.closed_loop import ClosedLoopSource
from rtbci.task.stream import CUED_VELOCITY, STATE
from rtbci.task.trials import TrialState

PROFILES = Path(__file__).resolve().parents[1] / "profiles"
MIN_SECONDS = 20.0


@pytest.mark.slow
def test_a_cued_block_recorded_live_calibrates_the_demo_decoder(tmp_path, capsys):
    path = private_copy(PROFILES / "demo.toml", tmp_path)
    data = tomllib.loads(path.read_text())
    # A shared test machine may be slow: late bins would be decoded with stand-ins, not lost, but
    # a roomy deadline keeps the participant's neural data in every bin.
    data["engine"]["late_deadline_ms"] = 200.0
    profile_path = write_profile(data, path)
    profile = load_profile(profile_path)
    seconds = min_record_seconds(MIN_SECONDS, profile)
    recording, report_path = tmp_path / "cued.h5", tmp_path / "report.json"
    stop = threading.Event()
    done: dict = {}
    # Real time: the participant sees the task frames as they come, as a person would.
    source = ClosedLoopSource(profile, session=16)
    loop = threading.Thread(target=lambda: done.update(source=source.run(stop)), daemon=True)
    loop.start()
    engine = Engine.from_profile(profile)
    engine.start()
    try:
        code = main(
            [
                *("calibrate", "--profile", str(profile_path), "--record", f"{seconds:g}"),
                *("--labels", "cue", "--save", str(recording), "--min-seconds", f"{MIN_SECONDS:g}"),
                *("--json", str(report_path), "--force", "--out-profile", str(tmp_path / "calibrated.toml")),
            ]
        )
    finally:
        stop.set()
        loop.join(timeout=10.0)
        engine.stop()
    output = capsys.readouterr().out
    assert code == 0, output

    # The block holds the neural data and the task the calibration ran, not a hand.
    block = read_session(recording)
    assert {name: stream.kind for name, stream in block.streams.items()} == {
        "spikes": StreamKind.SPIKES,
        "lfp": StreamKind.LFP,
        "task": StreamKind.TASK,
        "task_markers": StreamKind.MARKERS,
    }
    task = block.streams["task"]
    assert task.n_samples == pytest.approx(seconds / profile.bin_s, rel=0.15), "one row per decoded bin"
    states = task.data[:, STATE].astype(int)
    reaching = states == TrialState.REACH
    # Assist 1: the cursor goes to every target by itself, at the assist speed while it reaches.
    speeds = np.hypot(*task.data[reaching][:, CUED_VELOCITY].T)
    assert np.median(speeds) == pytest.approx(profile.task.assist_speed, rel=1e-3)
    markers = [text.split()[0] for text in block.streams["task_markers"].data[:, 0]]
    assert markers.count("success") >= 8 and "timeout" not in markers
    assert block.meta.provenance["labels"] == "cue"

    report = json.loads(report_path.read_text())
    assert report["labels"] == "cue" and report["source"] == str(recording)
    assert np.isfinite(report["heldout_r2_mean"]) and report["heldout_seconds"] > 0.15 * MIN_SECONDS
    assert report["recording"]["task"]["gaps"] == 0 and report["recording"]["task"]["state"] == "connected"
    assert f"recorded {recording}" in output and "(labels: cue)" in output
