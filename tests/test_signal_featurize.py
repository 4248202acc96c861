"""featurize(): a whole Session through the streaming featurizers, aligned with kinematics."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from rtbci.io.session import Session, SessionMeta, Stream, StreamKind
from rtbci.profile import Profile, profile_from_dict
from rtbci.signal import ChannelCountError, FeaturizeError, LfpFeaturizer, SpikeBinner, featurize

BEHAVIOR_LABELS = ["pos_x", "pos_y", "vel_x", "vel_y", "target_x", "target_y"]


def make_profile(n_channels: int) -> Profile:
    data = {
        "rig": {"name": "test", "subject": "T"},
        "streams": {
            "spikes": {"name": "s", "channels": n_channels, "rate": 1000.0},
            "lfp": {"name": "l", "channels": n_channels, "rate": 1000.0},
            "output": {"name": "o", "channels": 2, "rate": 50.0},
        },
    }
    return profile_from_dict(data, Path("test.toml"))


def make_session(n_channels: int = 8, seconds: float = 3.0, t0: float = 100.0, seed: int = 0) -> Session:
    """A small contract-shaped session: spikes, LFP and behavior at 1 kHz on one clock."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 1000)
    times = t0 + np.arange(n) / 1000.0
    spikes = rng.poisson(0.05, (n, n_channels)).astype(np.uint8)
    lfp = (20 * rng.standard_normal((n, n_channels)) + 50 * np.sin(2 * np.pi * 20 * times)[:, None]).astype(
        np.float32
    )
    phase = 2 * np.pi * 0.5 * (times - t0)
    behavior = np.stack(
        [np.sin(phase), np.cos(phase), np.cos(phase), -np.sin(phase), np.ones(n), np.zeros(n)], axis=1
    )
    labels = [f"elec{i:03d}" for i in range(n_channels)]
    session = Session(SessionMeta(subject="T", session_id="T-d01"))
    session.add(Stream("spikes", StreamKind.SPIKES, spikes, times, 1000.0, labels, "count"))
    session.add(Stream("lfp", StreamKind.LFP, lfp, times, 1000.0, labels, "uV"))
    session.add(Stream("behavior", StreamKind.KINEMATICS, behavior, times, 1000.0, BEHAVIOR_LABELS, "m, m/s"))
    return session


def test_featurize_aligns_bins_and_kinematics():
    session = make_session()
    profile = make_profile(8)
    binned = featurize(session, profile, lag_ms=100.0, progress=False)
    spikes = session.streams["spikes"]
    # 150 bins of 20 ms from the first sample; a bin keeps its row only if end + 100 ms is at or
    # before the last behavior sample (t0 + 2.999 s), which drops the last 6.
    assert len(binned) == 144
    assert binned.spikes.shape == (144, 8) and binned.spikes.dtype == np.float32
    assert binned.lfp.shape == (144, 8, 5) and binned.lfp.dtype == np.float32
    assert binned.feature_names == ["lmp", "8-15Hz", "15-30Hz", "30-80Hz", "80-200Hz"]
    expected_counts = spikes.data[: 144 * 20].reshape(144, 20, 8).sum(axis=1)
    np.testing.assert_array_equal(binned.spikes, expected_counts)
    # Edges lie midway between samples (rtbci.signal.grid): each bin ends half a period after its last sample.
    np.testing.assert_allclose(binned.bin_ends, 100.0 - 0.0005 + 0.02 * np.arange(1, 145), atol=1e-9)
    behavior = session.streams["behavior"]
    expected_vel = np.interp(binned.bin_ends + 0.1, behavior.timestamps, behavior.data[:, 2])
    np.testing.assert_allclose(binned.kinematics[:, 0], expected_vel, atol=1e-6)
    assert binned.kinematics_names == ["vel_x", "vel_y"]
    assert binned.session_id == "T-d01" and binned.subject == "T"
    assert np.isfinite(binned.lfp).all()


def test_featurize_equals_streaming_objects_pushed_in_chunks():
    """Offline features equal what the online objects give on 10-sample chunks (rule 1)."""
    session = make_session()
    profile = make_profile(8)
    binned = featurize(session, profile, lag_ms=0.0, progress=False)
    epoch = session.streams["spikes"].timestamps[0]
    lfp = LfpFeaturizer(8, 1000.0, 0.02, profile.features, epoch)
    spikes = SpikeBinner(8, 1000.0, 0.02, epoch)
    lfp_bins, spike_bins = [], []
    stream_l, stream_s = session.streams["lfp"], session.streams["spikes"]
    for start in range(0, stream_l.n_samples, 10):
        lfp_bins.append(lfp.push(stream_l.data[start : start + 10], stream_l.timestamps[start : start + 10]))
        spike_bins.append(
            spikes.push(stream_s.data[start : start + 10], stream_s.timestamps[start : start + 10])
        )
    online_lfp = np.concatenate([b.values for b in lfp_bins])
    online_spikes = np.concatenate([b.values for b in spike_bins])
    T = len(binned)
    np.testing.assert_array_equal(binned.lfp, online_lfp[:T])
    np.testing.assert_array_equal(binned.spikes, online_spikes[:T])


def test_featurize_names_stream_on_channel_mismatch():
    with pytest.raises(ChannelCountError, match=r"stream 'spikes': expected 16 channels, received 8"):
        featurize(make_session(), make_profile(16), progress=False)


def test_featurize_without_kinematics_channel_is_clear():
    session = make_session()
    profile = make_profile(8)
    bad = profile_from_dict(
        {
            "rig": {"name": "test", "subject": "T"},
            "streams": {
                "spikes": {"name": "s", "channels": 8, "rate": 1000.0},
                "lfp": {"name": "l", "channels": 8, "rate": 1000.0},
                "output": {"name": "o", "channels": 2, "rate": 50.0},
            },
            "output": {"kinematics": ["vel_z"]},
        },
        Path("test.toml"),
    )
    with pytest.raises(FeaturizeError, match=r"no channel 'vel_z'"):
        featurize(session, bad, progress=False)
    behavior = session.streams["behavior"]
    session.streams["behavior"] = Stream(
        "behavior", StreamKind.KINEMATICS, behavior.data[:0], behavior.timestamps[:0], 1000.0, BEHAVIOR_LABELS
    )
    with pytest.raises(FeaturizeError, match="stream 'behavior' has no samples"):
        featurize(session, profile, progress=False)
    del session.streams["behavior"]
    with pytest.raises(FeaturizeError, match="no kinematics stream"):
        featurize(session, profile, progress=False)


def test_featurize_spikes_only_session():
    session = make_session()
    del session.streams["lfp"]
    binned = featurize(session, make_profile(8), progress=False)
    assert binned.spikes.shape == (144, 8)
    assert binned.lfp.shape == (144, 0, 0) and binned.feature_names == []


def test_simulated_session_replayed_in_its_recorded_chunks_matches_featurize():
    """A simulator session: featurize() equals the live objects fed the session's own LSL chunking."""
    from rtbci.profile import load_profile
    from rtbci.sim import SimConfig, simulate_session

    profile = load_profile(Path(__file__).resolve().parents[1] / "profiles" / "demo.toml")
    session = simulate_session(SimConfig(), subject=0, session=0, minutes=0.1, seed=3)
    binned = featurize(session, profile, progress=False)
    assert binned.spikes.shape[1] == binned.lfp.shape[1] == 96
    assert binned.kinematics_names == ["vel_x", "vel_y"] and np.isfinite(binned.lfp).all()
    assert len(binned) == 300 - 6  # 6 s of 20 ms bins, less those whose end + 100 ms is past the data
    epoch = session.streams["lfp"].timestamps[0]
    lfp = LfpFeaturizer(96, 1000.0, profile.bin_s, profile.features, epoch)
    stream = session.streams["lfp"]
    assert stream.chunk_sizes is not None
    bounds = np.concatenate([[0], np.cumsum(stream.chunk_sizes)])
    live = [lfp.push(stream.data[a:b], stream.timestamps[a:b]) for a, b in itertools.pairwise(bounds)]
    live_values = np.concatenate([bins.values for bins in live if len(bins)])
    np.testing.assert_array_equal(live_values[: len(binned)], binned.lfp)


def test_featurize_uses_the_epoch_the_engine_recorded():
    """A recording that carries the engine's bin grid is binned on that grid, not on its first sample."""
    session = make_session()
    profile = make_profile(8)
    on_first_sample = featurize(session, profile, lag_ms=0.0, progress=False)
    session.meta.bin_epoch = -0.0005 + 0.01  # the engine's grid, half a bin later
    on_recorded_grid = featurize(session, profile, lag_ms=0.0, progress=False)
    np.testing.assert_allclose(
        on_recorded_grid.bin_ends - on_first_sample.bin_ends[: len(on_recorded_grid)], 0.01
    )
    expected = session.streams["spikes"].data[10 : 10 + 20 * 3].reshape(3, 20, 8).sum(axis=1)
    np.testing.assert_array_equal(on_recorded_grid.spikes[:3], expected)
