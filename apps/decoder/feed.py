"""What the dashboard shows, kept up to date without Qt: records, status, truth and the live figures.

Every tick the feed copies the engine's new per-bin records out of shared memory
(never waiting on the engine) into preallocated rolling float64 arrays; a few
times a second it asks the engine process for its status. Panels only read from here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from apps.decoder.task_feed import TaskFeed
from rtbci.engine.behavior import BehaviorFollower, r2_with_truth
from rtbci.engine.process import EngineDescription, EngineProcess
from rtbci.engine.rolling import RollingBuffer
from rtbci.engine.status import record_latencies
from rtbci.lsl.resolve import StreamMissingError
from rtbci.profile import Profile

__all__ = ["DashboardFeed", "FeedConfig", "InputRates"]


@dataclass(frozen=True)
class FeedConfig:
    """How much history the dashboard keeps and how often it asks for status.

    Attributes
    ----------
    trace_s
        Velocity traces: seconds shown.
    latency_s
        Latency histogram, timeline and percentiles: seconds of bins.
    r2_s
        Live R²: seconds of bins.
    trail_s
        Cursor view: seconds of position trail.
    signal_s
        Signal views: seconds of each bin's decoder-input features kept (traces, channel states).
    status_every_s
        How often the engine's status is requested.
    truth_timeout_s
        How long to look for the behavior stream once the engine has started.
    """

    trace_s: float = 10.0
    latency_s: float = 30.0
    r2_s: float = 30.0
    trail_s: float = 2.0
    signal_s: float = 10.0
    status_every_s: float = 0.25
    truth_timeout_s: float = 1.0


class InputRates:
    """Sample rates of the inputs, from the growth of their sample counters between status polls."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[float, int]] = {}
        self.rates: dict[str, float] = {}

    def update(self, inputs: dict[str, dict], now: float) -> None:
        for role, health in inputs.items():
            samples = int(health["samples"])
            if role in self._last:
                then, before = self._last[role]
                if now > then:
                    self.rates[role] = (samples - before) / (now - then)
            self._last[role] = (now, samples)


class DashboardFeed:
    """Follows one running engine (and the rig's behavior stream and cursor task, when they run).

    Parameters
    ----------
    profile
        The profile the engine runs.
    engine
        A started :class:`~rtbci.engine.process.EngineProcess`.
    config
        History lengths and polling.

    Attributes
    ----------
    outputs
        ``(end_time, output channels)`` of the newest bins.
    latency
        ``(end_time, [processing ms, decoder ms, source ms])`` of the newest bins.
    features
        ``(end_time, decoder-input features flattened)`` of the newest bins; :attr:`feature_shape`
        gives one bin's shape (channels, features).
    spike_counts
        ``(end_time, spike count per channel)`` of the newest bins, when the records carry them beside
        the decoder's input (a decoder of LFP); ``None`` otherwise.
    follower
        The behavior stream, or ``None`` when the profile has none or it is not visible.
    task
        The rig's cursor task (``rtbci task``), followed once its stream appears.
    status
        The engine's last :meth:`~rtbci.engine.Engine.snapshot`.
    bins, max_latency_ms
        Since the start.
    """

    def __init__(self, profile: Profile, engine: EngineProcess, config: FeedConfig | None = None) -> None:
        self.profile = profile
        self.engine = engine
        self.config = config or FeedConfig()
        self.description: EngineDescription = engine.description
        labels = self.description.output_labels
        bin_rate = 1000.0 / self.description.bin_ms
        self.velocity_names = [name for name in labels if name.startswith("vel_")]
        self.velocity_columns = [labels.index(name) for name in self.velocity_names]
        self.position_columns = [labels.index("pos_" + name[4:]) for name in self.velocity_names]
        self.lag_s = profile.features.kinematics_lag_ms / 1000.0
        history_s = max(self.config.trace_s, self.config.latency_s, self.config.r2_s)
        self.outputs = RollingBuffer(int(history_s * bin_rate), len(labels))
        self.latency = RollingBuffer(int(self.config.latency_s * bin_rate), 3)
        self.feature_shape: tuple[int, ...] = self.description.ring_dtype["features"].shape
        self.features = RollingBuffer(int(self.config.signal_s * bin_rate), int(np.prod(self.feature_shape)))
        self.spike_counts: RollingBuffer | None = None
        if "spikes" in self.description.ring_dtype.names:
            spike_shape = self.description.ring_dtype["spikes"].shape
            self.spike_counts = RollingBuffer(int(self.config.signal_s * bin_rate), int(np.prod(spike_shape)))
        self.follower: BehaviorFollower | None = None
        self.truth_error: str | None = None
        self.task = TaskFeed(profile)
        self.status: dict | None = None
        self.rates = InputRates()
        self.bins = 0
        self.max_latency_ms = 0.0
        self._next_status = 0.0

    def attach_truth(self) -> None:
        """Open the behavior stream if the profile names one; a missing stream only turns truth off."""
        spec = self.profile.streams.behavior
        if spec is None:
            self.truth_error = "the profile has no behavior stream"
            return
        try:
            self.follower = BehaviorFollower(
                spec, seconds=self.config.r2_s + 10.0, timeout=self.config.truth_timeout_s
            )
        except StreamMissingError as error:
            self.truth_error = str(error).splitlines()[0]

    def update(self) -> int:
        """Take the engine's new records and the new truth samples; returns how many bins came.

        Raises
        ------
        rtbci.engine.process.EngineProcessError
            When the status is due and the engine process is gone or failing.
        """
        records = self.engine.records.read_new()
        n = len(records)
        if n:
            end_times = records["end_time"]
            self.outputs.append(end_times, records["output"])
            latencies = record_latencies(records)
            # Processing latency (read of the completing chunk -> push) is what rtbci controls; source
            # latency adds the source's chunking and stamping. Bins with no input sample have no source.
            rows = np.full((n, 3), np.nan)
            rows[:, 0] = latencies.processing * 1e3
            rows[:, 1] = latencies.decoder * 1e3
            rows[records["t_last_sample"] > 0, 2] = latencies.source * 1e3
            self.latency.append(end_times, rows)
            self.features.append(end_times, records["features"].reshape(n, -1))
            if self.spike_counts is not None:
                self.spike_counts.append(end_times, records["spikes"].reshape(n, -1))
            self.max_latency_ms = max(self.max_latency_ms, float(latencies.processing.max() * 1e3))
            self.bins += n
        if self.follower is not None:
            self.follower.poll()
        self.task.poll()
        now = time.monotonic()
        if now >= self._next_status:
            self._next_status = now + self.config.status_every_s
            self.status = self.engine.status()
            self.rates.update(self.status["inputs"], now)
        return n

    @property
    def newest_time(self) -> float | None:
        """End time of the newest decoded bin."""
        times = self.outputs.times
        return float(times[-1]) if len(times) else None

    def truth_at_bins(self, times: np.ndarray, names: list[str]) -> np.ndarray:
        """True values of ``names`` for bins ending at ``times`` (at end + training lag); NaN if unknown."""
        if self.follower is None:
            return np.full((len(times), len(names)), np.nan)
        return self.follower.at(times + self.lag_s, names)

    def live_r2(self) -> dict[str, float] | None:
        """Velocity R² per axis over the last ``r2_s`` seconds of bins; ``None`` without truth."""
        if self.follower is None or len(self.outputs) == 0:
            return None
        n = min(len(self.outputs), int(self.config.r2_s * 1000.0 / self.description.bin_ms))
        times = self.outputs.times[-n:]
        decoded = self.outputs.values[-n:, self.velocity_columns]
        truth = self.truth_at_bins(times, self.velocity_names)
        return dict(zip(self.velocity_names, r2_with_truth(decoded, truth).tolist(), strict=True))

    def latency_summary(self) -> dict[str, float] | None:
        """Processing p50, p99 and max (ms) over the kept bins, decoder-only and source p50/p99."""
        rows = self.latency.values
        processing = rows[:, 0][np.isfinite(rows[:, 0])]
        if not processing.size:
            return None
        p50, p99 = np.percentile(processing, [50.0, 99.0])
        d50, d99 = np.percentile(rows[:, 1], [50.0, 99.0])
        source = rows[:, 2][np.isfinite(rows[:, 2])]
        s50, s99 = np.percentile(source, [50.0, 99.0]) if source.size else (np.nan, np.nan)
        return {
            "source_p50_ms": float(s50),
            "source_p99_ms": float(s99),
            "p50_ms": float(p50),
            "p99_ms": float(p99),
            "max_ms": float(processing.max()),
            "decoder_p50_ms": float(d50),
            "decoder_p99_ms": float(d99),
        }

    def close(self) -> None:
        """Close the behavior and task inlets (the engine is stopped by its owner)."""
        self.task.close()
        if self.follower is not None:
            self.follower.close()
            self.follower = None
