"""LfpFeaturizer: the causal filters against scipy.signal.sosfilt, float32 against float64, the notch."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from rtbci.profile import FeatureConfig
from rtbci.signal import LfpFeaturizer, design_filter_bank
from rtbci.signal.kernels import POWER_FLOOR

RATE = 2000.0
BIN_SAMPLES = 40  # 20 ms at 2 kHz


def make_signal(n_channels: int = 8, seconds: float = 10.0, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Noise, mains hum, a slow drift and a 3 Hz wave: every filter has something to do."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    x = (
        30 * rng.standard_normal((n, n_channels))
        + 100 * np.sin(2 * np.pi * 60 * t)[:, None]
        + 50 * np.sin(2 * np.pi * 3 * t)[:, None]
        + np.cumsum(rng.standard_normal((n, n_channels)), axis=0)
    )
    return x, 500.0 + t


def scipy_features(x: np.ndarray, features: FeatureConfig) -> np.ndarray:
    """The same features from scipy.signal.sosfilt over the whole signal (the reference)."""
    bank = design_filter_bank(RATE, features)
    notched = signal.sosfilt(bank.notch, x, axis=0)
    outputs = [signal.sosfilt(bank.lmp, notched, axis=0)]
    outputs += [signal.sosfilt(band, notched, axis=0) ** 2 for band in bank.bands]
    k = x.shape[0] // BIN_SAMPLES
    means = [out[: k * BIN_SAMPLES].reshape(k, BIN_SAMPLES, -1).mean(axis=1) for out in outputs]
    result = np.stack(means, axis=-1)
    result[..., 1:] = np.log(result[..., 1:] + POWER_FLOOR)
    return result


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_features_match_scipy_sosfilt(precision):
    x, times = make_signal()
    features = FeatureConfig()
    featurizer = LfpFeaturizer(x.shape[1], RATE, 0.02, features, epoch=500.0, precision=precision)
    ours = featurizer.push(x, times).values
    reference = scipy_features(x, features)
    assert ours.shape == reference.shape == (500, 8, 5)
    scale = reference.std(axis=(0, 1))
    error = np.abs(ours - reference).max(axis=(0, 1)) / scale
    # float64 differs from scipy only by the float32 output rounding; float32 arithmetic
    # stays within 2% of a feature's spread at worst (see the next test for its RMS).
    assert (error < (1e-6 if precision == "float64" else 2e-2)).all(), error


def test_float32_accuracy_holds_against_float64():
    """float32 filters are used by default: RMS error below 0.1% of every feature's spread."""
    x, times = make_signal(seconds=20.0, seed=3)
    features = FeatureConfig()
    results = {
        precision: LfpFeaturizer(x.shape[1], RATE, 0.02, features, epoch=500.0, precision=precision)
        .push(x, times)
        .values
        for precision in ("float32", "float64")
    }
    error = results["float32"] - results["float64"]
    spread = results["float64"].std(axis=(0, 1))
    rms_relative = np.sqrt((error**2).mean(axis=(0, 1))) / spread
    assert (rms_relative < 1e-3).all(), rms_relative
    # Correlation per feature and channel: the model cannot tell them apart.
    for feature in range(error.shape[2]):
        for channel in range(error.shape[1]):
            r = np.corrcoef(results["float32"][:, channel, feature], results["float64"][:, channel, feature])
            assert r[0, 1] > 0.9999


def test_notch_removes_mains_hum():
    rng = np.random.default_rng(0)
    n = int(5 * RATE)
    t = np.arange(n) / RATE
    noise = 5 * rng.standard_normal((n, 1))
    hum = 200 * np.sin(2 * np.pi * 60 * t)[:, None] + 100 * np.sin(2 * np.pi * 180 * t + 0.3)[:, None]
    bank = design_filter_bank(RATE, FeatureConfig(line_hz=60.0, line_harmonics=3))
    clean_out = signal.sosfilt(bank.notch, noise, axis=0)
    hum_out = signal.sosfilt(bank.notch, noise + hum, axis=0)
    settled = slice(int(RATE), None)  # after the notches' 1 s transient
    residual = hum_out[settled] - clean_out[settled]
    assert np.sqrt((residual**2).mean()) < 0.01 * np.sqrt((hum[settled] ** 2).mean())
    # And the 30-80 Hz band power with hum matches the power without it.
    featurizer_hum = LfpFeaturizer(1, RATE, 0.02, FeatureConfig(), epoch=0.0)
    featurizer_clean = LfpFeaturizer(1, RATE, 0.02, FeatureConfig(), epoch=0.0)
    with_hum = featurizer_hum.push(noise + hum, t).values[50:, 0, 3]
    without = featurizer_clean.push(noise, t).values[50:, 0, 3]
    assert abs(with_hum.mean() - without.mean()) < 0.05


def test_feature_names_and_bands_above_nyquist_are_dropped():
    features = FeatureConfig(line_hz=50.0, line_harmonics=3)
    featurizer = LfpFeaturizer(4, 250.0, 0.02, features)
    # Nyquist 125 Hz: 80-200 Hz is dropped; notches at 50 and 100 Hz only.
    assert featurizer.feature_names == ["lmp", "8-15Hz", "15-30Hz", "30-80Hz"]
    assert featurizer.filter_bank.notch.shape == (2, 6)
    bins = featurizer.push(np.ones((25, 4)), np.arange(25) / 250.0)
    assert bins.values.shape == (5, 4, 4)


def test_lmp_follows_a_slow_wave():
    n = int(4 * RATE)
    t = np.arange(n) / RATE
    slow = 100 * np.sin(2 * np.pi * 1.0 * t)
    featurizer = LfpFeaturizer(1, RATE, 0.02, FeatureConfig(), epoch=0.0)
    lmp = featurizer.push(slow[:, None], t).values[:, 0, 0]
    bin_centres = (np.arange(len(lmp)) + 0.5) * 0.02
    # A causal 5 Hz low-pass delays a 1 Hz wave a little; the shape is kept.
    assert np.corrcoef(lmp[50:], 100 * np.sin(2 * np.pi * (bin_centres[50:] - 0.06)))[0, 1] > 0.99


def test_low_rate_without_notches_still_matches_scipy():
    """At 100 Hz no mains notch fits below Nyquist: the notched signal is the raw one."""
    rate = 100.0
    features = FeatureConfig(bands_hz=((8.0, 15.0), (15.0, 30.0), (30.0, 80.0)))
    featurizer = LfpFeaturizer(3, rate, 0.02, features, epoch=0.0, precision="float64")
    assert featurizer.filter_bank.notch.shape == (0, 6)
    assert featurizer.feature_names == ["lmp", "8-15Hz", "15-30Hz"]
    x = np.random.default_rng(2).standard_normal((1000, 3)) * 10
    ours = featurizer.push(x, np.arange(1000) / rate).values
    band = signal.sosfilt(featurizer.filter_bank.bands[1], x, axis=0) ** 2
    expected = np.log(band.reshape(500, 2, 3).mean(axis=1) + POWER_FLOOR)
    np.testing.assert_allclose(ours[:, :, 2], expected, atol=1e-5)


def test_bins_longer_than_a_work_block_match_scipy():
    """50 ms bins at 2 kHz hold 100 samples, more than one kernel work block (64)."""
    x, times = make_signal(n_channels=3, seconds=3.0)
    features = FeatureConfig()
    ours = LfpFeaturizer(3, RATE, 0.05, features, epoch=500.0, precision="float64").push(x, times).values
    bank = design_filter_bank(RATE, features)
    band = signal.sosfilt(bank.bands[0], signal.sosfilt(bank.notch, x, axis=0), axis=0) ** 2
    expected = np.log(band.reshape(60, 100, 3).mean(axis=1) + POWER_FLOOR)
    assert ours.shape == (60, 3, 5)
    np.testing.assert_allclose(ours[:, :, 1], expected, atol=1e-5)
