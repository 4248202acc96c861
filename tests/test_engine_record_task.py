"""The engine's recording takes the cursor task's streams and the behavior stream when they are there.

Real LSL on loopback: a replayed simulated session (spikes, LFP, behavior) or a synthetic rig feeds
the engine, and plain pylsl outlets under the task's identities stand in for ``rtbci task``.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from engine_fixtures import (
    OnnxLinearBackend,
    SyntheticRig,
    ThreadedReplay,
    simulated_session,
    unique_profile,
    wait_for,
)

from rtbci.engine import Engine, EngineOptions
from rtbci.io.session import StreamKind
from rtbci.io.store import read_session
from rtbci.lsl import require_pylsl
from rtbci.lsl.info import make_marker_info, make_stream_info
from rtbci.replay import ReplayOptions
from rtbci.signal import FeaturizeError, featurize
from rtbci.task.publisher import task_markers_spec, task_stream_spec
from rtbci.task.stream import TASK_CHANNELS


def _task_outlet(profile):
    spec = task_stream_spec(profile)
    info = make_stream_info(
        spec.name, spec.type, spec.source_id, TASK_CHANNELS, ["m"] * len(TASK_CHANNELS), spec.rate, "float32"
    )
    return require_pylsl().StreamOutlet(info)


def _marker_outlet(profile):
    spec = task_markers_spec(profile)
    return require_pylsl().StreamOutlet(make_marker_info(spec.name, spec.source_id))


@pytest.mark.slow
def test_a_task_started_after_the_engine_is_recorded_with_its_stamps_and_markers(tmp_path):
    pylsl = require_pylsl()
    profile = unique_profile(tmp_path)
    replay = ThreadedReplay(
        simulated_session(12.0), profile, ReplayOptions(speed=1.0, progress=False)
    ).start()
    markers = _marker_outlet(profile)  # the markers are up before the engine, the task stream after
    recording = tmp_path / "live.h5"
    engine = Engine(
        profile, OnnxLinearBackend((96, 5)), "lfp", EngineOptions(record=recording, warmup_steps=5)
    )
    rows = np.arange(60 * len(TASK_CHANNELS), dtype=np.float32).reshape(60, -1)
    try:
        engine.start()
        assert wait_for(lambda: engine.snapshot()["bins"] >= 25, timeout=30.0)
        task = _task_outlet(profile)
        assert wait_for(lambda: task.have_consumers(), timeout=10.0), "the recorder found the task stream"
        assert wait_for(lambda: markers.have_consumers(), timeout=10.0)
        start = pylsl.local_clock()
        stamps = start + profile.bin_s * np.arange(60)
        for first in range(0, 60, 10):  # ten rows a chunk, like a decoder's bins arriving in bursts
            task.push_chunk(rows[first : first + 10], stamps[first : first + 10].tolist())
            time.sleep(0.05)
        markers.push_sample(["target_on trial=1"], float(stamps[3]))
        markers.push_sample(["enter trial=1"], float(stamps[40]))
        assert wait_for(lambda: engine.snapshot()["recorder"]["bins_written"] > 100, timeout=30.0)
        time.sleep(0.5)  # a recorder drain (every 0.1 s) after the last push
    finally:
        report = engine.stop()
        replay.close()
    assert report["errors"] == [] and report["recorder"]["error"] is None

    recorded = read_session(recording)
    stream = recorded.streams["task"]
    assert stream.kind == StreamKind.TASK and stream.channel_labels == list(TASK_CHANNELS)
    assert stream.rate == pytest.approx(1.0 / profile.bin_s)
    np.testing.assert_array_equal(stream.data, rows)
    # Clock sync on loopback moves the stamps by at most microseconds.
    np.testing.assert_allclose(stream.timestamps, stamps, atol=1e-3)
    events = recorded.streams["task_markers"]
    assert events.kind == StreamKind.MARKERS
    assert events.data[:, 0].tolist() == ["target_on trial=1", "enter trial=1"]
    np.testing.assert_allclose(events.timestamps, stamps[[3, 40]], atol=1e-3)
    # The replay's behavior stream was there as the recording began: recorded with its own labels.
    behavior = recorded.streams["behavior"]
    assert behavior.kind == StreamKind.KINEMATICS and {"vel_x", "vel_y"} <= set(behavior.channel_labels)
    assert behavior.n_samples > 1000
    assert recorded.streams["decoded"].n_samples > 100


@pytest.mark.slow
def test_without_a_task_the_recording_has_empty_task_streams_and_says_what_it_lacked(tmp_path):
    profile = unique_profile(tmp_path)  # it names a behavior stream, and nothing sends one
    rig = SyntheticRig(profile).start()
    recording = tmp_path / "no-task.h5"
    engine = Engine(
        profile, OnnxLinearBackend((96, 5)), "lfp", EngineOptions(record=recording, warmup_steps=5)
    )
    try:
        engine.start()
        assert wait_for(lambda: engine.snapshot()["recorder"]["bins_written"] >= 50, timeout=30.0)
    finally:
        report = engine.stop()
        rig.close()
    assert report["errors"] == [] and report["recorder"]["error"] is None
    recorded = read_session(recording)
    assert recorded.streams["task"].n_samples == 0 and recorded.streams["task_markers"].n_samples == 0
    assert "behavior" not in recorded.streams
    notes = recorded.streams["events"].data[:, 0].tolist()
    assert any("behavior stream" in note and "not recorded" in note for note in notes), notes
    with pytest.raises(FeaturizeError, match="labels 'cue' come from a recorded cursor task stream"):
        featurize(recorded, profile, labels="cue", progress=False)
