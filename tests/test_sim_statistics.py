"""Simulator statistics: firing rates, decodability of spikes vs LFP, and the LFP spectrum."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal
from sim_decoding import FS, lfp_features, ridge_heldout_r2, spike_features, velocity_bins

from rtbci.sim import SimConfig, simulate_session
from rtbci.sim.config import sim_preset
from rtbci.sim.rig import RigSimulator
from rtbci.sim.spiking import crossings_per_electrode


@pytest.fixture(scope="module")
def session():
    return simulate_session(SimConfig(), subject=0, session=0, minutes=6.0, seed=11)


def test_unit_baselines_and_electrode_rates_in_range(session) -> None:
    simulator = RigSimulator(SimConfig(), 0, 0, 11)
    units = simulator.rig.units
    assert 96 <= units.n_units <= 192
    assert units.baseline_hz.min() >= 2.0 and units.baseline_hz.max() <= 40.0
    spikes = session.streams["spikes"].data
    alive = ~simulator.rig.dead & (simulator.rig.noisy_crossings_hz == 0)
    rates = spikes[:, alive].mean(axis=0) * FS
    # Threshold crossings per electrode: 0-4 units plus hash.
    assert 0.3 < rates.min() and rates.max() < 150.0
    assert 5.0 < np.median(rates) < 60.0
    assert spikes[:, simulator.rig.dead].sum() == 0


def test_refractory_period_holds_at_high_rates() -> None:
    rng = np.random.default_rng(0)
    n = 20_000
    rates = np.full((n, 1), 400.0, dtype=np.float32)
    since = np.zeros(1, dtype=np.int64)
    counts = crossings_per_electrode(
        rates, rng.random((n, 1), dtype=np.float32), np.zeros(1, dtype=np.int64), 1, 1e-3, 2, since
    )
    times = np.flatnonzero(counts[:, 0])
    assert np.diff(times).min() > 2
    # Poisson-driven, but capped by refractoriness below the 400 Hz drive.
    assert 100 < len(times) / (n / FS) < 400


def test_spike_counts_decode_velocity_in_realistic_range(session) -> None:
    r2 = ridge_heldout_r2(spike_features(session), velocity_bins(session), penalties=(1e2,))
    assert 0.5 <= r2 <= 0.8, r2


def test_lfp_decodes_velocity_clearly_worse_than_spikes_but_not_nothing(session) -> None:
    velocity = velocity_bins(session)
    spike_r2 = ridge_heldout_r2(spike_features(session), velocity, penalties=(1e2,))
    lfp = session.streams["lfp"].data.astype(np.float64)
    # The LFP decoder gets the better of several penalties: the gap must not come from its tuning.
    lfp_r2 = ridge_heldout_r2(lfp_features(lfp), velocity, penalties=(1e2, 1e3, 1e4))
    assert lfp_r2 < spike_r2 - 0.15, (lfp_r2, spike_r2)
    assert lfp_r2 > 0.05, lfp_r2


def _high_band_slope(freqs: np.ndarray, power: np.ndarray) -> float:
    """Log-log slope of the spectrum over 35-110 Hz, line noise left out."""
    fit = ((freqs >= 35) & (freqs <= 55)) | ((freqs >= 65) & (freqs <= 110))
    return float(np.polyfit(np.log10(freqs[fit]), np.log10(power[fit]), 1)[0])


def _band_log_power(freqs: np.ndarray, power: np.ndarray, low: float, high: float) -> tuple[float, float]:
    band = (freqs >= low) & (freqs <= high)
    return float(np.log10(freqs[band]).mean()), float(np.log10(power[band]).mean())


def test_lfp_spectrum_has_steep_aperiodic_slope_and_beta_peak(session) -> None:
    # Until issue 31 this pinned a slope of -0.8 to -2.3 over 2-110 Hz: the simulated
    # LFP then fell as 1/f^1.4. Real field potentials fall far faster above 30 Hz
    # (rat CA1 -2.8, human M1 ECoG -4.2 in ../shared/data/real; intracortical LFP
    # about 1/f^2-3), and the default background now has a knee, so the slope is
    # checked above 35 Hz only (the specparam fit is in test_sim_realism.py).
    simulator = RigSimulator(SimConfig(), 0, 0, 11)
    clean = ~simulator.rig.dead & (simulator.rig.noisy_lfp_uv == 0)
    lfp = session.streams["lfp"].data[:, clean].astype(np.float64)
    freqs, power = signal.welch(lfp, fs=FS, nperseg=2048, axis=0)
    power = power.mean(axis=1)
    slope = _high_band_slope(freqs, power)
    assert -4.0 < slope < -2.0, slope
    # Beta stands above the straight line (log-log) between its flanks.
    beta_hz = simulator.rig.subject.beta_hz
    below = _band_log_power(freqs, power, beta_hz - 9, beta_hz - 6)
    above = _band_log_power(freqs, power, beta_hz + 7, beta_hz + 10)
    peak = (freqs >= beta_hz - 1.5) & (freqs <= beta_hz + 1.5)
    line = np.interp(np.log10(freqs[peak]), [below[0], above[0]], [below[1], above[1]])
    above_background = 10 ** (np.log10(power[peak]) - line)
    assert above_background.mean() > 1.3, above_background.mean()
    # Line noise is there but small: the real field potentials here show no
    # mains peak at all, so issue 31 cut it from 1-8 µV to 0.3-2 µV per channel.
    mains = np.argmin(np.abs(freqs - 60.0))
    assert power[mains - 5] < power[mains] < 3 * power[mains - 5], power[mains] / power[mains - 5]


def test_v1_preset_keeps_the_old_flat_spectrum() -> None:
    # sim_preset("v1") reproduces the simulator before issue 31 (1/f^1.4-1.9, no knee).
    v1 = simulate_session(sim_preset("v1"), subject=0, session=0, minutes=1.0, seed=11)
    simulator = RigSimulator(sim_preset("v1"), 0, 0, 11)
    clean = ~simulator.rig.dead & (simulator.rig.noisy_lfp_uv == 0)
    freqs, power = signal.welch(
        v1.streams["lfp"].data[:, clean].astype(np.float64), fs=FS, nperseg=2048, axis=0
    )
    assert -2.3 < _high_band_slope(freqs, power.mean(axis=1)) < -0.8


def test_beta_power_drops_during_movement(session) -> None:
    simulator = RigSimulator(SimConfig(), 0, 0, 11)
    clean = ~simulator.rig.dead & (simulator.rig.noisy_lfp_uv == 0)
    lfp = session.streams["lfp"].data[:, clean].astype(np.float64)
    beta = signal.sosfiltfilt(signal.butter(3, [15, 30], btype="bandpass", fs=FS, output="sos"), lfp, axis=0)
    power = (beta**2).mean(axis=1)
    speed = np.linalg.norm(session.streams["behavior"].data[:, 2:4], axis=1)
    # The middle of reaches vs holds at least 300 ms away from any fast movement.
    moving = speed > 0.15
    near_movement = np.convolve(moving.astype(float), np.ones(601), mode="same") > 0
    still = (speed < 0.02) & ~near_movement
    assert moving.sum() > 10_000 and still.sum() > 5_000
    assert power[moving].mean() < 0.7 * power[still].mean(), (power[moving].mean(), power[still].mean())


def test_threshold_crossings_respect_the_detector_dead_time(session) -> None:
    # A Blackrock detector captures a 1.6 ms waveform per crossing, so the real
    # recording has no electrode ISIs under 1.5 ms (rtbci bench realism); v1 had 4 %.
    spikes = session.streams["spikes"].data
    assert spikes.max() <= 1
    for channel in range(0, spikes.shape[1], 7):
        assert np.all(np.diff(np.flatnonzero(spikes[:, channel])) >= 2)
