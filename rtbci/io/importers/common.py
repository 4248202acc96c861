"""Pieces every importer shares: options, the import error, spike binning, stream naming."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np

from rtbci.errors import UserError
from rtbci.io.session import Stream, StreamKind

__all__ = [
    "BROADBAND_MIN_RATE",
    "ImportOptions",
    "SessionImportError",
    "base_provenance",
    "bin_spike_times",
    "regular_timestamps",
    "spike_event_stream",
    "unique_name",
]

# Continuous neural data sampled faster than this is raw broadband (e.g. Blackrock
# ns5/ns6 at 30 kHz), not a field potential; it becomes an analog stream.
BROADBAND_MIN_RATE = 2500.0


class SessionImportError(UserError):
    """A source file (NWB, XDF, Blackrock, ...) could not be read or converted."""


@dataclass(frozen=True)
class ImportOptions:
    """How a recording is converted to a Session.

    Attributes
    ----------
    spike_rate
        Rate in Hz of the spike count stream built from spike times.
    keep_units
        One count channel per sorted unit instead of per electrode. BCI decoders
        use threshold crossings, so units are merged per electrode by default.
    spike_events
        Also keep every spike's exact time, channel and unit as a ``spike_events`` stream.
    subject, session_id
        Override the subject and session id read from the file (or the file name).
    progress
        Show tqdm progress bars.
    """

    spike_rate: float = 1000.0
    keep_units: bool = False
    spike_events: bool = True
    subject: str | None = None
    session_id: str | None = None
    progress: bool = True


def regular_timestamps(start: float, n_samples: int, rate: float) -> np.ndarray:
    """``start + k / rate`` for ``k = 0 .. n_samples - 1``, in float64."""
    return start + np.arange(n_samples, dtype=np.float64) / rate


def _count_dtype(max_count: int) -> np.dtype:
    for dtype in (np.uint8, np.uint16, np.uint32):
        if max_count <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.uint64)


def bin_spike_times(
    spike_times: Sequence[np.ndarray], start: float, rate: float, end: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Count spikes per channel on a regular grid.

    Sample ``k`` has timestamp ``t_k = start + k / rate`` and counts the spikes
    with ``t_k <= t < t_{k+1}``. The grid runs from ``start`` until it covers
    ``end`` and every spike.

    Parameters
    ----------
    spike_times
        One array of spike times (seconds) per channel.
    start
        Time of the first sample; no spike may come before it.
    rate
        Samples per second.
    end
        Last time the grid must cover (e.g. the end of the recording).

    Returns
    -------
    counts : np.ndarray
        ``(n_samples, n_channels)`` counts in the smallest unsigned type that holds them.
    timestamps : np.ndarray
        ``(n_samples,)`` float64.
    """
    last = max([end if end is not None else start] + [float(t.max()) for t in spike_times if len(t)])
    n_samples = int(np.floor((last - start) * rate)) + 1
    # floor() of a rounded product can land one short of the sample holding `last`.
    while start + n_samples / rate <= last:
        n_samples += 1
    timestamps = regular_timestamps(start, n_samples, rate)
    # Filled one channel at a time, widening the type only when a count needs it: a long
    # session has millions of samples, so a full int64 matrix would not fit in memory.
    counts = np.zeros((n_samples, len(spike_times)), dtype=np.uint8)
    for channel, times in enumerate(spike_times):
        index = np.searchsorted(timestamps, np.asarray(times, dtype=np.float64), side="right") - 1
        if len(index) == 0:
            continue
        if index.min() < 0:
            raise ValueError(f"channel {channel}: spike at {float(np.min(times))} s before start {start} s")
        channel_counts = np.bincount(index, minlength=n_samples)
        needed = _count_dtype(int(channel_counts.max()))
        if needed.itemsize > counts.dtype.itemsize:
            counts = counts.astype(needed)
        counts[:, channel] = channel_counts
    return counts, timestamps


def spike_event_stream(
    spike_times: Sequence[np.ndarray], unit_ids: Sequence[int], channel_of_unit: Sequence[int]
) -> Stream:
    """Every spike as one row ``(channel, unit)`` at its exact time, sorted by time.

    Parameters
    ----------
    spike_times
        One array of spike times (seconds) per unit.
    unit_ids
        The source file's id of each unit.
    channel_of_unit
        Index of each unit's channel in the spike count stream.
    """
    times = np.concatenate([np.asarray(t, dtype=np.float64) for t in spike_times] or [np.zeros(0)])
    rows = np.zeros((len(times), 2), dtype=np.int64)
    rows[:, 0] = np.repeat(np.asarray(channel_of_unit, dtype=np.int64), [len(t) for t in spike_times])
    rows[:, 1] = np.repeat(np.asarray(unit_ids, dtype=np.int64), [len(t) for t in spike_times])
    order = np.argsort(times, kind="stable")
    return Stream(
        name="spike_events",
        kind=StreamKind.SPIKE_EVENTS,
        data=rows[order],
        timestamps=times[order],
        rate=0.0,
        channel_labels=["channel", "unit"],
        units="index, id",
    )


def unique_name(name: str, taken: set[str]) -> str:
    """A stream name usable as an HDF5 group name and not in ``taken`` (which it joins)."""
    name = name.replace("/", "_").strip() or "stream"
    if name in (".", ".."):
        name = "stream"
    candidate, suffix = name, 2
    while candidate in taken:
        candidate = f"{name}_{suffix}"
        suffix += 1
    taken.add(candidate)
    return candidate


def base_provenance(path: Path, source_format: str, reader: str) -> dict[str, str]:
    """Provenance entries every import records."""
    return {
        "created_by": f"rtbci {version('rtbci')} import",
        "source": str(path.resolve()),
        "source_format": source_format,
        "reader": reader,
    }
