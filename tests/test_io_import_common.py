"""Spike binning and stream naming shared by the importers."""

from __future__ import annotations

import numpy as np
import pytest

from rtbci.io.importers import SUPPORTED_SUFFIXES, SessionImportError, import_session
from rtbci.io.importers.common import bin_spike_times, spike_event_stream, unique_name


def test_a_spike_on_a_sample_boundary_counts_in_the_sample_it_starts():
    counts, timestamps = bin_spike_times([np.array([0.0, 0.001, 0.0015, 0.002])], start=0.0, rate=1000.0)
    np.testing.assert_array_equal(timestamps, [0.0, 0.001, 0.002])
    np.testing.assert_array_equal(counts[:, 0], [1, 2, 1])


def test_grid_covers_the_end_and_every_spike():
    counts, timestamps = bin_spike_times(
        [np.array([0.25]), np.array([], float)], start=0.1, rate=10.0, end=0.5
    )
    assert timestamps[0] == 0.1 and timestamps[-1] <= 0.5 < timestamps[-1] + 0.1
    assert counts.shape == (len(timestamps), 2)
    assert counts[:, 0].tolist() == [0, 1, 0, 0, 0] and counts[:, 1].sum() == 0


def test_counts_widen_past_255_and_stay_uint8_otherwise():
    assert bin_spike_times([np.full(255, 0.5)], 0.0, 1.0)[0].dtype == np.uint8
    counts, _ = bin_spike_times([np.full(300, 0.5), np.array([0.2])], 0.0, 1.0)
    assert counts.dtype == np.uint16 and counts[0].tolist() == [300, 1]


def test_a_spike_before_the_start_is_an_error():
    with pytest.raises(ValueError, match="before start"):
        bin_spike_times([np.array([0.5])], start=1.0, rate=1000.0)


def test_spike_events_are_sorted_by_time_with_channel_and_unit():
    stream = spike_event_stream(
        [np.array([0.3, 0.1]), np.array([0.2])], unit_ids=[7, 9], channel_of_unit=[0, 0]
    )
    np.testing.assert_array_equal(stream.timestamps, [0.1, 0.2, 0.3])
    assert stream.data.tolist() == [[0, 7], [0, 9], [0, 7]]


def test_unique_names_are_valid_hdf5_group_names():
    taken: set[str] = set()
    assert [unique_name(n, taken) for n in ("a/b", "a_b", ".", "", "x")] == [
        "a_b",
        "a_b_2",
        "stream",
        "stream_2",
        "x",
    ]


def test_every_advertised_suffix_has_a_reader(tmp_path):
    assert {".nwb", ".xdf", ".nev", ".ns1", ".ns6"} <= set(SUPPORTED_SUFFIXES)
    for suffix in SUPPORTED_SUFFIXES:
        with pytest.raises(SessionImportError, match="no such file"):
            import_session(tmp_path / f"absent{suffix}")
