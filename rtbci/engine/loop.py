"""The decode thread: LSL chunks in, bins through the backend, one output sample per bin out.

Nothing slow runs here: no file I/O, no plotting, no printing. The thread
warms the backend up before it serves, and runs with Python's cyclic garbage
collector switched off (collecting only the young generation when the next bin
is far away), so that a collection pause never lands on a bin.
"""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from rtbci.engine.align import AlignedBin, BinAligner
from rtbci.engine.events import EventLog
from rtbci.engine.postprocess import PostProcessor
from rtbci.engine.records import FLAG_CLOCK_RESET, FLAG_OVERDUE
from rtbci.engine.ring import ChunkRing, RecordRing
from rtbci.lsl.inlet import LslInput
from rtbci.lsl.outlet import KinematicsOutlet
from rtbci.signal.grid import first_complete_index, grid_epoch

__all__ = ["Backend", "DecodeLoop", "EngineInput", "Featurizer"]

# Longest single wait for data, so that a stop request is seen promptly.
_MAX_WAIT_S = 0.005
# A timestamp step larger than this (forwards or backwards) restarts the input's featurizer,
# instead of letting it fill the gap with empty bins.
_JUMP_S = 1.0
# Featurizer health counters that add up across a featurizer restart.
_FEATURIZER_COUNTERS = ("samples", "nan_total", "backwards_timestamps", "late_samples", "gaps", "empty_bins")
# Young-generation garbage is collected every this many bins, and only with this much slack.
_GC_EVERY_BINS = 500
_GC_SLACK_S = 0.008
# An input's chunk allowance is the longest chunk among its last this many pulls.
_ALLOWANCE_PULLS = 32
# No input is allowed chunks longer than this: beyond it, silence is an outage.
_MAX_ALLOWANCE_S = 1.0
# A source whose newest sample is stamped this much before it is read has a timestamp problem.
_SOURCE_LAG_WARN_S = 1.0


class Backend(Protocol):
    """What the engine needs from a decoder backend (see :mod:`rtbci.runtime`)."""

    def reset(self) -> None: ...

    def step(self, features: np.ndarray) -> np.ndarray: ...

    def info(self) -> dict: ...


class Featurizer(Protocol):
    """A streaming featurizer from :mod:`rtbci.signal`."""

    value_shape: tuple[int, ...]

    def push(self, samples: np.ndarray, timestamps: np.ndarray): ...

    def reset(self) -> None: ...

    @property
    def health(self) -> dict: ...


@dataclass
class EngineInput:
    """One input stream with its featurizer, and the ring the recorder reads its raw chunks from.

    Attributes
    ----------
    timestamp_jumps
        Timestamp steps of more than a second, after which the featurizer restarted.
    health_before_restarts
        Featurizer counters summed over the restarts (a restart zeroes them).
    """

    source: LslInput
    featurizer: Featurizer
    raw: ChunkRing | None = None
    last_timestamp: float | None = None
    last_read: float = 0.0
    timestamp_jumps: int = 0
    skipped_at_start: int = 0
    health_before_restarts: dict[str, int] = field(default_factory=dict)
    # Bins before this index start before the input's first sample (partial); None before it.
    first_index: int | None = None
    chunk_spans: np.ndarray = field(default_factory=lambda: np.zeros(_ALLOWANCE_PULLS))
    pulls: int = 0
    outages: int = 0
    outage_s: float = 0.0
    outage_since: float | None = None
    source_lag_s: float | None = None
    timestamp_warnings: int = 0
    last_timestamp_warning: str | None = None

    def health(self) -> dict:
        """Featurizer health counters, cumulative over restarts, plus connection and timing counters.

        ``waiting`` is true until the input's first sample; ``outages`` counts
        silences longer than a bin plus its chunk allowance plus the late
        deadline (by then a bin of it is late), and
        ``outage_s`` sums their length (a running one included up to its last
        check); ``source_lag_ms`` is read time minus the newest sample's
        timestamp for the last chunk, and ``timestamp_warning`` says when that
        was negative (stamps ahead of the clock) or over a second;
        ``timestamp_warnings`` counts such episodes and ``last_timestamp_warning``
        keeps the newest one's text.
        """
        current = self.featurizer.health
        totals = {key: current[key] + self.health_before_restarts.get(key, 0) for key in _FEATURIZER_COUNTERS}
        lag = self.source_lag_s
        totals.update(
            state="waiting" if self.last_timestamp is None else str(self.source.state),
            waiting=self.last_timestamp is None,
            reconnects=self.source.reconnects,
            timestamp_jumps=self.timestamp_jumps,
            skipped_at_start=self.skipped_at_start,
            last_timestamp=self.last_timestamp,
            stream=self.source.stream_name,
            raw_overflow_chunks=self.raw.overflow_chunks if self.raw is not None else 0,
            chunk_allowance_ms=float(self.chunk_spans.max() * 1e3),
            outages=self.outages,
            in_outage=self.outage_since is not None,
            outage_s=self.outage_s,
            source_lag_ms=None if lag is None else lag * 1e3,
            timestamp_warning=timestamp_warning(self.source.stream_name, lag),
            timestamp_warnings=self.timestamp_warnings,
            last_timestamp_warning=self.last_timestamp_warning,
        )
        return totals

    def restart_featurizer(self) -> None:
        """Zero the featurizer after a timestamp jump, keeping its counters."""
        totals = self.health()
        self.health_before_restarts = {key: totals[key] for key in _FEATURIZER_COUNTERS}
        self.featurizer.reset()


def _suspicious_lag(source_lag_s: float | None) -> bool:
    return source_lag_s is not None and (source_lag_s < 0.0 or source_lag_s > _SOURCE_LAG_WARN_S)


def timestamp_warning(stream: str, source_lag_s: float | None) -> str | None:
    """The warning for a source whose stamps do not fit its arrival, or None.

    Parameters
    ----------
    stream
        The stream's name, which the warning names.
    source_lag_s
        Read time minus the newest sample's timestamp of the last chunk.
    """
    if not _suspicious_lag(source_lag_s):
        return None
    if source_lag_s < 0.0:
        return (
            f"stream {stream!r} stamps samples {-source_lag_s * 1e3:.1f} ms ahead of their arrival: "
            "source latency is not meaningful"
        )
    return (
        f"stream {stream!r} delivers samples {source_lag_s:.1f} s after their timestamps: "
        "check the source's clock or stamping"
    )


@dataclass
class LoopCounters:
    """What the decode thread counts; read by the status line and the final report."""

    decoded: int = 0
    overdue: int = 0
    gc_runs: int = 0
    scheduling: str = "default"
    errors: list[str] = field(default_factory=list)


class DecodeLoop(threading.Thread):
    """The decode thread.

    Parameters
    ----------
    inputs
        The input streams, in the aligner's order.
    aligner
        The bin clock.
    model_input
        Which input feeds the backend.
    backend
        Has ``step(features) -> kinematics``.
    post
        Post-processing of each decoded bin.
    outlet
        The LSL output.
    records
        Where every decoded bin's record is published.
    clock
        The LSL clock (``pylsl.local_clock``).
    warmup_steps
        Backend steps on zeros before serving (then the backend is reset).
    realtime_priority
        Run the thread under the kernel's real-time FIFO policy at this priority
        (1-99), so that other processes cannot delay it; None keeps the default policy.
    """

    def __init__(
        self,
        inputs: list[EngineInput],
        aligner: BinAligner,
        model_input: int,
        backend: Backend,
        post: PostProcessor,
        outlet: KinematicsOutlet,
        records: RecordRing,
        clock: Callable[[], float],
        warmup_steps: int = 50,
        realtime_priority: int | None = None,
    ) -> None:
        super().__init__(name="rtbci-decode", daemon=True)
        self.realtime_priority = realtime_priority
        self.inputs = inputs
        self.aligner = aligner
        self.model_input = model_input
        self.backend = backend
        self.post = post
        self.outlet = outlet
        self.records = records
        self.clock = clock
        self.warmup_steps = warmup_steps
        self.counters = LoopCounters()
        # The bin grid is placed on the first sample that arrives (rtbci.signal.grid); until then
        # the engine waits, however long a rig's outlet takes to start sending.
        self.epoch: float | None = None
        self.fastest_rate = max(engine_input.source.rate for engine_input in inputs)
        # Outages, timestamp warnings, output arm/hold changes and position resets, for the status
        # and the recorder.
        self.events = EventLog()
        self._output_enabled = post.enabled
        self._position_resets = post.position_resets
        # The input whose counts the records carry beside the decoder's input (None: not carried).
        self._spike_input = None
        if "spikes" in records.records.dtype.names:
            self._spike_input = next(k for k, i in enumerate(inputs) if i.source.role == "spikes")
        self.stop_requested = threading.Event()
        self.ready = threading.Event()

    def warm_up(self) -> None:
        """Run the backend and featurizers on zeros so that first-call costs are paid now."""
        shape = self.aligner.inputs[self.model_input].values.shape[1:]
        zeros = np.zeros(shape, dtype=np.float32)
        for _ in range(self.warmup_steps):
            self.post.process(self.backend.step(zeros))
        self.backend.reset()
        self.post.reset()
        for engine_input in self.inputs:
            source = engine_input.source
            period = 1.0 / source.rate if source.rate > 0 else 0.001
            fake_times = np.arange(64) * period
            engine_input.featurizer.push(np.zeros((64, source.n_channels), source.dtype), fake_times)
            engine_input.featurizer.reset()

    def _set_scheduling(self) -> None:
        if self.realtime_priority is None:
            return
        try:
            os.sched_setscheduler(
                threading.get_native_id(), os.SCHED_FIFO, os.sched_param(self.realtime_priority)
            )
            self.counters.scheduling = f"SCHED_FIFO {self.realtime_priority}"
        except (OSError, AttributeError) as error:  # not permitted (needs CAP_SYS_NICE) or not Linux
            self.counters.scheduling = f"default (real-time priority refused: {error})"

    def run(self) -> None:
        try:
            self._set_scheduling()
            self.warm_up()
            gc.collect()
            gc.freeze()
            gc.disable()
            # Samples queued while warming up (a source that was already running) are stale by now:
            # that backlog is skipped once, and counted; serving starts from fresh data.
            for engine_input in self.inputs:
                engine_input.skipped_at_start += engine_input.source.drop_queued()
            self.ready.set()
            self._serve()
        except Exception as error:  # surfaced by the engine, which owns the user-facing report
            self.counters.errors.append(f"{type(error).__name__}: {error}")
            self.ready.set()
            raise
        finally:
            gc.enable()
            gc.unfreeze()

    def _serve(self) -> None:
        aligner = self.aligner
        stop = self.stop_requested
        while not stop.is_set():
            for k in range(len(self.inputs)):
                self._pull(k, 0.0)
            # One bin per pass: every input is pulled again before the next bin is judged, so a
            # bin is never called late while its data waits in an inlet (after a slow step).
            ready = aligner.pop(self.source_now())
            if ready is not None:
                self._decode(ready)
                continue
            self._check_outages()
            waiting = aligner.waiting_for()
            deadline = aligner.next_deadline()
            if deadline is None:
                timeout = _MAX_WAIT_S
            else:
                timeout = min(max(deadline - self.source_now(), 0.0), _MAX_WAIT_S)
            if waiting is not None and timeout > 0.0:
                self._pull(waiting, timeout)
            elif waiting is None and timeout > 0.0:
                stop.wait(timeout)

    def source_now(self) -> float:
        """The inputs' clock now: each input's newest timestamp advanced by the time since it was
        read, and the earliest of those.

        Deadlines are kept on this clock rather than on ours, so that a source whose
        timestamps jumped, were reset, or run ahead (a replay faster than real time)
        is still given the same time to deliver a bin, instead of every bin since
        being due at once. A silent input's estimate advances with our clock, so
        deadlines keep firing while it is gone. The earliest input sets the pace:
        when the inputs' clocks step one after the other, nothing is decoded
        against the one that stepped first.
        """
        now = self.clock()
        earliest = None
        for engine_input in self.inputs:
            if engine_input.last_timestamp is not None:
                estimate = engine_input.last_timestamp + (now - engine_input.last_read)
                earliest = estimate if earliest is None or estimate < earliest else earliest
        return now if earliest is None else earliest

    def _place_grid(self, first_timestamp: float) -> None:
        """Place the bin grid on the first sample of any input (the same rule as ``featurize()``)."""
        self.epoch = grid_epoch(first_timestamp, self.fastest_rate)
        self.aligner.epoch = self.epoch
        for engine_input in self.inputs:
            engine_input.featurizer.set_epoch(self.epoch)

    def _check_outages(self) -> None:
        """Start an outage for each input silent longer than a bin, its chunk allowance and the deadline."""
        now = self.clock()
        for engine_input, store in zip(self.inputs, self.aligner.inputs, strict=True):
            if engine_input.outage_since is not None or engine_input.last_timestamp is None:
                continue
            # By then the input's next bin has missed its deadline, however it chunks (the allowance
            # is the one the last pull gave the aligner: not recomputed on every idle pass).
            allowed = self.aligner.bin_s + store.allowance_s + self.aligner.deadline_s
            if now - engine_input.last_read > allowed:
                engine_input.outage_since = engine_input.last_read
                engine_input.outages += 1
                source = engine_input.source
                self.events.add(now, f"outage start {source.role} {source.stream_name}")

    def _end_outage(self, engine_input: EngineInput, t_read: float) -> None:
        duration = t_read - engine_input.outage_since
        engine_input.outage_s += duration
        engine_input.outage_since = None
        source = engine_input.source
        self.events.add(t_read, f"outage end {source.role} {source.stream_name} {duration:.3f} s")
        # A new outlet with the same source_id may have taken over (liblsl reconnects by itself).
        engine_input.source.check_for_new_outlet()

    def _pull(self, k: int, timeout: float) -> None:
        engine_input = self.inputs[k]
        source = engine_input.source
        n = source.pull(timeout)
        if n == 0:
            return
        t_read = self.clock()
        data = source.data[:n]
        timestamps = source.timestamps[:n]
        if self.epoch is None:
            self._place_grid(float(timestamps[0]))
        if engine_input.outage_since is not None:
            self._end_outage(engine_input, t_read)
        previous = engine_input.last_timestamp
        if previous is not None and abs(timestamps[0] - previous) > _JUMP_S:
            engine_input.timestamp_jumps += 1
            engine_input.restart_featurizer()
            engine_input.first_index = None  # the restarted featurizer's first bin is partial again
        if engine_input.first_index is None:
            engine_input.first_index = first_complete_index(
                self.epoch, self.aligner.bin_s, float(timestamps[0]), source.rate
            )
        engine_input.last_timestamp = float(timestamps[n - 1])
        engine_input.last_read = t_read
        span = min(n / source.rate, _MAX_ALLOWANCE_S)
        engine_input.chunk_spans[engine_input.pulls % _ALLOWANCE_PULLS] = span
        engine_input.pulls += 1
        store = self.aligner.inputs[k]
        store.allowance_s = float(engine_input.chunk_spans.max())
        lag = t_read - engine_input.last_timestamp
        if _suspicious_lag(lag) and not _suspicious_lag(engine_input.source_lag_s):
            # Only when the stamps turn suspicious: no text is made per chunk on this thread.
            warning = timestamp_warning(source.stream_name, lag)
            engine_input.timestamp_warnings += 1
            engine_input.last_timestamp_warning = warning
            self.events.add(t_read, warning)
        engine_input.source_lag_s = lag
        raw = engine_input.raw  # read once: recording may be switched off from another thread
        if raw is not None:
            raw.write(data, timestamps)
        bins = engine_input.featurizer.push(data, timestamps)
        for j in range(len(bins.index)):
            if bins.index[j] < engine_input.first_index:
                continue  # the input's first bin began before its first sample: partial
            # The bin's last sample: the newest timestamp before the bin's end (in this chunk or before).
            last = int(timestamps.searchsorted(bins.end_times[j])) - 1
            t_last = timestamps[last] if last >= 0 else (previous if previous is not None else timestamps[0])
            store.add(int(bins.index[j]), bins.values[j], float(t_last), t_read)

    def _decode(self, aligned: AlignedBin) -> None:
        clock = self.clock
        t_start = clock()
        features = aligned.values[self.model_input]
        output = self.post.process(self.backend.step(features))
        if self.post.enabled != self._output_enabled:
            # Seen at the first bin the change applies to (the safety stop is set from another thread).
            self._output_enabled = self.post.enabled
            self.events.add(t_start, "output armed" if self._output_enabled else "output held (safety stop)")
        if self.post.position_resets != self._position_resets:
            self._position_resets = self.post.position_resets
            self.events.add(t_start, f"position reset ({self.post.reset_source})")
        t_end = clock()
        self.outlet.push(output, aligned.end_time)
        t_push = clock()
        counters = self.counters
        flags = 0
        # A late bin was completed by its deadline, seen just now, not by a chunk.
        t_read = t_start if aligned.late_mask else aligned.t_read
        if not aligned.late_mask and t_start - t_read > self.aligner.deadline_s:
            # Every input had delivered, but the engine started decoding after the deadline.
            flags |= FLAG_OVERDUE
            counters.overdue += 1
        if aligned.clock_reset:
            flags |= FLAG_CLOCK_RESET
        record = self.records.slot()
        record["seq"] = counters.decoded
        record["index"] = aligned.index
        record["end_time"] = aligned.end_time
        record["t_last_sample"] = aligned.t_last_sample
        record["t_read"] = t_read
        record["t_decode_start"] = t_start
        record["t_decode_end"] = t_end
        record["t_push"] = t_push
        record["late_mask"] = aligned.late_mask
        record["flags"] = flags
        record["gap_bins"] = aligned.gap_bins
        record["output"] = output
        record["features"] = features
        if self._spike_input is not None:
            record["spikes"] = aligned.values[self._spike_input]
        self.records.commit()
        counters.decoded += 1
        if counters.decoded % _GC_EVERY_BINS == 0:
            deadline = self.aligner.next_deadline()
            if deadline is not None and deadline - self.source_now() > _GC_SLACK_S:
                gc.collect(0)
                counters.gc_runs += 1
