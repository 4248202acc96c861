"""``rtbci run`` and ``rtbci latency`` end to end, with a real exported decoder on ONNX Runtime."""

from __future__ import annotations

import json

import pytest
from engine_fixtures import ThreadedReplay, profile_file, simulated_session, small_artifact, wait_for

from rtbci.cli import main
from rtbci.io.store import read_session, write_session
from rtbci.profile import load_profile
from rtbci.provenance import describe_decoder
from rtbci.replay import ReplayOptions

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    return small_artifact(tmp_path_factory.mktemp("artifact"))


def test_run_prints_a_live_status_and_records(tmp_path, artifact, capsys):
    profile_path = profile_file(tmp_path, artifact)
    replay = ThreadedReplay(
        simulated_session(6.0), load_profile(profile_path), ReplayOptions(loop=True, progress=False)
    ).start()
    recording = tmp_path / "run.h5"
    try:
        code = main(["run", "--profile", str(profile_path), "--seconds", "3", "--record", str(recording)])
    finally:
        replay.close()
    assert code == 0
    captured = capsys.readouterr()
    status = captured.err
    assert "\rbins " in status and "processing p50" in status and "source p50" in status
    assert "lfp:connected" in status
    report = json.loads(captured.out)
    assert report["bins"] > 50 and report["errors"] == []
    # The first line and the last say which profile and which decoder ran (rtbci.provenance).
    decoder = describe_decoder(load_profile(profile_path))
    assert status.startswith(f"rtbci run: {decoder}\n")
    assert status.rstrip().endswith(f"rtbci run: stopped; {decoder}")
    assert report["decoder_description"] == decoder
    recorded = read_session(recording)
    assert recorded.streams["decoded"].n_samples == report["recorder"]["bins_written"] > 50
    assert recorded.meta.provenance["tool"] == "rtbci run"
    # The recording carries the bin grid the engine used, and an (empty here) event stream.
    assert recorded.meta.bin_epoch == report["epoch"] is not None
    assert recorded.streams["events"].kind == "markers"


def test_latency_writes_json_and_plot(tmp_path, artifact, capsys):
    profile_path = profile_file(tmp_path, artifact)
    session_file = tmp_path / "sim.h5"
    write_session(session_file, simulated_session(10.0))
    out, plot = tmp_path / "latency.json", tmp_path / "latency.png"
    arguments = ["latency", str(session_file), "--profile", str(profile_path), "--seconds", "5"]
    code = main([*arguments, "--json", str(out), "--plot", str(plot)])
    assert code == 0
    summary = json.loads(out.read_text())
    for key in ("bins", "processing", "source", "late", "overdue", "dropped", "duplicated", "decoder"):
        assert key in summary
    assert summary["bins"] > 100
    assert summary["dropped"] == 0 and summary["duplicated"] == 0
    processing, source = summary["processing"], summary["source"]
    assert 0 < processing["p50_ms"] <= processing["p99_ms"] <= processing["max_ms"]
    assert summary["decoder"]["p50_ms"] < processing["p50_ms"] < source["p50_ms"]
    assert plot.stat().st_size > 10_000
    # A short human summary is printed, not the JSON, after a line naming the profile and decoder.
    printed = capsys.readouterr().out.strip().splitlines()
    decoder = describe_decoder(load_profile(profile_path))
    assert printed[:2] == [f"rtbci latency: {decoder}", f"decoder: {decoder}"]
    assert summary["decoder_description"] == decoder
    assert len(printed) <= 15 and printed[2].startswith(f"{summary['bins']} bins decoded")
    assert any(line.startswith("processing (read->push)") for line in printed)
    assert any(line.startswith("source (stamp->push)") for line in printed)


def test_sigkill_loses_at_most_about_a_second_of_recording(tmp_path, artifact):
    import os
    import signal
    import subprocess
    import sys
    import time

    from rtbci.lsl import require_pylsl

    profile_path = profile_file(tmp_path, artifact)
    replay = ThreadedReplay(
        simulated_session(6.0), load_profile(profile_path), ReplayOptions(loop=True, progress=False)
    ).start()
    recording = tmp_path / "killed.h5"
    command = [
        sys.executable,
        "-m",
        "rtbci.cli",
        "run",
        "--profile",
        str(profile_path),
        "--record",
        str(recording),
    ]
    errors = tmp_path / "stderr.txt"
    with errors.open("wb") as sink:
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=sink)
    try:
        # Wait until the status line shows decoding, then let it record a few seconds.
        assert wait_for(lambda: b"\rbins " in errors.read_bytes() or child.poll() is not None, timeout=60.0)
        assert child.poll() is None, errors.read_text()
        time.sleep(4.0)
        killed_at = require_pylsl().local_clock()
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10.0)
    finally:
        replay.close()
    recorded = read_session(recording)
    assert "recovered" in recorded.meta.provenance
    decoded = recorded.streams["decoded"]
    assert decoded.n_samples > 150
    assert killed_at - decoded.timestamps[-1] < 1.6  # flushed at least once a second
    assert recorded.streams["lfp"].n_samples > 1000


def test_max_speed_replay_follows_the_engine_and_every_bin_is_decoded(tmp_path, artifact):
    from rtbci.latency.harness import LatencyRun, run_latency_test

    session_file = tmp_path / "sim.h5"
    write_session(session_file, simulated_session(10.0))
    run = LatencyRun(session_file, profile_file(tmp_path, artifact), 30.0, speed=None, seconds_are_media=True)
    summary, records = run_latency_test(run, progress=False)
    # The replay plays in real time until the engine serves, then as fast as the engine decodes:
    # from its first decoded bin to the end of the 30 s of data, every bin is decoded exactly once.
    assert summary["dropped"] == summary["duplicated"] == summary["gap_bins"] == 0
    assert summary["bins_undecoded_at_end"] == 0
    assert summary["bins"] == len(records) > 1000
    # A bin without input can only be a late one (under load, in the real-time start).
    assert summary["bins"] - summary["bins_with_input"] <= summary["late"]
    assert summary["replay"]["follow_waits"] > 0
    # Most of it ran ahead of real time: 30 s of data were decoded in less wall time.
    assert records["t_push"][-1] - records["t_push"][0] < 30.0
