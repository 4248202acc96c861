"""The featurizers on real recordings from ../shared/data/real (skipped where absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from rtbci.profile import FeatureConfig
from rtbci.signal import LfpFeaturizer, SpikeBinner, design_filter_bank

pytestmark = pytest.mark.realdata


def load_mc_maze_trial(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Timestamps (s) and the 1 ms spike matrix (samples, units) of one MC_Maze trial CSV."""
    header = path.read_text(encoding="utf-8").split("\n", 1)[0].split(",")
    units = [i for i, name in enumerate(header) if name.startswith("unit_")]
    table = np.loadtxt(path, delimiter=",", skiprows=1)
    return table[:, 0], table[:, units]


@pytest.mark.parametrize("trial", ["trial_748_data.csv", "trial_1356_data.csv"])
def test_mc_maze_binned_counts_equal_numpy_binning(real_data, trial):
    times, spikes = load_mc_maze_trial(real_data / "mc_maze_trials" / trial)
    assert spikes.shape[1] > 100 and spikes.sum() > 1000
    binner = SpikeBinner(spikes.shape[1], 1000.0, 0.02, epoch=times[0])
    bins = binner.push(spikes, times)
    k = spikes.shape[0] // 20
    expected = spikes[: k * 20].reshape(k, 20, -1).sum(axis=1)
    assert len(bins) == k
    np.testing.assert_array_equal(bins.values, expected)
    assert binner.health["gaps"] == 0 and binner.health["backwards_timestamps"] == 0


def test_beta_band_power_tracks_the_beta_envelope(real_data):
    """Human M1 ECoG: our causal 15-30 Hz log power vs the envelope of the provided 13-30 Hz signal."""
    folder = real_data / "neurodsp_field_potentials"
    raw = np.load(folder / "sample_data_1.npy")
    beta = np.load(folder / "sample_data_1_filt.npy")  # zero-phase filtered, NaN at the edges
    rate = 1000.0
    featurizer = LfpFeaturizer(1, rate, 0.02, FeatureConfig(), epoch=0.0)
    assert featurizer.feature_names[2] == "15-30Hz"
    ours = featurizer.push(raw[:, None], np.arange(raw.size) / rate).values[:, 0, 2]
    k = ours.size
    envelope_power = np.abs(signal.hilbert(np.nan_to_num(beta))) ** 2
    reference = np.log(envelope_power[: k * 20].reshape(k, 20).mean(axis=1) + 1e-6)
    valid = ~np.isnan(beta[: k * 20]).reshape(k, 20).any(axis=1)
    # Matching smoothing: the same 100 ms moving average on both. Our causal band-pass delays
    # the envelope by its group delay (about 29 ms at 22 Hz); the reference is zero-phase.
    smooth = np.ones(5) / 5
    ours_smooth = np.convolve(ours, smooth, mode="same")
    reference_smooth = np.convolve(reference, smooth, mode="same")
    bank = design_filter_bank(rate, FeatureConfig())
    delay_s = signal.group_delay(signal.sos2tf(bank.bands[1]), w=[22.5], fs=rate)[1][0] / rate
    lag = round(delay_s / 0.02)
    keep = valid[: k - lag] & valid[lag:]
    keep[:25] = False  # the causal filters' start-up transient (0.5 s)
    r = np.corrcoef(ours_smooth[lag:][keep], reference_smooth[: k - lag][keep])[0, 1]
    assert r > 0.8, r


def test_60hz_tone_added_to_real_lfp_is_removed(real_data):
    """Rat hippocampal LFP plus a strong 60 Hz tone gives the features of the LFP alone."""
    lfp = np.load(real_data / "neurodsp_field_potentials" / "sample_data_2.npy")[:30_000].astype(np.float64)
    rate = 1000.0
    t = np.arange(lfp.size) / rate
    tone = 3 * lfp.std() * np.sqrt(2) * np.sin(2 * np.pi * 60.0 * t)
    features = FeatureConfig(line_hz=60.0)

    def featurize(x: np.ndarray) -> np.ndarray:
        return LfpFeaturizer(1, rate, 0.02, features, epoch=0.0).push(x[:, None], t).values[50:, 0, :]

    clean, hummed = featurize(lfp), featurize(lfp + tone)
    # 30-80 Hz power is where 60 Hz lands: within 5% (0.05 in log units) on average.
    assert abs(hummed[:, 3] - clean[:, 3]).mean() < 0.05
    np.testing.assert_allclose(hummed[:, 0], clean[:, 0], atol=0.01 * lfp.std())
    # Without the notch the same band would be swamped: the test can fail.
    band = design_filter_bank(rate, features).bands[2]
    unnotched = np.log(signal.sosfilt(band, lfp + tone)[1000:] ** 2 + 1e-6).mean()
    notched_free = np.log(signal.sosfilt(band, lfp)[1000:] ** 2 + 1e-6).mean()
    assert unnotched - notched_free > 1.0
