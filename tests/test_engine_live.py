"""The engine over real LSL on loopback: a simulated session replayed in, decoded, pushed, recorded."""

from __future__ import annotations

import numpy as np
import pytest
from engine_fixtures import (
    OnnxLinearBackend,
    ThreadedReplay,
    simulated_session,
    unique_profile,
    wait_for,
)

from rtbci.engine import Engine, EngineOptions
from rtbci.engine.recorder import TIMING_CHANNELS
from rtbci.engine.status import format_status
from rtbci.io.store import read_session
from rtbci.latency.summary import bin_accounting
from rtbci.lsl import require_pylsl
from rtbci.lsl.resolve import StreamMismatchError, StreamMissingError
from rtbci.replay import ReplayOptions


@pytest.fixture(scope="module")
def session():
    return simulated_session(12.0)


@pytest.mark.slow
def test_engine_decodes_pushes_and_records_every_bin(tmp_path, session):
    pylsl = require_pylsl()
    profile = unique_profile(tmp_path)
    replay = ThreadedReplay(session, profile, ReplayOptions(speed=1.0, progress=False)).start()
    backend = OnnxLinearBackend((96, 5))
    recording = tmp_path / "live.h5"
    engine = Engine(profile, backend, "lfp", EngineOptions(record=recording, warmup_steps=5))
    try:
        engine.start()
        outlet_info = pylsl.resolve_byprop("source_id", profile.streams.output.source_id, timeout=5.0)[0]
        listener = pylsl.StreamInlet(outlet_info, max_buflen=10)
        listener.open_stream(5.0)
        assert wait_for(lambda: engine.snapshot()["bins"] >= 150, timeout=30.0)
        status = format_status(engine.snapshot(), engine.recent())
        pushed, pushed_times = listener.pull_chunk(timeout=1.0, max_samples=1000, as_numpy=True)
        # Keep the StreamInfo referenced: its XML elements point into it (a temporary's are
        # freed with it, and reading them then crashed the test run once).
        outlet_description = listener.info(timeout=5.0)
        description = outlet_description.desc().child("channels").first_child()
    finally:
        report = engine.stop()
        replay.close()
    assert report["errors"] == [] and report["recorder"]["error"] is None
    assert status.startswith("bins ") and "spikes:connected" in status and "lfp:connected" in status
    # The outlet names its channels and units; its samples are stamped with bin ends.
    assert description.child_value("label") == "vel_x" and description.child_value("unit") == "m/s"
    assert len(pushed_times) > 50
    assert pushed.shape == (len(pushed_times), 4) and np.all(np.isfinite(pushed))
    bin_phase = (pushed_times - engine.epoch) / profile.bin_s
    np.testing.assert_allclose(bin_phase, np.round(bin_phase), atol=1e-6)

    recorded = read_session(recording)
    timing = recorded.streams["timing"]
    columns = {name: timing.data[:, i] for i, name in enumerate(TIMING_CHANNELS)}
    assert bin_accounting(columns["index"].astype(np.int64)) == {"dropped": 0, "duplicated": 0}
    assert np.all(np.diff(columns["seq"]) == 1)
    # BRAND-style trace: every bin's timestamps are in causal order.
    order = np.stack([columns[name] for name in TIMING_CHANNELS[2:7]])
    assert np.all(np.diff(order, axis=0) >= 0)
    # Raw chunks are kept as received; features and outputs are recorded per bin.
    assert recorded.streams["lfp"].n_samples > 1000 and recorded.streams["lfp"].chunk_sizes is not None
    features = recorded.streams["features"].data.reshape(-1, 96, 5)
    decoded = recorded.streams["decoded"].data
    assert decoded.shape[0] == features.shape[0] == timing.n_samples
    # What was pushed is the backend's linear readout of the recorded features, post-processed.
    raw = features.reshape(len(features), -1) @ backend.weights
    smoothed = np.zeros(2)
    alpha = 1.0 - np.exp(-profile.bin_s / (profile.output.smoothing_ms / 1000.0))
    expected = []
    for row in raw:
        smoothed = smoothed + alpha * (np.clip(row * profile.output.gain, -0.5, 0.5) - smoothed)
        expected.append(smoothed)
    np.testing.assert_allclose(decoded[:, :2], np.array(expected), atol=1e-4)


@pytest.mark.slow
def test_missing_stream_names_what_is_visible(tmp_path, session):
    profile = unique_profile(tmp_path, resolve_timeout_s=1.0)
    engine = Engine(profile, OnnxLinearBackend((96, 5)), "lfp")
    with pytest.raises(StreamMissingError) as error:
        engine.start()
    message = str(error.value)
    assert "spikes" in message and profile.streams.spikes.name in message
    assert "Visible streams" in message


@pytest.mark.slow
def test_wrong_channel_count_at_connect_is_a_clear_error(tmp_path, session):
    profile = unique_profile(tmp_path, resolve_timeout_s=3.0)
    narrow = simulated_session(2.0)
    for stream in narrow.streams.values():
        if stream.kind in ("spikes", "lfp"):
            stream.data = stream.data[:, :64]
            stream.channel_labels = stream.channel_labels[:64]
    replay = ThreadedReplay(narrow, profile, ReplayOptions(speed=1.0, loop=True, progress=False)).start()
    try:
        with pytest.raises(StreamMismatchError) as error:
            Engine(profile, OnnxLinearBackend((96, 5)), "lfp").start()
    finally:
        replay.close()
    message = str(error.value)
    assert profile.streams.spikes.name in message
    assert "64 channels, the profile expects 96" in message


@pytest.mark.slow
def test_pulling_a_chunk_allocates_no_buffers(tmp_path):
    import tracemalloc
    import uuid

    from rtbci.lsl.inlet import LslInput
    from rtbci.profile import StreamSpec

    pylsl = require_pylsl()
    name = f"alloc-{uuid.uuid4().hex[:8]}"
    outlet = pylsl.StreamOutlet(pylsl.StreamInfo(name, "LFP", 96, 1000.0, "float32", f"{name}-src"))
    info = pylsl.resolve_byprop("name", name, timeout=10.0)[0]
    source = LslInput(StreamSpec(channels=96, rate=1000.0, name=name), "lfp", info, max_buflen_s=10)
    chunk = np.arange(960, dtype=np.float32).reshape(10, 96)
    for _ in range(200):
        outlet.push_chunk(chunk)
    assert wait_for(lambda: source.inlet.samples_available() >= 2000)
    source._all_samples.value, source._all_values.value = 10, 960  # one chunk per pull
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    pulled = [source.pull(0.0) for _ in range(150)]
    peak = tracemalloc.get_traced_memory()[1] - before
    tracemalloc.stop()
    assert pulled == [10] * 150
    np.testing.assert_array_equal(source.data[:10], chunk)
    # pylsl's own pull allocates a timestamp array (and a result) per call; this path allocates
    # no buffer at all: what tracemalloc sees is the list of results above.
    assert peak < 4096
