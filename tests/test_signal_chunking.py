"""Chunk invariance (ARCHITECTURE.md rule 1): any chunking gives the one-shot pass's bins."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rtbci.profile import FeatureConfig
from rtbci.signal import Bins, LfpFeaturizer, SpikeBinner

RATE = 1000.0
N_CHANNELS = 6
N_SAMPLES = 3000


def recording() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LFP, spike counts and timestamps with the awkward parts in: NaNs, a gap, a step backwards."""
    rng = np.random.default_rng(7)
    times = 250.003 + np.arange(N_SAMPLES) / RATE
    times[1500:] += 0.0437  # a 44.7 ms step: bin 76 (251.52-251.54 s) gets no sample
    times[2200] = times[2199] - 0.002  # one timestamp jumps back
    t = times - times[0]
    lfp = 40 * rng.standard_normal((N_SAMPLES, N_CHANNELS)) + 80 * np.sin(2 * np.pi * 60 * t)[:, None]
    lfp[100:103, 2] = np.nan
    lfp[2500, 4] = np.inf
    spikes = rng.poisson(0.1, (N_SAMPLES, N_CHANNELS)).astype(np.float32)
    spikes[700, 1] = np.nan
    return lfp.astype(np.float32), spikes, times


LFP, SPIKES, TIMES = recording()


def make_lfp() -> LfpFeaturizer:
    return LfpFeaturizer(N_CHANNELS, RATE, 0.02, FeatureConfig(), epoch=250.0)


def make_spikes() -> SpikeBinner:
    return SpikeBinner(N_CHANNELS, RATE, 0.02, epoch=250.0)


def run_chunked(featurizer, data: np.ndarray, sizes: list[int]) -> Bins:
    parts, start = [], 0
    for size in sizes:
        parts.append(featurizer.push(data[start : start + size], TIMES[start : start + size]))
        start += size
    parts.append(featurizer.push(data[start:], TIMES[start:]))
    return Bins.concatenate(parts, featurizer.value_shape)


def assert_same_bins(chunked: Bins, one_shot: Bins) -> None:
    np.testing.assert_array_equal(chunked.index, one_shot.index)
    np.testing.assert_array_equal(chunked.end_times, one_shot.end_times)
    assert np.abs(chunked.values - one_shot.values).max() <= 1e-6


chunk_sizes = st.lists(st.integers(min_value=1, max_value=500), min_size=1, max_size=40)


def without_nan_counts(health: dict) -> dict:
    return {key: value for key, value in health.items() if key != "nan_counts"}


@settings(max_examples=25, deadline=None)
@given(sizes=chunk_sizes)
def test_lfp_any_chunking_equals_one_shot(sizes):
    reference = make_lfp()
    one_shot = reference.push(LFP, TIMES)
    featurizer = make_lfp()
    assert_same_bins(run_chunked(featurizer, LFP, sizes), one_shot)
    assert without_nan_counts(featurizer.health) == without_nan_counts(reference.health)
    np.testing.assert_array_equal(featurizer.health["nan_counts"], reference.health["nan_counts"])


@settings(max_examples=25, deadline=None)
@given(sizes=chunk_sizes)
def test_spikes_any_chunking_equals_one_shot(sizes):
    reference = make_spikes()
    one_shot = reference.push(SPIKES, TIMES)
    featurizer = make_spikes()
    assert_same_bins(run_chunked(featurizer, SPIKES, sizes), one_shot)
    assert without_nan_counts(featurizer.health) == without_nan_counts(reference.health)


@settings(max_examples=10, deadline=None)
@given(sizes=chunk_sizes)
def test_lfp_bins_longer_than_a_work_block_any_chunking(sizes):
    """100 ms bins hold 100 samples: a bin is filtered in several work blocks (64 samples)."""
    one_shot = LfpFeaturizer(N_CHANNELS, RATE, 0.1, FeatureConfig(), epoch=250.0).push(LFP, TIMES)
    featurizer = LfpFeaturizer(N_CHANNELS, RATE, 0.1, FeatureConfig(), epoch=250.0)
    assert_same_bins(run_chunked(featurizer, LFP, sizes), one_shot)


def test_the_recording_exercises_the_awkward_paths():
    """Guard that the property tests above really cover NaNs, a gap and a backwards step."""
    featurizer = make_lfp()
    bins = featurizer.push(LFP, TIMES)
    health = featurizer.health
    assert health["nan_total"] == 4 and health["gaps"] == 1 and health["backwards_timestamps"] == 1
    assert health["empty_bins"] == 1
    assert len(bins) > 140 and np.isfinite(bins.values).all()


def test_sample_by_sample_equals_one_shot():
    one_shot = make_lfp().push(LFP, TIMES)
    assert_same_bins(run_chunked(make_lfp(), LFP, [1] * N_SAMPLES), one_shot)
