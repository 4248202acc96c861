"""The recorder: raw input chunks, features, outputs and per-bin timestamps to a Session file.

It runs on its own thread and only reads the rings the decode thread writes,
so disk I/O never waits on, or makes wait, the decode loop. The Session file
is written in SWMR mode and flushed at least once a second, so a SIGKILL loses
about a second at most. The file is created once the engine has placed its
bin grid (on the first sample), so that the grid's epoch is in its metadata;
engine events (outages, timestamp warnings, safety stops) go to its
``events`` marker stream.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtbci.engine.events import EventLog
from rtbci.engine.records import TIMESTAMP_FIELDS
from rtbci.engine.ring import ChunkRing, RecordRing
from rtbci.io.session import SessionMeta, StreamKind
from rtbci.io.store import SessionWriter, StreamLayout

__all__ = ["TIMING_CHANNELS", "RawSource", "Recorder"]

# Channels of the "timing" stream: one row per decoded bin.
TIMING_CHANNELS = ["seq", "index", *TIMESTAMP_FIELDS, "late_mask", "flags", "gap_bins"]

_POLL_S = 0.1


@dataclass
class RawSource:
    """A raw input stream to record."""

    name: str
    kind: StreamKind
    ring: ChunkRing
    rate: float
    channel_labels: list[str]
    units: str


class Recorder(threading.Thread):
    """Drains the engine's rings into a Session file until stopped.

    Parameters
    ----------
    path
        New Session file.
    meta
        Its metadata.
    raw
        Raw input streams.
    records
        The per-bin records.
    output_labels, output_units
        Names and units of the decoded channels.
    feature_labels
        One label per flattened feature value.
    bin_rate
        Bins per second.
    epoch
        Returns the engine's bin-grid epoch, or None while it waits for its first sample.
    events
        The engine's event log.
    """

    def __init__(
        self,
        path: str | Path,
        meta: SessionMeta,
        raw: list[RawSource],
        records: RecordRing,
        output_labels: list[str],
        output_units: str,
        feature_labels: list[str],
        bin_rate: float,
        epoch: Callable[[], float | None],
        events: EventLog,
    ) -> None:
        super().__init__(name="rtbci-recorder", daemon=True)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)  # a bad folder fails now, not in the thread
        self.meta = meta
        self.raw = raw
        self.records = records
        self.cursor = records.written
        self.epoch = epoch
        self.events = events
        self.events_cursor = events.logged
        self.missed_records = 0
        self.bins_written = 0
        self.stop_requested = threading.Event()
        self.error: str | None = None
        self.writer: SessionWriter | None = None
        self.layouts = [
            StreamLayout(
                source.name,
                source.kind,
                source.ring.data.shape[1],
                source.rate,
                source.channel_labels,
                source.units,
                source.ring.data.dtype,
            )
            for source in raw
        ]
        self.layouts += [
            StreamLayout("features", StreamKind.FEATURES, len(feature_labels), bin_rate, feature_labels, ""),
            StreamLayout(
                "decoded", StreamKind.DECODED, len(output_labels), bin_rate, output_labels, output_units
            ),
            StreamLayout(
                "timing", StreamKind.TIMING, len(TIMING_CHANNELS), bin_rate, TIMING_CHANNELS, "s", np.float64
            ),
            StreamLayout("events", StreamKind.MARKERS, 1, 0.0, ["event"], "", str),
        ]

    def run(self) -> None:
        try:
            # The raw rings hold 10 s: far more than the wait for a first sample once data flows.
            while self.epoch() is None and not self.stop_requested.wait(_POLL_S):
                pass
            meta = dataclasses.replace(self.meta, bin_epoch=self.epoch())
            self.writer = SessionWriter(self.path, meta, self.layouts, flush_interval_s=1.0)
            while not self.stop_requested.wait(_POLL_S):
                self.drain()
            self.drain()
        except Exception as error:  # reported by the engine status; recording stops, decoding does not
            self.error = f"{type(error).__name__}: {error}"
        finally:
            if self.writer is not None:
                self.writer.close()

    def drain(self) -> None:
        """Write everything the rings hold now (the writer flushes itself once a second)."""
        for source in self.raw:
            chunks = list(source.ring.read())
            if chunks:
                # One append per stream per drain, keeping each chunk's size.
                self.writer.append(
                    source.name,
                    np.concatenate([data for data, _ in chunks]),
                    np.concatenate([timestamps for _, timestamps in chunks]),
                    chunk_sizes=[len(timestamps) for _, timestamps in chunks],
                )
        records, self.cursor, missed = self.records.read_since(self.cursor)
        self.missed_records += missed
        if len(records):
            end_times = records["end_time"]
            self.writer.append("features", records["features"].reshape(len(records), -1), end_times)
            self.writer.append("decoded", records["output"], end_times)
            timing = np.column_stack([records[name].astype(np.float64) for name in TIMING_CHANNELS])
            self.writer.append("timing", timing, end_times)
            self.bins_written += len(records)
        events, self.events_cursor, _ = self.events.since(self.events_cursor)
        if events:
            self.writer.append(
                "events",
                np.array([[text] for _, text in events], dtype=object),
                np.array([t for t, _ in events]),
            )

    def stop(self) -> None:
        """Write what is left, close the file and end the thread."""
        self.stop_requested.set()
        self.join()
