"""Simulator statistics: firing rates, decodability of spikes vs LFP, and the LFP spectrum.

The decoders and features are written here with numpy/scipy on purpose: they
check the simulator independently of rtbci.signal.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from rtbci.sim import SimConfig, simulate_session
from rtbci.sim.rig import RigSimulator
from rtbci.sim.spiking import crossings_per_electrode

FS = 1000
BIN = 20  # samples per 20 ms bin
LAG_BINS = 5  # neurons lead the hand by about 100 ms
HISTORY_BINS = 5
LFP_BANDS = [(8, 15), (15, 30), (30, 80), (80, 200)]


@pytest.fixture(scope="module")
def session():
    return simulate_session(SimConfig(), subject=0, session=0, minutes=6.0, seed=11)


def _bins(values: np.ndarray) -> np.ndarray:
    n = values.shape[0] // BIN
    return values[: n * BIN].reshape(n, BIN, *values.shape[1:])


def ridge_heldout_r2(features: np.ndarray, targets: np.ndarray, penalties: tuple[float, ...]) -> float:
    """Best over ``penalties`` of the mean held-out R² of a ridge decoder with history.

    Bin ``t``'s features and the ``HISTORY_BINS - 1`` before it predict the
    target ``LAG_BINS`` bins later. Fitted on the first 80 % of the bins,
    scored on the last 20 % (one contiguous block, never seen in fitting).
    """
    stacked = np.concatenate(
        [features[HISTORY_BINS - 1 - k : features.shape[0] - k] for k in range(HISTORY_BINS)], axis=1
    )
    targets = targets[HISTORY_BINS - 1 :]
    stacked, targets = stacked[:-LAG_BINS], targets[LAG_BINS:]
    split = int(0.8 * len(stacked))
    mean, sd = stacked[:split].mean(axis=0), stacked[:split].std(axis=0) + 1e-6
    design = np.hstack([(stacked - mean) / sd, np.ones((len(stacked), 1))])
    train, test = design[:split], design[split:]
    gram, cross = train.T @ train, train.T @ targets[:split]
    truth = targets[split:]
    scores = []
    for penalty in penalties:
        regulariser = penalty * np.eye(design.shape[1])
        regulariser[-1, -1] = 0.0  # the intercept is not shrunk
        weights = np.linalg.solve(gram + regulariser, cross)
        residual = ((truth - test @ weights) ** 2).sum(axis=0)
        scores.append(np.mean(1.0 - residual / ((truth - truth.mean(axis=0)) ** 2).sum(axis=0)))
    return float(max(scores))


def _velocity_bins(session) -> np.ndarray:
    return _bins(session.streams["behavior"].data[:, 2:4]).mean(axis=1)


def _lfp_features(lfp: np.ndarray) -> np.ndarray:
    """Causal features per 20 ms bin: 5 Hz low-passed value at bin end, log band powers."""
    lmp = signal.sosfilt(signal.butter(2, 5.0, fs=FS, output="sos"), lfp, axis=0)
    features = [_bins(lmp)[:, -1]]
    for low, high in LFP_BANDS:
        band = signal.sosfilt(
            signal.butter(2, [low, high], btype="bandpass", fs=FS, output="sos"), lfp, axis=0
        )
        features.append(np.log(_bins(band**2).mean(axis=1) + 1e-3))
    return np.concatenate(features, axis=1)


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
    counts = _bins(session.streams["spikes"].data.astype(np.float32)).sum(axis=1)
    r2 = ridge_heldout_r2(np.sqrt(counts), _velocity_bins(session), penalties=(1e2,))
    assert 0.5 <= r2 <= 0.8, r2


def test_lfp_decodes_velocity_clearly_worse_than_spikes_but_not_nothing(session) -> None:
    velocity = _velocity_bins(session)
    counts = _bins(session.streams["spikes"].data.astype(np.float32)).sum(axis=1)
    spike_r2 = ridge_heldout_r2(np.sqrt(counts), velocity, penalties=(1e2,))
    lfp = session.streams["lfp"].data.astype(np.float64)
    # The LFP decoder gets the better of several penalties: the gap must not come from its tuning.
    lfp_r2 = ridge_heldout_r2(_lfp_features(lfp), velocity, penalties=(1e2, 1e3, 1e4))
    assert lfp_r2 < spike_r2 - 0.15, (lfp_r2, spike_r2)
    assert lfp_r2 > 0.05, lfp_r2


def _aperiodic_fit(freqs: np.ndarray, power: np.ndarray) -> np.ndarray:
    """Slope and intercept of log power vs log frequency away from beta and line noise."""
    fit = ((freqs >= 2) & (freqs <= 10)) | ((freqs >= 35) & (freqs <= 55)) | ((freqs >= 65) & (freqs <= 110))
    return np.polyfit(np.log10(freqs[fit]), np.log10(power[fit]), 1)


def test_lfp_spectrum_has_one_over_f_slope_and_beta_peak(session) -> None:
    simulator = RigSimulator(SimConfig(), 0, 0, 11)
    clean = ~simulator.rig.dead & (simulator.rig.noisy_lfp_uv == 0)
    lfp = session.streams["lfp"].data[:, clean].astype(np.float64)
    freqs, power = signal.welch(lfp, fs=FS, nperseg=2048, axis=0)
    power = power.mean(axis=1)
    slope, intercept = _aperiodic_fit(freqs, power)
    assert -2.3 < slope < -0.8, slope
    beta_hz = simulator.rig.subject.beta_hz
    peak = (freqs >= beta_hz - 2) & (freqs <= beta_hz + 2)
    above_background = power[peak] / 10 ** np.polyval([slope, intercept], np.log10(freqs[peak]))
    assert above_background.mean() > 1.5, above_background.mean()
    line = np.argmin(np.abs(freqs - 60.0))
    assert power[line] > 3 * power[line - 5]


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
