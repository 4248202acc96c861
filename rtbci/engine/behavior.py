"""The true kinematics next to the decoded ones: a behavior-stream follower and a lagged live R².

A rig with a behavior stream (the simulator has one) lets the dashboard and
the headless demo score the decoder live. The follower is deliberately not part
of the engine: the decoder does not need the truth, so reading it stays out of
the engine process and off its decode thread.
"""

from __future__ import annotations

import numpy as np

from rtbci.engine.resolve import resolve_stream
from rtbci.lsl import require_pylsl
from rtbci.profile import StreamSpec
from rtbci.train.metrics import r2_per_axis

__all__ = ["BEHAVIOR_LABELS", "BehaviorFollower", "r2_with_truth"]

# Channel order of a behavior stream whose description names no channels (the Session contract's).
BEHAVIOR_LABELS = ("pos_x", "pos_y", "vel_x", "vel_y", "target_x", "target_y")


def _channel_labels(info, n_channels: int) -> list[str]:
    channel = info.desc().child("channels").child("channel")
    labels = []
    while not channel.empty() and len(labels) < n_channels:
        labels.append(channel.child_value("label"))
        channel = channel.next_sibling()
    if len(labels) == n_channels and all(labels):
        return labels
    return list(BEHAVIOR_LABELS[:n_channels])


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
    rtbci.engine.StreamMissingError
        If the stream is not visible.
    """

    def __init__(self, spec: StreamSpec, seconds: float = 40.0, timeout: float = 5.0) -> None:
        pylsl = require_pylsl()
        info = resolve_stream(spec, "behavior", timeout)
        self.inlet = pylsl.StreamInlet(info, max_buflen=2, processing_flags=pylsl.proc_clocksync)
        self.inlet.open_stream(timeout=timeout)
        self.labels = _channel_labels(self.inlet.info(timeout), spec.channels)
        self.keep = int(seconds * max(spec.rate, 100.0))
        # Twice the history: new samples are appended, and the newest half is moved to the
        # front only when the end is reached, so the kept span is always one contiguous slice.
        self._values = np.zeros((2 * self.keep, spec.channels), dtype=np.float64)
        self._times = np.zeros(2 * self.keep, dtype=np.float64)
        self._end = 0
        self.samples = 0

    def poll(self) -> int:
        """Take every sample waiting in the inlet; returns how many came."""
        data, timestamps = self.inlet.pull_chunk(timeout=0.0, max_samples=self.keep, as_numpy=True)
        n = len(timestamps)
        if n == 0:
            return 0
        if self._end + n > self._values.shape[0]:
            start = max(0, self._end - self.keep + n)
            kept = self._end - start
            self._values[:kept] = self._values[start : self._end]
            self._times[:kept] = self._times[start : self._end]
            self._end = kept
        self._values[self._end : self._end + n] = data
        self._times[self._end : self._end + n] = timestamps
        self._end += n
        self.samples += n
        return n

    @property
    def times(self) -> np.ndarray:
        """LSL timestamps of the kept samples, oldest first (a view)."""
        return self._times[max(0, self._end - self.keep) : self._end]

    def channels(self, names: list[str] | tuple[str, ...]) -> np.ndarray:
        """The kept samples of the named channels, ``(n, len(names))`` (a copy)."""
        columns = [self.labels.index(name) for name in names]
        return self._values[max(0, self._end - self.keep) : self._end][:, columns]

    def latest(self, names: list[str] | tuple[str, ...]) -> np.ndarray | None:
        """The newest sample of the named channels, or ``None`` before the first sample."""
        if self._end == 0:
            return None
        return self._values[self._end - 1, [self.labels.index(name) for name in names]]

    def at(self, times: np.ndarray, names: list[str] | tuple[str, ...]) -> np.ndarray:
        """The named channels at ``times`` (linear interpolation); NaN outside the kept span."""
        kept_times = self.times
        out = np.full((len(times), len(names)), np.nan)
        if len(kept_times) < 2:
            return out
        inside = (times >= kept_times[0]) & (times <= kept_times[-1])
        values = self.channels(names)
        for k in range(len(names)):
            out[inside, k] = np.interp(times[inside], kept_times, values[:, k])
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
