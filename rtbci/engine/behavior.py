"""The true kinematics next to the decoded ones: a behavior-stream follower and a lagged live R².

A rig with a behavior stream (the simulator has one) lets the dashboard and
the headless demo score the decoder live. The follower is deliberately not part
of the engine: the decoder does not need the truth, so reading it stays out of
the engine process and off its decode thread.
"""

from __future__ import annotations

import numpy as np

from rtbci.engine.rolling import RollingBuffer
from rtbci.lsl import require_pylsl
from rtbci.lsl.info import described_channel_labels
from rtbci.lsl.resolve import resolve_stream
from rtbci.metrics import r2_per_axis
from rtbci.profile import StreamSpec

__all__ = ["BEHAVIOR_LABELS", "BehaviorFollower", "r2_with_truth"]

# Channel order of a behavior stream whose description names no channels (the Session contract's).
BEHAVIOR_LABELS = ("pos_x", "pos_y", "vel_x", "vel_y", "target_x", "target_y")


class BehaviorFollower:
    """Keeps the newest ``seconds`` of a behavior stream, in time order, in preallocated arrays.

    Parameters
    ----------
    spec
        The profile's ``streams.behavior``.
    seconds
        History kept.
    timeout
        Seconds to look for the stream.

    Raises
    ------
    rtbci.lsl.resolve.StreamMissingError
        If the stream is not visible.
    """

    def __init__(self, spec: StreamSpec, seconds: float = 40.0, timeout: float = 5.0) -> None:
        pylsl = require_pylsl()
        info = resolve_stream(spec, "behavior", timeout)
        self.inlet = pylsl.StreamInlet(info, max_buflen=2, processing_flags=pylsl.proc_clocksync)
        self.inlet.open_stream(timeout=timeout)
        self.labels = described_channel_labels(
            self.inlet.info(timeout), spec.channels, BEHAVIOR_LABELS[: spec.channels]
        )
        self.rolling = RollingBuffer(int(seconds * max(spec.rate, 100.0)), spec.channels)

    def poll(self) -> int:
        """Take every sample waiting in the inlet; returns how many came."""
        data, timestamps = self.inlet.pull_chunk(
            timeout=0.0, max_samples=self.rolling.capacity, as_numpy=True
        )
        if len(timestamps):
            self.rolling.append(timestamps, data)
        return len(timestamps)

    @property
    def times(self) -> np.ndarray:
        """LSL timestamps of the kept samples, oldest first (a view)."""
        return self.rolling.times

    def channels(self, names: list[str] | tuple[str, ...], last: int | None = None) -> np.ndarray:
        """The kept samples (or the ``last`` newest) of the named channels, ``(n, len(names))`` (a copy)."""
        values = self.rolling.values if last is None else self.rolling.values[-last:]
        return values[:, [self.labels.index(name) for name in names]]

    def latest(self, names: list[str] | tuple[str, ...]) -> np.ndarray | None:
        """The newest sample of the named channels, or ``None`` before the first sample."""
        if len(self.rolling) == 0:
            return None
        return self.rolling.values[-1, [self.labels.index(name) for name in names]]

    def at(self, times: np.ndarray, names: list[str] | tuple[str, ...]) -> np.ndarray:
        """The named channels at ``times`` (linear interpolation); NaN outside the kept span."""
        kept_times = self.times
        out = np.full((len(times), len(names)), np.nan)
        if len(kept_times) < 2:
            return out
        inside = (times >= kept_times[0]) & (times <= kept_times[-1])
        if not inside.any():
            return out
        # Only the span the query covers (plus a sample either side) is interpolated over.
        first = max(int(np.searchsorted(kept_times, times[inside].min())) - 1, 0)
        last = min(int(np.searchsorted(kept_times, times[inside].max())) + 1, len(kept_times))
        span = kept_times[first:last]
        values = self.rolling.values[first:last]
        for k, name in enumerate(names):
            out[inside, k] = np.interp(times[inside], span, values[:, self.labels.index(name)])
        return out

    def close(self) -> None:
        """Stop receiving."""
        self.inlet.close_stream()


def r2_with_truth(decoded: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """R² of decoded kinematics against the truth, per axis, over the bins whose truth is known.

    Parameters
    ----------
    decoded
        ``(n, k)`` decoded values, one row per bin.
    truth
        ``(n, k)`` true values at each bin's end plus the lag the model was trained with
        (:meth:`BehaviorFollower.at`); NaN where not known.

    Returns
    -------
    np.ndarray
        ``(k,)``; NaN when fewer than 10 bins have truth.
    """
    known = np.isfinite(truth).all(axis=1)
    if known.sum() < 10:
        return np.full(decoded.shape[1], np.nan)
    return r2_per_axis(truth[known], decoded[known])
