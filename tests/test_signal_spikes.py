"""SpikeBinner: counts per bin on an epoch-aligned grid, closing each bin as soon as it is complete."""

from __future__ import annotations

import numpy as np
import pytest

from rtbci.signal import SpikeBinner


def test_counts_match_numpy_binning_and_bins_sit_on_the_epoch_grid():
    rng = np.random.default_rng(0)
    counts = rng.poisson(0.2, (1000, 5)).astype(np.uint8)
    times = 10.0 + np.arange(1000) / 1000.0
    bins = SpikeBinner(5, 1000.0, 0.02, epoch=10.0).push(counts, times)
    np.testing.assert_array_equal(bins.values, counts.reshape(50, 20, 5).sum(axis=1))
    np.testing.assert_array_equal(bins.index, np.arange(50))
    np.testing.assert_allclose(bins.end_times, 10.0 + 0.02 * np.arange(1, 51))
    assert bins.values.dtype == np.float32


def test_epoch_offset_makes_a_partial_first_bin():
    counts = np.ones((100, 1), np.uint8)
    times = 10.005 + np.arange(100) / 1000.0  # starts 5 ms into bin 500 of a grid at 0
    bins = SpikeBinner(1, 1000.0, 0.02).push(counts, times)
    assert bins.index[0] == 500
    np.testing.assert_array_equal(bins.values[:, 0], [15, 20, 20, 20, 20])


def test_bin_closes_on_the_sample_that_completes_it():
    binner = SpikeBinner(2, 1000.0, 0.02, epoch=0.0)
    times = np.arange(40) / 1000.0
    counts = np.ones((40, 2))
    assert len(binner.push(counts[:19], times[:19])) == 0
    closed = binner.push(counts[19:20], times[19:20])  # covers [19, 20) ms: bin 0 is complete
    assert closed.index.tolist() == [0] and closed.values.tolist() == [[20.0, 20.0]]


def test_flush_until_closes_bins_without_a_later_sample():
    binner = SpikeBinner(1, 1000.0, 0.02, epoch=0.0)
    binner.push(np.ones((10, 1)), np.arange(10) / 1000.0)
    assert len(binner.flush_until(0.019)) == 0  # bin 0 ends at 0.020
    flushed = binner.flush_until(0.0405)  # bins 0 and 1 end by then; bin 1 had no sample
    assert flushed.index.tolist() == [0, 1]
    assert flushed.values[:, 0].tolist() == [10.0, 0.0]
    assert binner.health["empty_bins"] == 1
    # A sample for an already closed bin is late: it goes into the open bin, counted.
    late = binner.push(np.full((1, 1), 3.0), np.array([0.015]))
    assert len(late) == 0 and binner.health["late_samples"] == 1
    assert binner.flush_until(0.06).values[:, 0].tolist() == [3.0]
    with pytest.raises(ValueError, match="finite time"):
        binner.flush_until(float("nan"))


def test_zero_and_single_sample_chunks():
    binner = SpikeBinner(3, 1000.0, 0.02, epoch=0.0)
    assert len(binner.push(np.zeros((0, 3)), np.zeros(0))) == 0
    assert len(binner.push([], [])) == 0  # an empty pull from LSL
    out = [binner.push(np.ones((1, 3)), np.array([k / 1000.0])) for k in range(40)]
    assert [len(b) for b in out].count(1) == 2
    assert binner.health["samples"] == 40


def test_reset_starts_over():
    binner = SpikeBinner(1, 1000.0, 0.02)
    binner.push(np.ones((30, 1)), np.arange(30) / 1000.0)
    binner.reset()
    assert binner.health["samples"] == 0 and binner.health["bins"] == 0
    bins = binner.push(np.ones((20, 1)), 5.0 + np.arange(20) / 1000.0)
    assert bins.index.tolist() == [250] and bins.values[0, 0] == 20.0


def test_returned_bins_are_not_overwritten_by_later_pushes():
    binner = SpikeBinner(2, 1000.0, 0.02, epoch=0.0)
    first = binner.push(np.ones((20, 2)), np.arange(20) / 1000.0)
    binner.push(np.full((20, 2), 5.0), 0.02 + np.arange(20) / 1000.0)
    assert first.values.tolist() == [[20.0, 20.0]] and first.index.tolist() == [0]
