"""The in-memory Session model: named, timestamped streams plus metadata.

Every source of data (the simulator, the importers, the live recorder) builds a
:class:`Session`; :mod:`rtbci.io.store` writes and reads it as HDF5.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

__all__ = ["Session", "SessionMeta", "Stream", "StreamKind"]


class StreamKind(StrEnum):
    """What a stream holds."""

    SPIKES = "spikes"  # threshold-crossing counts per electrode per sample
    LFP = "lfp"  # field potential per electrode
    KINEMATICS = "kinematics"  # behavior: positions, velocities, targets
    TASK = "task"  # the cursor task's stream, one row per decoded bin (rtbci.task.stream.TASK_CHANNELS)
    MARKERS = "markers"  # irregular string events
    SPIKE_EVENTS = "spike_events"  # one row per spike (channel, unit) at its exact time; from imports
    ANALOG = "analog"  # other continuous channels (e.g. analog inputs)
    FEATURES = "features"  # per-bin features the decoder saw
    DECODED = "decoded"  # per-bin decoder output
    TIMING = "timing"  # per-bin latency trace


@dataclass
class Stream:
    """One stream of samples with their LSL timestamps.

    Attributes
    ----------
    name
        Unique within the session.
    kind
        What the stream holds.
    data
        ``(n_samples, n_channels)``; numeric, or ``str`` for markers.
    timestamps
        ``(n_samples,)`` float64 seconds on the LSL clock.
    rate
        Nominal sampling rate in Hz; 0 for an irregular stream.
    channel_labels
        One label per channel.
    units
        Physical units of ``data`` (e.g. ``"count"``, ``"uV"``, ``"m/s"``).
    chunk_sizes
        Sizes of the chunks the samples arrived in, when known; replay keeps
        this chunking. Sums to ``n_samples``.
    """

    name: str
    kind: StreamKind
    data: np.ndarray
    timestamps: np.ndarray
    rate: float
    channel_labels: list[str]
    units: str = ""
    chunk_sizes: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.kind = StreamKind(self.kind)
        self.timestamps = np.asarray(self.timestamps, dtype=np.float64)
        if self.data.ndim != 2:
            raise ValueError(f"stream {self.name!r}: data must be 2-D, got shape {self.data.shape}")
        if self.data.shape[1] == 0:
            raise ValueError(f"stream {self.name!r}: has no channels (data shape {self.data.shape})")
        if self.timestamps.shape != (self.data.shape[0],):
            raise ValueError(
                f"stream {self.name!r}: {self.data.shape[0]} samples but "
                f"{self.timestamps.shape[0]} timestamps"
            )
        if len(self.channel_labels) != self.data.shape[1]:
            raise ValueError(
                f"stream {self.name!r}: {self.data.shape[1]} channels but "
                f"{len(self.channel_labels)} channel labels"
            )
        if self.chunk_sizes is not None:
            self.chunk_sizes = np.asarray(self.chunk_sizes, dtype=np.int64)
            if int(self.chunk_sizes.sum()) != self.data.shape[0]:
                raise ValueError(
                    f"stream {self.name!r}: chunk sizes sum to {int(self.chunk_sizes.sum())}, "
                    f"not {self.data.shape[0]} samples"
                )

    @property
    def n_samples(self) -> int:
        """Number of samples."""
        return int(self.data.shape[0])

    @property
    def n_channels(self) -> int:
        """Number of channels."""
        return int(self.data.shape[1])

    @property
    def duration(self) -> float:
        """Seconds from the first to the last timestamp (0 when empty)."""
        if self.n_samples == 0:
            return 0.0
        return float(self.timestamps[-1] - self.timestamps[0])


@dataclass
class SessionMeta:
    """Who, what and where a session came from.

    Attributes
    ----------
    subject, session_id, task
        Identify the recording; ``session_id`` keys the decoder's context table.
    date
        ISO 8601 date or time of the recording.
    channel_regions
        Region or array name of every electrode ('' where unknown).
    provenance
        Free-form strings: the tool and version that made it, the source file,
        the simulator seed, and so on.
    bin_epoch
        Where the engine placed its bin grid on the LSL clock (bin ``i`` covers
        ``[bin_epoch + i·w, bin_epoch + (i+1)·w)``); None for a recording the
        engine did not make. ``featurize()`` uses it, so offline features are
        the ones the engine computed.
    """

    subject: str
    session_id: str
    task: str = ""
    date: str = ""
    channel_regions: list[str] = field(default_factory=list)
    provenance: dict[str, str] = field(default_factory=dict)
    bin_epoch: float | None = None


@dataclass
class Session:
    """A recording: metadata plus streams keyed by name."""

    meta: SessionMeta
    streams: dict[str, Stream] = field(default_factory=dict)

    def add(self, stream: Stream) -> None:
        """Add a stream; its name must be new."""
        if stream.name in self.streams:
            raise ValueError(f"session already has a stream named {stream.name!r}")
        self.streams[stream.name] = stream

    def of_kind(self, kind: StreamKind | str) -> list[Stream]:
        """All streams of one kind, in insertion order."""
        kind = StreamKind(kind)
        return [stream for stream in self.streams.values() if stream.kind == kind]

    def first(self, kind: StreamKind | str) -> Stream:
        """The first stream of a kind.

        Raises
        ------
        KeyError
            Naming the kind and the streams that are there.
        """
        found = self.of_kind(kind)
        if not found:
            have = ", ".join(f"{s.name} ({s.kind})" for s in self.streams.values()) or "none"
            raise KeyError(f"session {self.meta.session_id!r} has no {kind} stream; it has: {have}")
        return found[0]

    def replace_meta(self, **changes: object) -> Session:
        """A shallow copy with some metadata fields changed."""
        return Session(dataclasses.replace(self.meta, **changes), dict(self.streams))
