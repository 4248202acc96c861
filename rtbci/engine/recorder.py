"""The recorder: raw input chunks, features, outputs and per-bin timestamps to a Session file.

It runs on its own thread and only reads the rings the decode thread writes,
so disk I/O never waits on, or makes wait, the decode loop. The Session file
is written in SWMR mode and flushed at least once a second, so a SIGKILL loses
about a second at most. The file is created once the engine has placed its
bin grid (on the first sample), so that the grid's epoch is in its metadata;
engine events (outages, timestamp warnings, safety stops) go to its
``events`` marker stream.

It also takes optional streams the decode thread never reads (:class:`FollowedSource`): the
cursor task's stream and markers, which may start before the recording, after it, or never (an
empty stream then), and the rig's behavior stream, recorded when it is there as the file is made.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtbci.engine.events import EventLog
from rtbci.engine.records import TIMESTAMP_FIELDS
from rtbci.engine.ring import ChunkRing, RecordRing
from rtbci.io.session import SessionMeta, StreamKind
from rtbci.io.store import SessionWriter, StreamLayout
from rtbci.lsl.follow import FollowedStream
from rtbci.lsl.info import described_channel_labels

__all__ = ["TIMING_CHANNELS", "FollowedSource", "RawSource", "Recorder"]

# Channels of the "timing" stream: one row per decoded bin.
TIMING_CHANNELS = ["seq", "index", *TIMESTAMP_FIELDS, "late_mask", "flags", "gap_bins"]

_POLL_S = 0.1
# How long the file's creation waits for a followed stream that must be there by then (behavior).
_FIND_S = 2.0


@dataclass
class RawSource:
    """A raw input stream to record."""

    name: str
    kind: StreamKind
    ring: ChunkRing
    rate: float
    channel_labels: list[str]
    units: str


@dataclass
class FollowedSource:
    """An optional stream to record when it is there, pulled on the recorder's thread.

    Attributes
    ----------
    name, kind, units
        As the recorded stream.
    stream
        Follows the LSL stream.
    channel_labels
        The recorded stream's labels. None: the LSL stream's own, so the stream is recorded only
        if it is there when the file is made (a SWMR file declares its streams once).
    """

    name: str
    kind: StreamKind
    stream: FollowedStream
    units: str
    channel_labels: list[str] | None = None


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
    followed
        Optional streams to take when they are there.
    clock
        The LSL clock (``pylsl.local_clock``), for the time of a note.

    Attributes
    ----------
    notes
        What the recording could not take (an optional stream that was absent or did not match);
        also written to the file's ``events`` stream.
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
        followed: list[FollowedSource] | None = None,
        clock: Callable[[], float] = time.monotonic,
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
        self.followed = list(followed or [])
        self.clock = clock
        self.notes: list[str] = []
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
            layouts = self.layouts + self._followed_layouts()
            self.writer = SessionWriter(self.path, meta, layouts, flush_interval_s=1.0)
            for note in self.notes:
                self._write_note(note)
            while not self.stop_requested.wait(_POLL_S):
                self.drain()
            self.drain()
        except Exception as error:  # reported by the engine status; recording stops, decoding does not
            self.error = f"{type(error).__name__}: {error}"
        finally:
            if self.writer is not None:
                self.writer.close()
            for source in self.followed:
                source.stream.close()

    def _followed_layouts(self) -> list[StreamLayout]:
        """Layouts of the followed streams; one without labels of its own waits a little to be found."""
        deadline = time.monotonic() + _FIND_S
        waiting = [source for source in self.followed if source.channel_labels is None]
        while waiting and time.monotonic() < deadline and not self.stop_requested.is_set():
            waiting = [
                source for source in waiting if not source.stream.look() and source.stream.problem is None
            ]
            time.sleep(0.05)
        layouts, kept = [], []
        for source in self.followed:
            stream = source.stream
            labels = source.channel_labels
            if labels is None and stream.following:
                n = stream.spec.channels
                labels = described_channel_labels(stream.info, n, [f"{source.name}{i:03d}" for i in range(n)])
            if labels is None:
                identity = stream.spec.name or stream.spec.type
                self.notes.append(
                    stream.problem
                    or f"{stream.role} stream {identity!r} was not there as the recording began: not recorded"
                )
                stream.close()
                continue
            dtype = str if stream.text else np.float64
            layouts.append(
                StreamLayout(
                    source.name,
                    source.kind,
                    stream.spec.channels,
                    stream.spec.rate,
                    labels,
                    source.units,
                    dtype,
                )
            )
            kept.append(source)
        self.followed = kept
        return layouts

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
        for source in self.followed:
            pulled = source.stream.poll()
            if pulled is not None:
                self.writer.append(source.name, *pulled)
            if source.stream.problem is not None and source.stream.problem not in self.notes:
                self.notes.append(source.stream.problem)
                self._write_note(source.stream.problem)
        events, self.events_cursor, _ = self.events.since(self.events_cursor)
        if events:
            self.writer.append(
                "events",
                np.array([[text] for _, text in events], dtype=object),
                np.array([t for t, _ in events]),
            )

    def followed_samples(self) -> dict[str, int]:
        """Samples taken so far of each optional stream the file holds."""
        return {source.name: source.stream.samples for source in self.followed}

    def _write_note(self, text: str) -> None:
        self.writer.append("events", np.array([[text]], dtype=object), [self.clock()])

    def stop(self) -> None:
        """Write what is left, close the file and end the thread."""
        self.stop_requested.set()
        self.join()
