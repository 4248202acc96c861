"""Blackrock ``.nev``/``.nsX`` (and Plexon ``.plx``, Neuralynx ``.ncs``) through neo's raw IO layer.

- Spike events become counts at ``options.spike_rate`` (1 kHz): one channel per
  electrode with its units merged (threshold crossings), or one per unit with
  ``keep_units``. The exact spikes are kept as a ``spike_events`` stream.
- Continuous channels become ``lfp`` (neural, up to 2.5 kHz), ``broadband``
  (neural, faster: raw ns5/ns6) or ``analog`` (analog inputs: ``ainp`` labels or
  Blackrock channel ids above 128) streams, in physical units.
- Event channels (the digital input port, ...) become marker streams named
  after the channel.

All segments of the first block are read and concatenated; timestamps are the
recording system's clock in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import neo
import numpy as np
from neo.rawio.baserawio import BaseRawIO
from tqdm import tqdm

from rtbci.io.importers.common import (
    BROADBAND_MIN_RATE,
    ImportOptions,
    SessionImportError,
    base_provenance,
    bin_spike_times,
    regular_timestamps,
    spike_event_stream,
    unique_name,
)
from rtbci.io.session import Session, SessionMeta, Stream, StreamKind

__all__ = ["BLACKROCK_SUFFIXES", "NEO_SUFFIXES", "read_neo", "session_from_neo_reader"]

BLACKROCK_SUFFIXES = (".nev", ".ns1", ".ns2", ".ns3", ".ns4", ".ns5", ".ns6")
NEO_SUFFIXES = (*BLACKROCK_SUFFIXES, ".plx", ".ncs")
# Blackrock numbers front-end electrodes 1..128 per NSP; analog inputs come after.
_BLACKROCK_LAST_ELECTRODE = 128
_ROWS_PER_READ = 1 << 18


@dataclass(frozen=True)
class _SignalGroup:
    """Channels of one neo signal stream that become one Session stream."""

    kind: StreamKind
    base_name: str
    stream_index: int
    channel_indexes: list[int]
    rate: float
    labels: list[str]
    units: str


# The first 8 bytes of Blackrock files, by format version.
_BLACKROCK_NEV_MAGIC = (b"NEURALEV", b"BREVENTS")
_BLACKROCK_NSX_MAGIC = (b"NEURALSG", b"NEURALCD", b"BRSMPGRP")


def _magic(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(8)


def _is_blackrock_nev(path: Path) -> bool:
    return _magic(path) in _BLACKROCK_NEV_MAGIC


def _check_blackrock_magic(path: Path) -> None:
    expected = _BLACKROCK_NEV_MAGIC if path.suffix.lower() == ".nev" else _BLACKROCK_NSX_MAGIC
    found = _magic(path)
    if found not in expected:
        raise SessionImportError(
            f"{path}: not a Blackrock {path.suffix} file: it starts with {found!r}, "
            f"expected one of {', '.join(repr(m) for m in expected)}"
        )


def _open_reader(path: Path) -> tuple[BaseRawIO, str]:
    """The neo raw reader for ``path`` with its header parsed, and the format name."""
    suffix = path.suffix.lower()
    if suffix == ".plx":
        reader, source_format = neo.rawio.PlexonRawIO(filename=str(path)), "plexon"
    elif suffix == ".ncs" or (
        suffix == ".nev" and not _is_blackrock_nev(path) and any(path.parent.glob("*.ncs"))
    ):
        reader, source_format = neo.rawio.NeuralynxRawIO(dirname=str(path.parent)), "neuralynx"
    else:
        _check_blackrock_magic(path)
        # BlackrockRawIO takes the base name and finds the .nev and every .nsX beside it.
        reader, source_format = neo.rawio.BlackrockRawIO(filename=str(path.with_suffix(""))), "blackrock"
    reader.parse_header()
    return reader, source_format


def _is_analog_input(source_format: str, name: str, channel_id: str) -> bool:
    if name.lower().startswith(("ainp", "analog")):
        return True
    return (
        source_format == "blackrock" and channel_id.isdigit() and int(channel_id) > _BLACKROCK_LAST_ELECTRODE
    )


def _signal_groups(reader: BaseRawIO, source_format: str) -> list[_SignalGroup]:
    """Split every neo signal stream into its lfp / broadband / analog channels."""
    groups = []
    channels = reader.header["signal_channels"]
    for stream_index, stream in enumerate(reader.header["signal_streams"]):
        in_stream = np.flatnonzero(channels["stream_id"] == stream["id"])
        by_kind: dict[tuple[StreamKind, str], list[int]] = {}
        for position, channel in enumerate(channels[in_stream]):
            rate = float(channel["sampling_rate"])
            if _is_analog_input(source_format, str(channel["name"]), str(channel["id"])):
                key = (StreamKind.ANALOG, "analog")
            elif rate > BROADBAND_MIN_RATE:
                key = (StreamKind.ANALOG, "broadband")
            else:
                key = (StreamKind.LFP, "lfp")
            by_kind.setdefault(key, []).append(position)
        for (kind, base_name), positions in by_kind.items():
            chosen = channels[in_stream[positions]]
            groups.append(
                _SignalGroup(
                    kind=kind,
                    base_name=base_name,
                    stream_index=stream_index,
                    channel_indexes=positions,
                    rate=float(chosen["sampling_rate"][0]),
                    labels=[str(name) for name in chosen["name"]],
                    units=", ".join(dict.fromkeys(str(unit) for unit in chosen["units"])),
                )
            )
    return groups


def _read_group(
    reader: BaseRawIO, group: _SignalGroup, n_segments: int, bar: tqdm
) -> tuple[np.ndarray, np.ndarray]:
    """Samples (in physical units) and timestamps of one group over every segment."""
    sizes = [reader.get_signal_size(0, segment, group.stream_index) for segment in range(n_segments)]
    data = np.empty((sum(sizes), len(group.channel_indexes)), dtype=np.float32)
    timestamps = np.empty(sum(sizes), dtype=np.float64)
    row = 0
    for segment, n_rows in enumerate(sizes):
        start = reader.get_signal_t_start(0, segment, group.stream_index)
        timestamps[row : row + n_rows] = regular_timestamps(start, n_rows, group.rate)
        for first in range(0, n_rows, _ROWS_PER_READ):
            last = min(first + _ROWS_PER_READ, n_rows)
            raw = reader.get_analogsignal_chunk(
                0, segment, first, last, group.stream_index, channel_indexes=group.channel_indexes
            )
            data[row + first : row + last] = reader.rescale_signal_raw_to_float(
                raw, "float32", group.stream_index, channel_indexes=group.channel_indexes
            )
            bar.update(last - first)
        row += n_rows
    return data, timestamps


def _signal_streams(
    reader: BaseRawIO, groups: list[_SignalGroup], n_segments: int, taken: set[str], show: bool
) -> list[Stream]:
    total = sum(
        reader.get_signal_size(0, segment, group.stream_index)
        for group in groups
        for segment in range(n_segments)
    )
    # Plain names ("lfp", "analog") unless several neo streams give the same kind.
    repeated = {g.base_name for g in groups if sum(h.base_name == g.base_name for h in groups) > 1}
    streams = []
    with tqdm(total=total, unit="sample", desc="continuous", disable=not show or total == 0) as bar:
        for group in groups:
            data, timestamps = _read_group(reader, group, n_segments, bar)
            neo_stream = str(reader.header["signal_streams"][group.stream_index]["name"])
            name = f"{group.base_name}_{neo_stream}" if group.base_name in repeated else group.base_name
            streams.append(
                Stream(
                    name=unique_name(name, taken),
                    kind=group.kind,
                    data=data,
                    timestamps=timestamps,
                    rate=group.rate,
                    channel_labels=group.labels,
                    units=group.units,
                )
            )
    return streams


def _spike_identity(reader: BaseRawIO, index: int) -> tuple[str, int]:
    """(electrode label, unit id) of neo spike channel ``index``."""
    annotations = reader.raw_annotations["blocks"][0]["segments"][0]["spikes"][index]
    if "channel_id" in annotations and "unit_id" in annotations:  # Blackrock
        return f"elec{int(annotations['channel_id'])}", int(annotations["unit_id"])
    name = str(reader.header["spike_channels"][index]["name"])
    electrode, _, unit = name.rpartition("#")
    if not electrode:
        return name, 0
    return electrode, int(unit) if unit.isdigit() else index


def _spike_streams(reader: BaseRawIO, n_segments: int, options: ImportOptions) -> list[Stream]:
    """The spike count stream (and ``spike_events``), or nothing when the file has no spikes."""
    n_units = reader.spike_channels_count()
    if n_units == 0:
        return []
    identities = [_spike_identity(reader, index) for index in range(n_units)]
    keys = [f"{label}#{unit}" if options.keep_units else label for label, unit in identities]
    labels = list(dict.fromkeys(keys))
    channel_of_unit = [labels.index(key) for key in keys]
    counts, timestamps, event_times = [], [], [[] for _ in range(n_units)]
    with tqdm(total=n_segments * n_units, unit="unit", desc="spikes", disable=not options.progress) as bar:
        for segment in range(n_segments):
            per_channel: list[list[np.ndarray]] = [[] for _ in labels]
            for unit in range(n_units):
                ticks = reader.get_spike_timestamps(0, segment, unit, None, None)
                times = reader.rescale_spike_timestamp(ticks, "float64")
                per_channel[channel_of_unit[unit]].append(times)
                event_times[unit].append(times)
                bar.update()
            merged = [np.sort(np.concatenate(parts)) for parts in per_channel]
            first_spike = min((float(t[0]) for t in merged if len(t)), default=np.inf)
            start = min(reader.segment_t_start(0, segment), first_spike)
            segment_counts, segment_timestamps = bin_spike_times(
                merged, start, options.spike_rate, end=reader.segment_t_stop(0, segment)
            )
            counts.append(segment_counts)
            timestamps.append(segment_timestamps)
    dtype = max((c.dtype for c in counts), key=lambda d: d.itemsize)
    streams = [
        Stream(
            name="spikes",
            kind=StreamKind.SPIKES,
            data=np.concatenate([c.astype(dtype) for c in counts]),
            timestamps=np.concatenate(timestamps),
            rate=options.spike_rate,
            channel_labels=labels,
            units="count",
        )
    ]
    if options.spike_events:
        streams.append(
            spike_event_stream(
                [np.concatenate(parts) for parts in event_times],
                [unit for _, unit in identities],
                channel_of_unit,
            )
        )
    return streams


def _marker_streams(reader: BaseRawIO, n_segments: int, taken: set[str]) -> list[Stream]:
    """One marker stream per event channel that has events; an epoch gives a start and a stop marker."""
    streams = []
    for index, channel in enumerate(reader.header["event_channels"]):
        times, texts = [], []
        for segment in range(n_segments):
            ticks, durations, labels = reader.get_event_timestamps(0, segment, index, None, None)
            starts = reader.rescale_event_timestamp(ticks, "float64", event_channel_index=index)
            labels = np.asarray(labels, dtype=str).reshape(-1)
            if channel["type"] == b"epoch":
                lengths = reader.rescale_epoch_duration(durations, "float64", event_channel_index=index)
                starts = np.concatenate([starts, starts + lengths])
                labels = np.concatenate([np.char.add(labels, " start"), np.char.add(labels, " stop")])
            # Sorted within a segment only: a later segment may restart the clock.
            order = np.argsort(starts, kind="stable")
            times.append(starts[order])
            texts.append(labels[order])
        all_times = np.concatenate(times)
        if len(all_times) == 0:
            continue
        name = str(channel["name"])
        streams.append(
            Stream(
                name=unique_name(name, taken),
                kind=StreamKind.MARKERS,
                data=np.concatenate(texts).reshape(-1, 1),
                timestamps=all_times,
                rate=0.0,
                channel_labels=[name],
            )
        )
    return streams


def read_neo(path: Path, options: ImportOptions) -> Session:
    """Read a Blackrock, Plexon or Neuralynx recording through neo.

    Parameters
    ----------
    path
        A ``.nev`` or ``.ns1``-``.ns6`` file (the whole set with that base name is
        read), a ``.plx`` file, or a Neuralynx ``.ncs`` file (its folder is read).
    options
        Conversion settings.

    Returns
    -------
    Session

    Raises
    ------
    SessionImportError
        If neo cannot read the file.
    """
    try:
        reader, source_format = _open_reader(path)
    except SessionImportError:
        raise
    except Exception as error:  # neo raises anything from struct.error to IndexError on bad files
        raise SessionImportError(f"{path}: neo cannot read it: {type(error).__name__}: {error}") from error
    return session_from_neo_reader(reader, source_format, path, options)


def _streams(reader: BaseRawIO, source_format: str, n_segments: int, options: ImportOptions) -> list[Stream]:
    spike_streams = _spike_streams(reader, n_segments, options)
    taken = {stream.name for stream in spike_streams}
    groups = _signal_groups(reader, source_format)
    return [
        *spike_streams,
        *_signal_streams(reader, groups, n_segments, taken, options.progress),
        *_marker_streams(reader, n_segments, taken),
    ]


def session_from_neo_reader(
    reader: BaseRawIO, source_format: str, path: Path, options: ImportOptions
) -> Session:
    """Convert the first block of any neo raw reader to a Session.

    For formats without their own suffix here: open the reader (e.g.
    ``neo.rawio.Spike2RawIO(filename=...)``), call ``parse_header()``, then this.

    Parameters
    ----------
    reader
        A neo ``RawIO`` whose header is parsed.
    source_format
        Name recorded in the provenance; ``"blackrock"`` also turns on Blackrock's
        channel numbering (ids above 128 are analog inputs).
    path
        The file the reader read, for messages and provenance.
    options
        Conversion settings.

    Returns
    -------
    Session

    Raises
    ------
    SessionImportError
        If reading the data fails, or the reader holds nothing to import.
    """
    n_segments = reader.segment_count(0)
    try:
        streams = _streams(reader, source_format, n_segments, options)
    except Exception as error:  # neo's readers fail with many types on damaged data
        raise SessionImportError(
            f"{path}: reading the data failed: {type(error).__name__}: {error}"
        ) from error
    if not streams:
        raise SessionImportError(f"{path}: neo found no spikes, continuous channels or events in it")

    provenance = base_provenance(path, source_format, f"neo {neo.__version__} {type(reader).__name__}")
    provenance["segments"] = str(n_segments)
    if reader.block_count() > 1:
        provenance["blocks"] = f"read block 1 of {reader.block_count()}"
    if reader.spike_channels_count():
        per = "unit" if options.keep_units else "electrode (units merged: threshold crossings)"
        provenance["spike_counts"] = f"one channel per {per}, {options.spike_rate:g} Hz"
    rec_datetime = reader.raw_annotations["blocks"][0].get("rec_datetime")
    meta = SessionMeta(
        subject=options.subject or path.stem,
        session_id=options.session_id or path.stem,
        date=rec_datetime.isoformat() if rec_datetime is not None else "",
        provenance=provenance,
    )
    session = Session(meta)
    for stream in streams:
        session.add(stream)
    return session
