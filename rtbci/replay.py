"""Play a Session file as live LSL streams: real time, N times faster, or as fast as possible.

Every stream of the file becomes an LSL outlet and is pushed in its original
chunks. Sample timestamps are re-stamped onto the current LSL clock (the
spacing between samples is kept exactly), so an engine that reads the streams
sees a live rig.

Timestamps move by a whole number of seconds, which keeps the recording's
chunk boundaries in the same phase against the engine's bin grid.

Timing is drift-free by construction: the push time of every chunk is an
absolute target, ``start + (t_last_sample - t_first) / speed`` on the LSL clock,
never "sleep one chunk period after the previous push". Late pushes therefore
do not add up, and the player's lateness is measured for every chunk.

At a speed other than 1 the samples keep their original spacing, so their
timestamps run ahead of the LSL clock; latency figures only mean something at
speed 1.
"""

from __future__ import annotations

import ctypes
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from rtbci.io.session import Session, Stream, StreamKind
from rtbci.lsl import require_pylsl
from rtbci.lsl.info import channel_format_for, make_stream_info
from rtbci.profile import Profile, StreamSpec
from rtbci.replay_follow import OutputFollower

__all__ = ["OutletIdentity", "ReplayOptions", "ReplayReport", "SessionPlayer", "outlet_identities"]

# Streams without a recorded chunking are pushed in chunks of this length.
_DEFAULT_CHUNK_S = 0.010
# The first chunk is due this long after the player starts, so it is not late by construction.
_START_LEAD_S = 0.05
# How much before a target the player stops sleeping and spins; covers the kernel's timer slack.
_SPIN_S = 0.0002


@dataclass(frozen=True)
class OutletIdentity:
    """The LSL name, type and source_id a replayed stream is published under."""

    name: str
    type: str
    source_id: str


@dataclass(frozen=True)
class ReplayOptions:
    """How to play a Session.

    Attributes
    ----------
    speed
        Playback speed; 1 is real time, ``None`` is as fast as possible.
    loop
        Start again at the end (timestamps keep increasing).
    seconds
        Stop after this many seconds of wall time; ``None`` plays to the end (forever with ``loop``).
    media_seconds
        Stop after this many seconds of recorded time (looping as needed).
    progress
        Show a tqdm progress bar.
    """

    speed: float | None = 1.0
    loop: bool = False
    seconds: float | None = None
    media_seconds: float | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.speed is not None and not self.speed > 0:
            raise ValueError(f"replay speed must be > 0 (or None for max), got {self.speed}")


@dataclass
class ReplayReport:
    """What a replay did.

    Attributes
    ----------
    chunks, samples
        Pushed per stream name.
    loops
        Completed passes over the file.
    lateness_s
        Push time minus target time of every chunk (speed-controlled replays only).
    push_times, target_times
        LSL clock of every push and its target, in push order.
    wall_s
        Wall time of the whole replay.
    media_s
        Seconds of recorded time played.
    last_timestamp
        Re-stamped LSL time of the last sample pushed.
    """

    chunks: dict[str, int] = field(default_factory=dict)
    samples: dict[str, int] = field(default_factory=dict)
    loops: int = 0
    push_times: np.ndarray = field(default_factory=lambda: np.empty(0))
    target_times: np.ndarray = field(default_factory=lambda: np.empty(0))
    wall_s: float = 0.0
    media_s: float = 0.0
    last_timestamp: float = 0.0

    @property
    def lateness_s(self) -> np.ndarray:
        """Push time minus target time, per chunk."""
        return self.push_times - self.target_times

    def drift_s(self, window: int = 1000) -> float:
        """Median lateness of the last ``window`` pushes minus that of the first ``window``.

        Medians of blocks ignore single scheduler hiccups; what remains is the
        slow accumulation that a relative-sleep player suffers from.
        """
        lateness = self.lateness_s
        if lateness.size == 0:
            return 0.0
        window = max(1, min(window, lateness.size // 2 or 1))
        return float(np.median(lateness[-window:]) - np.median(lateness[:window]))


def _identity_from_spec(spec: StreamSpec, fallback: str) -> OutletIdentity:
    return OutletIdentity(
        name=spec.name or fallback,
        type=spec.type or fallback,
        source_id=spec.source_id or f"{spec.name or fallback}-replay",
    )


def outlet_identities(
    session: Session, profile: Profile | None = None, prefix: str = "rtbci-replay-"
) -> dict[str, OutletIdentity]:
    """How each stream of a Session is published.

    With a profile, the first spikes, LFP and kinematics streams take the
    profile's identities, so an engine with that profile finds them. Every
    other stream is published as ``prefix + stream name``.

    Parameters
    ----------
    session
        The Session to play.
    profile
        Optional rig profile.
    prefix
        Name prefix for streams the profile does not describe.

    Returns
    -------
    dict
        Stream name -> identity.
    """
    identities: dict[str, OutletIdentity] = {}
    if profile is not None:
        by_kind = {
            StreamKind.SPIKES: profile.streams.spikes,
            StreamKind.LFP: profile.streams.lfp,
            StreamKind.KINEMATICS: profile.streams.behavior,
        }
        for kind, spec in by_kind.items():
            found = session.of_kind(kind)
            if spec is not None and found:
                identities[found[0].name] = _identity_from_spec(spec, found[0].name)
    for stream in session.streams.values():
        if stream.name not in identities:
            name = f"{prefix}{stream.name}"
            identities[stream.name] = OutletIdentity(
                name, str(stream.kind), f"{name}-{session.meta.session_id}"
            )
    return identities


def _chunk_bounds(stream: Stream) -> np.ndarray:
    """Start offsets of every chunk plus the end, from the recorded chunking."""
    if stream.chunk_sizes is not None:
        sizes = stream.chunk_sizes
    else:
        per_chunk = max(1, round(stream.rate * _DEFAULT_CHUNK_S)) if stream.rate > 0 else 1
        sizes = np.full(-(-stream.n_samples // per_chunk), per_chunk, dtype=np.int64)
        sizes[-1] = stream.n_samples - per_chunk * (len(sizes) - 1)
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)


class _Pace:
    """When each chunk is due: real time until ``realtime_until`` is set (if given), then ``speed``.

    The switch re-anchors the schedule at the chunk being played, so the push times
    change pace without a jump; ``speed`` None is as fast as possible.
    """

    def __init__(self, speed: float | None, realtime_until: threading.Event | None) -> None:
        self.speed = speed
        self.realtime_until = realtime_until
        self.realtime = realtime_until is not None and not realtime_until.is_set()
        self.anchor_time: float | None = None
        self.anchor_media = 0.0

    def target(self, start: float, media_t: float, clock: Callable[[], float]) -> float:
        if self.realtime:
            if not self.realtime_until.is_set():
                return start + media_t
            self.realtime = False
            self.anchor_time, self.anchor_media = clock(), media_t
        if self.speed is None:
            return clock()
        if self.anchor_time is None:
            return start + media_t / self.speed
        return self.anchor_time + (media_t - self.anchor_media) / self.speed


@dataclass
class _Schedule:
    """Every chunk of every stream, in the order their last samples were recorded."""

    stream: np.ndarray  # index into the stream list
    start: np.ndarray
    stop: np.ndarray
    due: np.ndarray  # recorded time of the chunk's last sample, relative to the file start

    @classmethod
    def build(cls, streams: list[Stream], t_first: float) -> _Schedule:
        parts = []
        for index, stream in enumerate(streams):
            bounds = _chunk_bounds(stream)
            starts, stops = bounds[:-1], bounds[1:]
            keep = stops > starts
            starts, stops = starts[keep], stops[keep]
            due = stream.timestamps[stops - 1] - t_first
            parts.append((np.full(len(starts), index), starts, stops, due))
        stream_index, starts, stops, due = (np.concatenate(column) for column in zip(*parts, strict=True))
        order = np.argsort(due, kind="stable")
        return cls(stream_index[order], starts[order], stops[order], due[order])


class _Outlet:
    """One LSL outlet that pushes numpy chunks with per-sample timestamps and no Python conversion."""

    def __init__(self, stream: Stream, identity: OutletIdentity) -> None:
        pylsl = require_pylsl()
        self.stream = stream
        fmt = channel_format_for(stream.data.dtype)
        info = make_stream_info(
            identity.name,
            identity.type,
            identity.source_id,
            stream.channel_labels,
            stream.units,
            stream.rate,
            fmt,
        )
        self.outlet = pylsl.StreamOutlet(info)
        self.is_string = fmt == "string"
        if not self.is_string:
            self.values = np.ascontiguousarray(stream.data, dtype=self.outlet.np_dtype)
        self.timestamps = np.empty(max(1, stream.n_samples), dtype=np.float64)
        self._pushthrough = ctypes.c_int(1)

    def restamp(self, shift: float) -> None:
        """New timestamps for the whole stream: recorded time plus ``shift``."""
        np.add(self.stream.timestamps, shift, out=self.timestamps[: self.stream.n_samples])

    def push(self, start: int, stop: int) -> None:
        if self.is_string:
            self.outlet.push_chunk(
                self.stream.data[start:stop].tolist(), self.timestamps[start:stop].tolist()
            )
            return
        block = self.values[start:stop]
        self.outlet.do_push_chunk_n(
            self.outlet.obj,
            ctypes.c_void_p(block.ctypes.data),
            ctypes.c_ulong(block.size),
            ctypes.c_void_p(self.timestamps[start:stop].ctypes.data),
            self._pushthrough,
        )


class SessionPlayer:
    """Publishes every stream of a Session as an LSL outlet and plays it.

    Parameters
    ----------
    session
        What to play; streams with no samples are skipped.
    identities
        Stream name -> LSL identity (see :func:`outlet_identities`).

    Examples
    --------
    >>> player = SessionPlayer(read_session("rec.h5"), outlet_identities(session, profile))
    >>> report = player.run(ReplayOptions(speed=1.0))
    """

    def __init__(self, session: Session, identities: dict[str, OutletIdentity]) -> None:
        self.streams = [stream for stream in session.streams.values() if stream.n_samples]
        if not self.streams:
            raise ValueError(f"session {session.meta.session_id!r} has no samples to replay")
        self.identities = identities
        self.t_first = min(float(stream.timestamps[0]) for stream in self.streams)
        t_last = max(float(stream.timestamps[-1]) for stream in self.streams)
        rates = [stream.rate for stream in self.streams if stream.rate > 0]
        # One pass lasts the recording plus one sample of the fastest stream, so a looped
        # regular stream stays regular across the seam.
        self.period_s = (t_last - self.t_first) + (1.0 / max(rates) if rates else 0.0)
        self.schedule = _Schedule.build(self.streams, self.t_first)
        self.outlets = [_Outlet(stream, identities[stream.name]) for stream in self.streams]

    def wait_for_consumers(self, timeout: float, names: list[str] | None = None) -> bool:
        """Block until the named streams (all by default) have a consumer, or the timeout ends."""
        deadline = time.monotonic() + timeout
        for outlet in self.outlets:
            if names is None or outlet.stream.name in names:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not outlet.outlet.wait_for_consumers(remaining):
                    return False
        return True

    def run(
        self,
        options: ReplayOptions,
        stop: threading.Event | None = None,
        on_push: Callable[[int, int], None] | None = None,
        follow: OutputFollower | None = None,
        realtime_until: threading.Event | None = None,
    ) -> ReplayReport:
        """Play until the end of the file (or forever with ``loop``), ``seconds`` pass, or ``stop`` is set.

        Parameters
        ----------
        options
            Speed, looping, duration and progress bar.
        stop
            Set it from another thread to end the replay early.
        on_push
            Called with (stream index, samples) after every push; for tests and monitoring.
        follow
            Hold every push until the decoder's output is close enough behind it (see
            :class:`rtbci.replay_follow.OutputFollower`): as fast as the decoder, never faster.
            Not applied while the replay still plays in real time (see ``realtime_until``).
        realtime_until
            Play in real time until this event is set, then at ``options.speed``, on one
            continuous timeline: a consumer that needs live data to start (the engine places
            its bin grid on the samples) gets it, and sees no jump when the speed changes.

        Returns
        -------
        ReplayReport
        """
        pylsl = require_pylsl()
        clock = pylsl.local_clock
        stop = stop or threading.Event()
        schedule = self.schedule
        n_chunks = len(schedule.due)
        logged: list[np.ndarray] = []
        report = ReplayReport(
            chunks=dict.fromkeys((s.name for s in self.streams), 0),
            samples=dict.fromkeys((s.name for s in self.streams), 0),
        )
        chunk_counts = np.zeros(len(self.streams), dtype=np.int64)
        sample_counts = np.zeros(len(self.streams), dtype=np.int64)
        pace = _Pace(options.speed, realtime_until)
        began = clock()
        # The file's timestamps move by a whole number of seconds, so its chunks keep their phase
        # against the bin grid (bins are numbered from LSL time 0): a recording whose chunks end
        # on bin edges still does after re-stamping.
        start = self.t_first + math.ceil(began + _START_LEAD_S - self.t_first)
        end_at = None if options.seconds is None else began + options.seconds
        bar = tqdm(total=round(self.period_s, 1), unit="s", desc="replay", disable=not options.progress)
        pass_index = 0
        finished = False
        while not finished:
            offset = pass_index * self.period_s
            for outlet in self.outlets:
                outlet.restamp(start - self.t_first + offset)
            pushes = np.empty(n_chunks)
            targets = np.empty(n_chunks)
            done = 0
            shown = 0.0
            for k in range(n_chunks):
                if stop.is_set():
                    finished = True
                    break
                media_t = schedule.due[k] + offset
                target = pace.target(start, media_t, clock)
                past_media_end = options.media_seconds is not None and media_t > options.media_seconds
                if past_media_end or (end_at is not None and target > end_at):
                    finished = True
                    break
                self._wait_until(target, clock, stop)
                if follow is not None and not pace.realtime:
                    follow.wait(start + media_t, stop)
                index = schedule.stream[k]
                self.outlets[index].push(schedule.start[k], schedule.stop[k])
                pushes[k] = clock()
                targets[k] = target
                done = k + 1
                chunk_counts[index] += 1
                sample_counts[index] += schedule.stop[k] - schedule.start[k]
                if on_push is not None:
                    on_push(int(index), int(schedule.stop[k] - schedule.start[k]))
                if schedule.due[k] - shown >= 0.5:
                    bar.update(round(schedule.due[k] - shown, 1))
                    shown = schedule.due[k]
                report.media_s = media_t
                report.last_timestamp = start + media_t
            logged.append(np.stack([pushes[:done], targets[:done]]))
            if done == n_chunks:
                report.loops += 1
            pass_index += 1
            finished = finished or not options.loop
            if not finished:
                bar.reset()
                bar.set_description(f"replay (pass {pass_index + 1})")
        bar.close()
        if follow is not None:
            follow.finish(report.last_timestamp, stop)
        for index, stream in enumerate(self.streams):
            report.chunks[stream.name] = int(chunk_counts[index])
            report.samples[stream.name] = int(sample_counts[index])
        both = np.concatenate(logged, axis=1)
        report.push_times, report.target_times = both[0], both[1]
        report.wall_s = clock() - began
        return report

    @staticmethod
    def _wait_until(target: float, clock: Callable[[], float], stop: threading.Event) -> None:
        """Sleep until shortly before ``target``, then spin to it: lateness stays in tens of µs."""
        while True:
            remaining = target - clock()
            if remaining <= 0:
                return
            if remaining > _SPIN_S:
                # A long wait is cut into slices so that ``stop`` is noticed.
                if stop.wait(min(remaining - _SPIN_S, 0.1)):
                    return
            # else: spin for the last fraction of a millisecond
