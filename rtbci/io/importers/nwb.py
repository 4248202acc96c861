"""NWB files through pynwb.

- The units table's spike times become counts at ``options.spike_rate``: one
  channel per electrode (units merged) when the table links units to
  electrodes, else one channel per unit. Provenance says which. The exact
  spikes are kept as a ``spike_events`` stream.
- Every ElectricalSeries becomes a stream in microvolts: ``lfp`` up to 2.5 kHz,
  ``analog`` (raw broadband) above.
- Every SpatialSeries (behavior) becomes a ``kinematics`` stream in its own unit.
- Every intervals table (epochs, trials, ...) becomes a marker stream with an
  event at each start and stop.

Timestamps are seconds from the file's ``timestamps_reference_time``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pynwb
from pynwb.behavior import SpatialSeries
from pynwb.ecephys import ElectricalSeries, SpikeEventSeries
from pynwb.epoch import TimeIntervals
from pynwb.misc import Units
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

__all__ = ["read_nwb"]

_ROWS_PER_READ = 1 << 16
_VOLTS_TO_MICROVOLTS = 1e6


def _electrode_info(nwb: pynwb.NWBFile) -> dict[int, str]:
    """Electrode id -> its region: the ``location`` column, else the group name."""
    table = nwb.electrodes
    if table is None:
        return {}
    ids = [int(i) for i in table.id[:]]
    locations = [str(v) for v in table["location"][:]] if "location" in table.colnames else [""] * len(ids)
    groups = [str(v) for v in table["group_name"][:]] if "group_name" in table.colnames else [""] * len(ids)
    return {i: loc or group for i, loc, group in zip(ids, locations, groups, strict=True)}


def _unit_region(units: Units, row: int) -> str:
    if "location" in units.colnames and str(units["location"][row]):
        return str(units["location"][row])
    if "electrode_group" in units.colnames:
        return str(units["electrode_group"][row].name)
    return ""


def _spike_streams(
    nwb: pynwb.NWBFile, options: ImportOptions, provenance: dict[str, str]
) -> tuple[list[Stream], list[str]]:
    """The spike count stream (+ ``spike_events``) and the region of each count channel."""
    units = nwb.units
    if units is None or len(units) == 0:
        return [], []
    unit_ids = [int(i) for i in units.id[:]]
    by_electrode = "electrodes" in units.colnames and not options.keep_units
    regions_of_electrode = _electrode_info(nwb)
    spike_times, keys, regions = [], [], {}
    for row in tqdm(range(len(units)), desc="units", unit="unit", disable=not options.progress):
        spike_times.append(np.asarray(units["spike_times"][row], dtype=np.float64))
        if by_electrode:
            # A unit seen on several electrodes (tetrode) is counted on its first one.
            electrode = int(units["electrodes"][row].index[0])
            keys.append(f"elec{electrode}")
            regions.setdefault(keys[-1], regions_of_electrode.get(electrode, ""))
        else:
            keys.append(f"unit{unit_ids[row]}")
            regions[keys[-1]] = _unit_region(units, row)
    labels = list(dict.fromkeys(keys))
    channel_of_unit = [labels.index(key) for key in keys]
    merged = [
        np.sort(
            np.concatenate([t for t, c in zip(spike_times, channel_of_unit, strict=True) if c == channel])
        )
        for channel in range(len(labels))
    ]
    first_spike = min((float(t[0]) for t in merged if len(t)), default=0.0)
    counts, timestamps = bin_spike_times(merged, min(0.0, first_spike), options.spike_rate)
    if by_electrode:
        provenance["spike_counts"] = (
            "one channel per electrode (units merged by the units table's electrodes)"
        )
    elif options.keep_units:
        provenance["spike_counts"] = "one channel per unit (keep_units)"
    else:
        provenance["spike_counts"] = "one channel per unit (the units table has no electrodes column)"
    provenance["spike_counts"] += f", {options.spike_rate:g} Hz"
    streams = [Stream("spikes", StreamKind.SPIKES, counts, timestamps, options.spike_rate, labels, "count")]
    if options.spike_events:
        streams.append(spike_event_stream(spike_times, unit_ids, channel_of_unit))
    return streams, [regions[label] for label in labels]


def _series_timestamps(series: pynwb.TimeSeries, n_rows: int) -> tuple[np.ndarray, float]:
    """Per-sample timestamps and the nominal rate (estimated when only timestamps are stored)."""
    if series.timestamps is not None:
        timestamps = np.asarray(series.timestamps[:], dtype=np.float64)
        steps = np.diff(timestamps)
        rate = float(1.0 / np.median(steps)) if len(steps) and np.median(steps) > 0 else 0.0
        return timestamps, rate
    return regular_timestamps(float(series.starting_time or 0.0), n_rows, float(series.rate)), float(
        series.rate
    )


def _read_scaled(series: pynwb.TimeSeries, scale: float, dtype: type, show: bool) -> np.ndarray:
    """The series' data in its physical unit times ``scale``, read in blocks of rows."""
    data = series.data
    n_rows = len(data)
    n_channels = 1 if len(data.shape) == 1 else int(np.prod(data.shape[1:]))
    gain = np.full(n_channels, series.conversion * scale)
    if isinstance(series, ElectricalSeries) and series.channel_conversion is not None:
        gain *= np.asarray(series.channel_conversion[:], dtype=np.float64)
    offset = series.offset * scale
    out = np.empty((n_rows, n_channels), dtype=dtype)
    with tqdm(total=n_rows, desc=series.name, unit="sample", disable=not show) as bar:
        for first in range(0, n_rows, _ROWS_PER_READ):
            last = min(first + _ROWS_PER_READ, n_rows)
            # In place, in float64: one block-sized temporary however wide the series is.
            block = np.asarray(data[first:last], dtype=np.float64).reshape(last - first, n_channels)
            block *= gain
            block += offset
            out[first:last] = block
            bar.update(last - first)
    return out


def _electrical_stream(series: ElectricalSeries, taken: set[str], show: bool) -> Stream:
    data = _read_scaled(series, _VOLTS_TO_MICROVOLTS, np.float32, show)
    timestamps, rate = _series_timestamps(series, len(data))
    table_ids = series.electrodes.table.id[:]
    labels = [f"elec{int(table_ids[row])}" for row in series.electrodes.data[:]]
    if len(labels) != data.shape[1]:
        labels = [f"{series.name}_{i}" for i in range(data.shape[1])]
    kind = StreamKind.ANALOG if rate > BROADBAND_MIN_RATE else StreamKind.LFP
    return Stream(unique_name(series.name, taken), kind, data, timestamps, rate, labels, "uV")


def _spatial_stream(series: SpatialSeries, taken: set[str], show: bool) -> Stream:
    data = _read_scaled(series, 1.0, np.float64, show)
    timestamps, rate = _series_timestamps(series, len(data))
    axes = "xyz" if data.shape[1] <= 3 else [str(i) for i in range(data.shape[1])]
    labels = [f"{series.name}_{axis}" for axis in axes[: data.shape[1]]]
    return Stream(
        unique_name(series.name, taken), StreamKind.KINEMATICS, data, timestamps, rate, labels, series.unit
    )


def _interval_stream(table: TimeIntervals, taken: set[str]) -> Stream | None:
    if len(table) == 0:
        return None
    starts = np.asarray(table["start_time"][:], dtype=np.float64)
    stops = np.asarray(table["stop_time"][:], dtype=np.float64)
    tags = [",".join(row) for row in table["tags"][:]] if "tags" in table.colnames else [""] * len(starts)
    texts = [f"{table.name}_start {t}".strip() for t in tags] + [
        f"{table.name}_stop {t}".strip() for t in tags
    ]
    times = np.concatenate([starts, stops])
    order = np.argsort(times, kind="stable")
    return Stream(
        unique_name(table.name, taken),
        StreamKind.MARKERS,
        np.asarray(texts, dtype=str)[order].reshape(-1, 1),
        times[order],
        0.0,
        [table.name],
    )


def _session(nwb: pynwb.NWBFile, path: Path, options: ImportOptions) -> Session:
    provenance = base_provenance(path, "nwb", f"pynwb {pynwb.__version__}")
    spike_streams, regions = _spike_streams(nwb, options, provenance)
    taken = {stream.name for stream in spike_streams}
    streams = list(spike_streams)
    found = sorted(nwb.objects.values(), key=lambda obj: (type(obj).__name__, obj.name))
    for obj in found:
        if isinstance(obj, ElectricalSeries) and not isinstance(obj, SpikeEventSeries):
            streams.append(_electrical_stream(obj, taken, options.progress))
        elif isinstance(obj, SpatialSeries):
            streams.append(_spatial_stream(obj, taken, options.progress))
    for table in (nwb.intervals or {}).values():
        marker_stream = _interval_stream(table, taken)
        if marker_stream is not None:
            streams.append(marker_stream)
    if not streams:
        raise SessionImportError(f"{path}: no units, ElectricalSeries, SpatialSeries or intervals to import")
    subject = nwb.subject.subject_id if nwb.subject is not None and nwb.subject.subject_id else None
    meta = SessionMeta(
        subject=options.subject or subject or path.stem,
        session_id=options.session_id or nwb.identifier or path.stem,
        task=nwb.session_description or "",
        date=nwb.session_start_time.isoformat() if nwb.session_start_time else "",
        channel_regions=regions,
        provenance=provenance,
    )
    session = Session(meta)
    for stream in streams:
        session.add(stream)
    return session


def read_nwb(path: Path, options: ImportOptions) -> Session:
    """Read an NWB file.

    Parameters
    ----------
    path
        The ``.nwb`` file (HDF5 backend).
    options
        Conversion settings.

    Returns
    -------
    Session

    Raises
    ------
    SessionImportError
        If pynwb cannot read the file or it holds nothing to import.
    """
    try:
        io = pynwb.NWBHDF5IO(str(path), "r", load_namespaces=True)
        nwb = io.read()
    except Exception as error:  # h5py, hdmf and pynwb each raise their own types on bad files
        raise SessionImportError(f"{path}: pynwb cannot read it: {type(error).__name__}: {error}") from error
    with io:
        try:
            return _session(nwb, path, options)
        except SessionImportError:
            raise
        except Exception as error:
            raise SessionImportError(
                f"{path}: converting it failed: {type(error).__name__}: {error}"
            ) from error
