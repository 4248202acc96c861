"""The generic neo path (neo's ExampleRawIO: two segments, events, epochs) and the channel classes."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import neo
import numpy as np
import pytest
from neo.rawio.baserawio import _signal_channel_dtype, _signal_stream_dtype

from rtbci.io.importers import ImportOptions
from rtbci.io.importers.neo_formats import _signal_groups, session_from_neo_reader
from rtbci.io.session import StreamKind


@pytest.fixture
def reader(tmp_path):
    # ExampleRawIO makes up its data from the file name alone; nothing is read.
    example = neo.rawio.ExampleRawIO(filename=str(tmp_path / "example.fake"))
    example.parse_header()
    return example


def test_segments_are_concatenated_with_their_own_clocks(reader, tmp_path):
    session = session_from_neo_reader(
        reader, "example", tmp_path / "example.fake", ImportOptions(progress=False)
    )

    n_segments = reader.segment_count(0)
    assert session.meta.provenance["segments"] == str(n_segments) == "2"
    assert session.meta.provenance["blocks"] == "read block 1 of 2"

    # Spike counts: each segment on its own 1 kHz grid from its start, spikes binned by numpy here.
    spikes = session.streams["spikes"]
    expected_counts, expected_times = [], []
    for segment in range(n_segments):
        start, stop = reader.segment_t_start(0, segment), reader.segment_t_stop(0, segment)
        n = round((stop - start) * 1000) + 1
        edges = start + np.arange(n + 1) / 1000.0
        expected_times.append(edges[:-1])
        expected_counts.append(
            np.stack(
                [
                    np.histogram(
                        reader.rescale_spike_timestamp(
                            reader.get_spike_timestamps(0, segment, unit, None, None)
                        ),
                        edges,
                    )[0]
                    for unit in range(reader.spike_channels_count())
                ],
                axis=1,
            )
        )
    np.testing.assert_array_equal(spikes.data, np.concatenate(expected_counts))
    np.testing.assert_allclose(spikes.timestamps, np.concatenate(expected_times), rtol=0, atol=1e-9)
    assert spikes.channel_labels == [str(name) for name in reader.header["spike_channels"]["name"]]

    # 10 kHz neural signals are raw broadband, one stream per neo stream, both segments.
    broadband = session.of_kind(StreamKind.ANALOG)
    assert len(broadband) == 2
    for stream_index, stream in enumerate(broadband):
        sizes = [reader.get_signal_size(0, s, stream_index) for s in range(n_segments)]
        assert stream.n_samples == sum(sizes) and stream.rate == 10_000.0
        raw = np.concatenate(
            [reader.get_analogsignal_chunk(0, s, None, None, stream_index) for s in range(n_segments)]
        )
        np.testing.assert_array_equal(
            stream.data, reader.rescale_signal_raw_to_float(raw, "float32", stream_index=stream_index)
        )
        second = reader.get_signal_t_start(0, 1, stream_index)
        assert stream.timestamps[sizes[0]] == second

    # Events become markers; epochs a start and a stop marker each.
    events = session.streams["Some events"]
    expected_events = sum(len(reader.get_event_timestamps(0, s, 0)[0]) for s in range(n_segments))
    assert events.kind == StreamKind.MARKERS and events.n_samples == expected_events
    epochs = session.streams["Some epochs"]
    n_epochs = sum(len(reader.get_event_timestamps(0, s, 1)[0]) for s in range(n_segments))
    assert epochs.n_samples == 2 * n_epochs
    assert sum(text.endswith(" start") for text in epochs.data[:, 0]) == n_epochs


def test_keep_units_labels_each_unit(reader, tmp_path):
    options = ImportOptions(keep_units=True, spike_events=False, progress=False)
    session = session_from_neo_reader(reader, "example", Path("example.fake"), options)
    assert "spike_events" not in session.streams
    assert session.streams["spikes"].channel_labels == ["unit0#0", "unit1#0", "unit2#0"]


def test_blackrock_channel_classes():
    streams = np.array([("nsx2", "2", "2"), ("nsx6", "6", "6")], dtype=_signal_stream_dtype)
    channels = np.array(
        [
            # name, id, rate, dtype, units, gain, offset, stream_id, buffer_id
            ("elec1", "1", 1000.0, "int16", "uV", 0.25, 0.0, "2", "2"),
            ("ainp1", "129", 1000.0, "int16", "mV", 0.15, 0.0, "2", "2"),
            ("elec2", "2", 1000.0, "int16", "uV", 0.25, 0.0, "2", "2"),
            ("sync", "130", 1000.0, "int16", "mV", 0.15, 0.0, "2", "2"),  # id above 128: analog input
            ("elec1", "1", 30000.0, "int16", "uV", 0.25, 0.0, "6", "6"),
        ],
        dtype=_signal_channel_dtype,
    )
    reader = SimpleNamespace(header={"signal_streams": streams, "signal_channels": channels})
    groups = {(g.base_name, g.stream_index): g for g in _signal_groups(reader, "blackrock")}
    assert set(groups) == {("lfp", 0), ("analog", 0), ("broadband", 1)}
    assert groups["lfp", 0].kind == StreamKind.LFP and groups["lfp", 0].labels == ["elec1", "elec2"]
    assert groups["lfp", 0].channel_indexes == [0, 2]
    assert groups["analog", 0].kind == StreamKind.ANALOG and groups["analog", 0].labels == ["ainp1", "sync"]
    assert groups["analog", 0].units == "mV"
    assert groups["broadband", 1].kind == StreamKind.ANALOG and groups["broadband", 1].rate == 30000.0
    # Outside Blackrock, a channel id says nothing about analog inputs.
    other = {g.base_name: g.labels for g in _signal_groups(reader, "plexon") if g.stream_index == 0}
    assert other == {"lfp": ["elec1", "elec2", "sync"], "analog": ["ainp1"]}
