"""Bad input never crashes the featurizers and never puts a NaN into a bin; it is counted."""

from __future__ import annotations

import numpy as np
import pytest

from rtbci.errors import UserError
from rtbci.profile import FeatureConfig
from rtbci.signal import ChannelCountError, ChunkShapeError, LfpFeaturizer, SpikeBinner


def lfp_featurizer(n_channels: int = 4) -> LfpFeaturizer:
    return LfpFeaturizer(n_channels, 1000.0, 0.02, FeatureConfig(), epoch=0.0)


def noise(n: int, n_channels: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, n_channels)) * 20


def test_nan_and_inf_take_the_last_good_value_and_are_counted():
    x = noise(400)
    times = np.arange(400) / 1000.0
    dirty = x.copy()
    dirty[50, 1] = np.nan
    dirty[51, 1] = np.inf
    dirty[300, 3] = -np.inf
    repaired = x.copy()
    repaired[50:52, 1] = x[49, 1]
    repaired[300, 3] = x[299, 3]
    featurizer = lfp_featurizer()
    bins = featurizer.push(dirty, times)
    assert np.isfinite(bins.values).all()
    np.testing.assert_array_equal(bins.values, lfp_featurizer().push(repaired, times).values)
    health = featurizer.health
    assert health["nan_counts"].tolist() == [0, 2, 0, 1] and health["nan_total"] == 3


def test_nan_spike_counts_are_replaced_and_counted():
    counts = np.ones((20, 2))
    counts[5, 0] = np.nan
    binner = SpikeBinner(2, 1000.0, 0.02, epoch=0.0)
    bins = binner.push(counts, np.arange(20) / 1000.0)
    assert bins.values.tolist() == [[20.0, 20.0]]
    assert binner.health["nan_counts"].tolist() == [1, 0]


def test_channel_count_mismatch_names_stream_expected_and_received():
    featurizer = LfpFeaturizer(96, 1000.0, 0.02, FeatureConfig(), stream="rig-lfp")
    with pytest.raises(ChannelCountError, match=r"stream 'rig-lfp': expected 96 channels, received 95"):
        featurizer.push(np.zeros((10, 95)), np.arange(10) / 1000.0)
    assert issubclass(ChannelCountError, UserError)
    binner = SpikeBinner(96, 1000.0, 0.02)
    with pytest.raises(ChannelCountError, match=r"stream 'spikes': expected 96 channels, received 128"):
        binner.push(np.zeros((1, 128)), np.zeros(1))


def test_malformed_chunks_are_clear_errors():
    binner = SpikeBinner(4, 1000.0, 0.02)
    with pytest.raises(ChunkShapeError, match="must be 2-D"):
        binner.push(np.zeros(4), np.zeros(4))
    with pytest.raises(ChunkShapeError, match="10 samples but timestamps of shape"):
        binner.push(np.zeros((10, 4)), np.zeros(9))
    with pytest.raises(ChunkShapeError, match="must be numeric"):
        binner.push(np.full((2, 4), "x"), np.zeros(2))


def test_backwards_timestamps_are_counted_and_handled():
    x = noise(200)
    times = np.arange(200) / 1000.0
    times[100] = times[80]  # one stamp jumps 20 ms back
    times[150:153] = times[150:153][::-1]  # three out of order
    featurizer = lfp_featurizer()
    bins = featurizer.push(x, times)
    health = featurizer.health
    assert health["backwards_timestamps"] == 3  # sample 100, and two of the reversed three
    # Stamped 152 ms right after 149 ms, the first of the reversed three looks like a gap when it
    # arrives; the samples stamped back into that gap are not counted as gaps again.
    assert health["gaps"] == 1
    assert np.isfinite(bins.values).all()
    assert np.all(np.diff(bins.index) == 1) and len(bins) == 10


def test_gap_is_reported_and_its_bins_are_not_merged():
    x = noise(200, n_channels=2)
    times = np.arange(200) / 1000.0
    times[100:] += 0.1  # 100 ms with no data: 5 whole bins
    featurizer = LfpFeaturizer(2, 1000.0, 0.02, FeatureConfig(), epoch=0.0)
    binner = SpikeBinner(2, 1000.0, 0.02, epoch=0.0)
    lfp_bins = featurizer.push(x, times)
    spike_bins = binner.push(np.ones((200, 2)), times)
    for health in (featurizer.health, binner.health):
        assert health["gaps"] == 1 and health["empty_bins"] == 5
        assert health["gap_seconds"] == pytest.approx(0.1)
        assert health["last_gap"] == pytest.approx((0.099, 0.2))
    assert lfp_bins.index.tolist() == list(range(15))
    # Spike bins in the gap are empty, not filled with the samples after it.
    assert spike_bins.values[:, 0].tolist() == [20.0] * 5 + [0.0] * 5 + [20.0] * 5
    # LFP bins in the gap hold the last features.
    np.testing.assert_array_equal(lfp_bins.values[5:10], np.repeat(lfp_bins.values[4:5], 5, axis=0))


def test_non_finite_timestamps_are_replaced_and_counted():
    binner = SpikeBinner(1, 1000.0, 0.02, epoch=0.0)
    times = np.arange(40) / 1000.0
    times[[0, 10]] = np.nan
    bins = binner.push(np.ones((40, 1)), times)
    assert bins.values[:, 0].tolist() == [20.0, 20.0]
    assert binner.health["bad_timestamps"] == 2
    with pytest.raises(ChunkShapeError, match="no finite timestamp"):
        SpikeBinner(1, 1000.0, 0.02).push(np.ones((2, 1)), np.full(2, np.nan))
