"""The engine in its own process, on the simulated rig over real LSL: records through shared memory,
status, the safety stop seen by a real inlet, recording on and off, clear start errors, clean exit,
and no decoder left running when its parent is killed."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import asdict

import psutil
import pylsl
import pytest
from app_fixtures import OutputReader, child_processes, random_artifact, write_unique_profile

from rtbci.engine.process import EngineProcess, EngineProcessError
from rtbci.io.store import read_session
from rtbci.profile import load_profile
from rtbci.sim.rig_process import SimulatedRig

pytestmark = pytest.mark.slow


def test_engine_process_serves_records_status_safety_stop_and_recording(tmp_path):
    before = child_processes()
    recording = tmp_path / "live.h5"
    profile_path = write_unique_profile(tmp_path, random_artifact())
    profile = load_profile(profile_path)
    engine = EngineProcess(profile_path)
    with SimulatedRig(profile):
        description = engine.start()
        try:
            assert description.output_labels == ["vel_x", "vel_y", "pos_x", "pos_y"]
            assert description.backend["backend"] == "onnxruntime"
            output = OutputReader(description.output_stream)
            moving = output.samples(25)
            assert (moving[:, :2] != 0).any(), "the random decoder should output some velocity"

            status = engine.status()
            assert {role: health["state"] for role, health in status["inputs"].items()} == {
                "spikes": "connected",
                "lfp": "connected",
            }
            records = engine.records.read_new()
            assert len(records) > 0
            assert (records["seq"] == records["seq"][0] + range(len(records))).all()  # in order, none lost
            assert (records["t_push"] >= records["t_decode_end"]).all()

            stop = engine.set_output_enabled(False, "test stop")
            held = output.samples(25)
            assert (held[:, :2] == 0).all(), "safety stop: velocity must be exactly zero"
            assert (held[:, 2:] == held[0, 2:]).all(), "safety stop: position must hold"
            assert not stop.enabled and stop.source == "test stop" and stop.bins > 0
            assert records["t_push"][-1] < stop.time < pylsl.local_clock(), "stamped on the LSL clock"
            assert engine.status()["output_events"] == [asdict(stop)]
            engine.set_output_enabled(True)
            assert (output.samples(25)[:, :2] != 0).any()
            time.sleep(0.5)  # the random decoder drifts the position away from zero
            asked = engine.reset_position("test reset")
            after = output.samples(25)[5:]  # a bin pushed before the reset may still be on its way
            steps = after[0, :2] * description.bin_ms / 1000.0
            assert abs(after[0, 2:]).max() <= 25 * abs(steps).max() + 1e-6, "the position restarts at zero"
            reset_events = [event for event in engine.status()["events"] if "position reset" in event]
            assert len(reset_events) == 1 and reset_events[0].endswith("position reset (test reset)")
            assert float(reset_events[0].split()[0]) >= asked - 1.0, "logged by the bin that applied it"
            output.close()

            engine.start_recording(recording)
            with pytest.raises(EngineProcessError, match="already running"):
                engine.start_recording(tmp_path / "second.h5")
            time.sleep(1.0)
            counters = engine.stop_recording()
            bins_when_stopped = engine.status()["bins"]
            time.sleep(0.5)
            assert engine.status()["bins"] > bins_when_stopped, "decoding goes on after the recording stops"
            assert engine.stop_recording() == {}, "nothing to stop the second time"
        finally:
            report = engine.stop()
    assert report["bins"] > 0
    assert [(event["enabled"], event["source"]) for event in report["output_events"]] == [
        (False, "test stop"),
        (True, ""),
    ]
    assert counters["bins_written"] >= 10 and counters["error"] is None
    session = read_session(recording)
    assert len(session.streams["decoded"].data) == counters["bins_written"]
    assert session.streams["lfp"].data.shape[1] == 96
    assert not psutil.pid_exists(description.pid)
    assert child_processes() == before


def test_missing_stream_is_a_clear_start_error(tmp_path):
    before = child_processes()
    profile_path = write_unique_profile(tmp_path, random_artifact(), resolve_timeout_s=0.5)
    engine = EngineProcess(profile_path)
    with pytest.raises(EngineProcessError) as error:
        engine.start()
    message = str(error.value)
    assert "no LSL stream for spikes" in message and "Traceback" not in message
    engine.stop()
    assert child_processes() == before


def test_artifact_hash_mismatch_is_a_clear_start_error(tmp_path):
    profile_path = write_unique_profile(tmp_path, random_artifact(), sha256="0" * 64)
    engine = EngineProcess(profile_path)
    with pytest.raises(EngineProcessError, match="expects 0000") as error:
        engine.start()
    assert "Traceback" not in str(error.value)
    engine.stop()


_ORPHAN_SCRIPT = """
import sys, time
from rtbci.engine.process import EngineProcess

if __name__ == "__main__":
    engine = EngineProcess(sys.argv[1])
    engine.launch()
    print(engine.process.pid, flush=True)
    time.sleep(600)
"""


def test_engine_process_ends_when_its_parent_is_killed(tmp_path):
    """A dashboard killed with SIGKILL must not leave a decoder running: the child sees its pipe close."""
    profile_path = write_unique_profile(tmp_path, random_artifact(), resolve_timeout_s=30.0)
    script = tmp_path / "parent.py"
    script.write_text(_ORPHAN_SCRIPT)
    parent = subprocess.Popen(
        [sys.executable, str(script), str(profile_path)], stdout=subprocess.PIPE, text=True
    )
    engine_pid = int(parent.stdout.readline())
    engine = psutil.Process(engine_pid)
    parent.kill()
    parent.wait()
    engine.wait(timeout=60)  # raises psutil.TimeoutExpired if it lingers
    assert not psutil.pid_exists(engine_pid)


def test_stopping_an_engine_that_is_still_starting_does_not_wait_for_it(tmp_path):
    before = child_processes()
    profile_path = write_unique_profile(tmp_path, random_artifact(), resolve_timeout_s=60.0)
    engine = EngineProcess(profile_path)
    engine.launch()
    process = engine.process
    time.sleep(1.0)
    assert engine.poll_started() is None  # still looking (for up to 60 s) for streams that do not exist
    assert engine.stop() == {}
    assert process.exitcode == -signal.SIGTERM, "terminated at once, not waited for"
    assert not psutil.pid_exists(process.pid)
    assert child_processes() == before
