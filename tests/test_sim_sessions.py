"""Simulated sessions: the file contract, determinism, and how sessions and subjects differ."""

from __future__ import annotations

import numpy as np
import pytest
from sim_decoding import fit_ridges, lagged, r2, spike_features, velocity_bins

from rtbci.io.session import StreamKind
from rtbci.io.store import read_session, write_session
from rtbci.sim import (
    PopulationConfig,
    SimConfig,
    build_session_rig,
    build_subject,
    derive_seed,
    simulate_session,
)

SEED = 5


@pytest.fixture(scope="module")
def short_session():
    return simulate_session(SimConfig(), subject=0, session=2, minutes=0.5, seed=SEED)


def test_session_matches_the_contract(short_session) -> None:
    session = short_session
    assert set(session.streams) == {"spikes", "lfp", "behavior", "markers"}
    assert session.meta.subject == "sim-S0"
    assert session.meta.session_id == "sim-S0-d02"
    assert session.meta.channel_regions == ["M1-array"] * 96
    assert session.meta.provenance["seed"] == str(SEED)
    assert session.meta.provenance["session_seed"] == str(derive_seed(SEED, 0, 2))

    spikes, lfp, behavior = (session.streams[name] for name in ("spikes", "lfp", "behavior"))
    assert spikes.kind == StreamKind.SPIKES and spikes.data.dtype == np.uint8 and spikes.units == "count"
    assert lfp.kind == StreamKind.LFP and lfp.data.dtype == np.float32 and lfp.units == "uV"
    assert behavior.kind == StreamKind.KINEMATICS and behavior.data.dtype == np.float32
    assert behavior.channel_labels == ["pos_x", "pos_y", "vel_x", "vel_y", "target_x", "target_y"]
    assert spikes.channel_labels[:2] == ["elec000", "elec001"] and len(spikes.channel_labels) == 96
    for stream in (spikes, lfp, behavior):
        assert stream.data.shape[0] == 30_000 and stream.rate == 1000.0
        assert np.array_equal(stream.timestamps, spikes.timestamps)  # one clock
        assert set(stream.chunk_sizes.tolist()) == {10}
    assert np.allclose(np.diff(spikes.timestamps), 1e-3)

    markers = session.streams["markers"]
    assert markers.kind == StreamKind.MARKERS and markers.rate == 0.0
    texts = set(markers.data[:, 0])
    assert {"target_on", "go", "reach_end", "reward"} <= texts
    assert np.all(np.diff(markers.timestamps) >= 0)
    assert markers.timestamps[0] >= spikes.timestamps[0] and markers.timestamps[-1] <= spikes.timestamps[-1]


def test_same_seed_gives_the_same_bits_and_other_seeds_do_not(short_session) -> None:
    again = simulate_session(SimConfig(), subject=0, session=2, minutes=0.5, seed=SEED)
    for name in ("spikes", "lfp", "behavior", "markers"):
        assert np.array_equal(again.streams[name].data, short_session.streams[name].data), name
    other = simulate_session(SimConfig(), subject=0, session=2, minutes=0.5, seed=SEED + 1)
    assert not np.array_equal(other.streams["spikes"].data, short_session.streams["spikes"].data)
    assert not np.array_equal(other.streams["behavior"].data, short_session.streams["behavior"].data)


def test_session_file_round_trip(tmp_path, short_session) -> None:
    path = tmp_path / "sim-S0-d02.h5"
    write_session(path, short_session)
    loaded = read_session(path)
    assert loaded.meta == short_session.meta
    for name, stream in short_session.streams.items():
        assert np.array_equal(loaded.streams[name].data, stream.data), name
        assert np.array_equal(loaded.streams[name].timestamps, stream.timestamps), name


def test_units_turn_over_and_drift_from_day_to_day() -> None:
    subject = build_subject(SimConfig(), SEED, 0)
    day0, day1, day20 = (build_session_rig(subject, d) for d in (0, 1, 20))
    kept_next_day = np.isin(day1.units.unit_ids, day0.units.unit_ids).mean()
    kept_after_20 = np.isin(day20.units.unit_ids, day0.units.unit_ids).mean()
    assert 0.8 < kept_next_day < 1.0  # some turnover, mostly the same neurons
    assert kept_after_20 < kept_next_day - 0.2

    def pd_change(later):
        same = day0.units.unit_ids == later.units.unit_ids
        cosine = np.sum(day0.units.preferred[same] * later.units.preferred[same], axis=1)
        return np.degrees(np.arccos(np.clip(cosine, -1, 1))).mean()

    assert 0.5 < pd_change(day1) < pd_change(day20)  # slow, growing drift of preferred directions
    same = day0.units.unit_ids == day1.units.unit_ids
    assert np.array_equal(day0.units.baseline_hz[same], day1.units.baseline_hz[same])
    assert not np.allclose(day0.lfp_gain, day20.lfp_gain)  # gain drift
    assert not np.allclose(day0.spike_gain, day1.spike_gain)
    assert np.all(day20.dead >= day0.dead)  # dead electrodes stay dead
    assert day20.dead.sum() >= day0.dead.sum()


def test_subjects_differ_entirely() -> None:
    first, second = build_subject(SimConfig(), SEED, 0), build_subject(SimConfig(), SEED, 1)
    assert first.seed != second.seed
    assert first.beta_hz != second.beta_hz
    assert not np.allclose(first.pd_map, second.pd_map)
    assert not np.array_equal(first.slot_electrode, second.slot_electrode)


def test_dead_and_noisy_channels_look_like_it() -> None:
    config = SimConfig()
    # Find a session with both a dead and a noisy channel.
    subject = build_subject(config, SEED, 0)
    day = next(
        d for d in range(40) if (rig := build_session_rig(subject, d)).dead.any() and rig.noisy_lfp_uv.any()
    )
    rig = build_session_rig(subject, day)
    session = simulate_session(config, 0, day, 0.25, SEED)
    spikes, lfp = session.streams["spikes"].data, session.streams["lfp"].data
    dead, noisy = np.flatnonzero(rig.dead), np.flatnonzero(rig.noisy_lfp_uv)
    clean = ~rig.dead & (rig.noisy_lfp_uv == 0)
    assert spikes[:, dead].sum() == 0
    assert lfp[:, dead].std(axis=0).max() < 0.2 * np.median(lfp[:, clean].std(axis=0))
    assert lfp[:, noisy].std(axis=0).min() > np.median(lfp[:, clean].std(axis=0))
    assert spikes[:, noisy].mean(axis=0).min() > np.median(spikes[:, clean].mean(axis=0))
    assert str(dead[0]) in session.meta.provenance["dead_channels"].split(",")


def test_two_arrays_double_the_channels() -> None:
    config = SimConfig(array_names=("M1", "PMd"))
    session = simulate_session(config, 0, 0, 0.05, SEED)
    assert session.streams["spikes"].data.shape[1] == 192
    assert session.meta.channel_regions == ["M1"] * 96 + ["PMd"] * 96
    rig = build_session_rig(build_subject(config, SEED, 0), 0)
    per_array = np.bincount(rig.units.electrode // 96, minlength=2)
    assert np.all((per_array >= 96) & (per_array <= 192))


def test_a_fixed_decoder_degrades_over_days() -> None:
    config = SimConfig()
    train = simulate_session(config, 0, 0, 3.0, SEED)
    later = {day: simulate_session(config, 0, day, 1.0, SEED) for day in (1, 20)}
    # Leave out channels that are dead or noisy on any of the days: this is about the neurons.
    bad = set()
    for session in (train, *later.values()):
        for key in ("dead_channels", "noisy_channels"):
            bad |= {int(c) for c in session.meta.provenance[key].split(",") if c}
    channels = np.array([c for c in range(96) if c not in bad])
    inputs, targets = lagged(spike_features(train, channels), velocity_bins(train))
    (decoder,) = fit_ridges(inputs, targets, (1e2,))
    scores = {}
    for day, session in later.items():
        inputs, targets = lagged(spike_features(session, channels), velocity_bins(session))
        scores[day] = r2(targets, decoder.predict(inputs))
    # Turnover and drift: fine the next day, much worse three weeks later.
    assert scores[1] > 0.4, scores
    assert scores[20] < scores[1] - 0.2, scores


def test_impossible_configs_are_refused_with_the_field_named() -> None:
    with pytest.raises(ValueError, match="array_names"):
        SimConfig(array_names=())
    with pytest.raises(ValueError, match="units_per_array"):
        SimConfig(population=PopulationConfig(units_per_array=(50, 10)))
    with pytest.raises(ValueError, match="minutes"):
        simulate_session(SimConfig(), 0, 0, 0.0, SEED)
