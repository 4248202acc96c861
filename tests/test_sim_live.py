"""The live simulated rig, read back by real pylsl inlets on loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import numpy as np
import pytest

from rtbci.profile import load_profile
from rtbci.sim import simulate_session
from rtbci.sim.live import LiveRigSource, SimProfileError, config_for_profile, markers_stream_name

pylsl = pytest.importorskip("pylsl")

DEMO_PROFILE = Path(__file__).resolve().parents[1] / "profiles" / "demo.toml"
SEED = 7


def _unique_profile(tmp_path: Path, **replacements: str) -> Path:
    """The demo profile with stream names that no other test or helper uses."""
    prefix = f"t{uuid.uuid4().hex[:10]}-sim-"
    text = DEMO_PROFILE.read_text(encoding="utf-8").replace("rtbci-sim-", prefix)
    for old, new in replacements.items():
        text = text.replace(old, new)
    path = tmp_path / "rig.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _resolve(name: str):
    found = pylsl.resolve_byprop("name", name, minimum=1, timeout=10.0)
    assert found, f"LSL stream {name!r} not found"
    return pylsl.StreamInlet(found[0], max_buflen=10, recover=False)


def _pull(inlet, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    rows, stamps = [], []
    received = 0
    for _ in range(2000):
        data, timestamps = inlet.pull_chunk(timeout=0.2)
        if timestamps:
            rows.append(np.asarray(data))
            stamps.extend(timestamps)
            received += len(timestamps)
        if received >= n_samples:
            break
    return np.concatenate(rows)[:n_samples], np.asarray(stamps)[:n_samples]


def _channel_labels(info) -> tuple[list[str], list[str]]:
    channel = info.desc().child("channels").child("channel")
    labels, units = [], []
    while not channel.empty():
        labels.append(channel.child_value("label"))
        units.append(channel.child_value("unit"))
        channel = channel.next_sibling()
    return labels, units


def test_live_source_serves_the_profile_streams(tmp_path) -> None:
    profile = load_profile(_unique_profile(tmp_path))
    source = LiveRigSource(profile, seed=SEED)
    stop = threading.Event()
    result = {}
    thread = threading.Thread(target=lambda: result.update(stats=source.run(stop)), daemon=True)
    thread.start()
    try:
        streams = profile.streams
        spikes_inlet = _resolve(streams.spikes.name)
        lfp_inlet = _resolve(streams.lfp.name)
        behavior_inlet = _resolve(streams.behavior.name)
        markers_inlet = _resolve(markers_stream_name(profile))

        info = spikes_inlet.info(timeout=5.0)
        assert info.type() == streams.spikes.type and info.source_id() == streams.spikes.source_id
        assert info.channel_count() == 96 and info.nominal_srate() == 1000.0
        labels, units = _channel_labels(info)
        assert labels[:2] == ["elec000", "elec001"] and len(labels) == 96 and set(units) == {"count"}
        behavior_labels, _ = _channel_labels(behavior_inlet.info(timeout=5.0))
        assert behavior_labels == ["pos_x", "pos_y", "vel_x", "vel_y", "target_x", "target_y"]
        assert lfp_inlet.info(timeout=5.0).channel_format() == pylsl.cf_float32

        spikes, stamps = _pull(spikes_inlet, 1500)
        lfp, _ = _pull(lfp_inlet, 500)
        behavior, _ = _pull(behavior_inlet, 500)
        markers, marker_stamps = [], []
        for _ in range(50):
            texts, times = markers_inlet.pull_chunk(timeout=0.2)
            markers += [t[0] for t in texts]
            marker_stamps += times
            if len(markers) >= 2:
                break
    finally:
        stop.set()
        thread.join(timeout=10.0)
    assert not thread.is_alive()
    assert result["stats"].chunks > 0

    # Regular 1 kHz timestamps on the LSL clock, close to now.
    assert np.allclose(np.diff(stamps), 1e-3, atol=1e-6)
    assert abs(pylsl.local_clock() - stamps[-1]) < 30.0
    assert spikes.shape == (1500, 96) and lfp.shape == (500, 96) and behavior.shape == (500, 6)
    assert set(markers) <= {"target_on", "go", "reach_end", "reward", "task:center_out", "task:random_target"}
    assert len(markers) >= 2

    # The live samples are the offline simulation of the same seed, bit for bit.
    offline = simulate_session(config_for_profile(profile), 0, 0, 0.5, SEED).streams["spikes"].data
    matches = [k for k in range(offline.shape[0] - 20) if np.array_equal(offline[k : k + 20], spikes[:20])]
    assert len(matches) == 1
    start = matches[0]
    assert np.array_equal(offline[start : start + len(spikes)], spikes)


def test_live_source_stops_after_the_requested_seconds(tmp_path) -> None:
    profile = load_profile(_unique_profile(tmp_path))
    stats = LiveRigSource(profile, seed=SEED).run(threading.Event(), seconds=0.5)
    assert stats.samples == 500 and stats.chunks == 50
    assert stats.seconds == pytest.approx(0.5)


def test_live_source_streams_from_a_later_minute_of_the_same_session(tmp_path) -> None:
    profile = load_profile(_unique_profile(tmp_path))
    source = LiveRigSource(profile, seed=SEED, from_minute=0.05)  # sample 3000 on
    result = {}
    thread = threading.Thread(
        # 3 s, so that the test's inlet is open before the source ends even on a loaded machine.
        target=lambda: result.update(stats=source.run(threading.Event(), seconds=3.0)),
        daemon=True,
    )
    thread.start()
    spikes, _ = _pull(_resolve(profile.streams.spikes.name), 300)
    thread.join(timeout=10.0)
    assert result["stats"].samples == 3000 and result["stats"].seconds == pytest.approx(3.0)
    # The samples are the session's own from sample 3000 on: simulated through, never sent before.
    offline = simulate_session(config_for_profile(profile), 0, 0, 0.1, SEED).streams["spikes"].data
    matches = [k for k in range(offline.shape[0] - 20) if np.array_equal(offline[k : k + 20], spikes[:20])]
    assert len(matches) == 1 and 3000 <= matches[0] <= 6000 - len(spikes)
    assert np.array_equal(offline[matches[0] : matches[0] + len(spikes)], spikes)
    with pytest.raises(SimProfileError, match="--from-minute must be >= 0"):
        LiveRigSource(profile, from_minute=-1.0)


def test_profiles_the_simulator_cannot_serve_give_clear_errors(tmp_path) -> None:
    wrong_channels = load_profile(_unique_profile(tmp_path, **{"channels = 96": "channels = 100"}))
    with pytest.raises(SimProfileError, match=r"streams\.spikes\.channels.*multiple of 96"):
        LiveRigSource(wrong_channels)
    wrong_subject = load_profile(_unique_profile(tmp_path, **{'subject = "sim-S0"': 'subject = "monkey-J"'}))
    with pytest.raises(SimProfileError, match=r"rig\.subject.*sim-S<k>"):
        LiveRigSource(wrong_subject)
    wrong_rate = load_profile(_unique_profile(tmp_path, **{"rate = 1000.0": "rate = 2000.0"}))
    with pytest.raises(SimProfileError, match=r"streams\.spikes\.rate"):
        LiveRigSource(wrong_rate)


@pytest.mark.slow
def test_cli_streams_until_sigterm_and_exits_cleanly(tmp_path) -> None:
    path = _unique_profile(tmp_path)
    profile = load_profile(path)
    process = subprocess.Popen(
        [sys.executable, "-m", "rtbci.cli", "simulate", "--lsl", "--profile", str(path), "--seed", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        inlet = _resolve(profile.streams.lfp.name)
        data, _ = _pull(inlet, 200)
        assert data.shape == (200, 96)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert profile.streams.spikes.name in stdout and markers_stream_name(profile) in stdout
    assert "stopped after" in stdout
