"""Decoded kinematics: velocity traces (last 10 s, scrolling), a 2-D cursor view, and the live R²."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from apps.decoder.feed import DashboardFeed
from apps.decoder.plotting import COLORS, fixed_plot, set_curve

__all__ = ["KinematicsPanel"]

# The simulated workspace is ±10 cm; a little margin keeps the cursor in view.
_WORKSPACE_M = 0.15
_HAND_TRAIL_STEP = 10  # the behavior stream runs at 1 kHz; every 10th sample is plenty for a trail
_R2_EVERY_TICKS = 15


class KinematicsPanel(QtWidgets.QWidget):
    """Velocity x/y over time, the integrated cursor with target and true hand, and R² over 30 s.

    Parameters
    ----------
    velocity_limit
        The output clamp; the trace plot's fixed y range.
    bin_ms
        Bin width (sets how many points the traces hold).
    trace_s, trail_s
        Seconds of velocity trace and of cursor trail.
    """

    def __init__(
        self, velocity_limit: float, bin_ms: float, trace_s: float = 10.0, trail_s: float = 2.0
    ) -> None:
        super().__init__()
        bin_rate = 1000.0 / bin_ms
        self.trace_n = int(trace_s * bin_rate)
        self.trail_n = int(trail_s * bin_rate)
        self.hand_n = int(trail_s * 1000.0)
        limit = velocity_limit * 1.05
        self.traces = fixed_plot("Decoded velocity", (-trace_s, 0.0), (-limit, limit), "time (s)", "m/s")
        self.traces.addLegend(offset=(5, 5))
        dashed = QtCore.Qt.PenStyle.DashLine
        self.velocity_curves = [
            self.traces.plot(pen=pg.mkPen(COLORS[axis], width=2), name=f"decoded v{axis}") for axis in "xy"
        ]
        self.truth_curves = [
            self.traces.plot(pen=pg.mkPen(COLORS[axis], width=1, style=dashed), name=f"true v{axis}")
            for axis in "xy"
        ]
        self.cursor = fixed_plot(
            "Cursor (integrated position)",
            (-_WORKSPACE_M, _WORKSPACE_M),
            (-_WORKSPACE_M, _WORKSPACE_M),
            "x (m)",
            "y (m)",
        )
        self.cursor.getPlotItem().setAspectLocked(True)
        self.cursor.addLegend(offset=(5, 5))
        self.hand_trail = self.cursor.plot(pen=pg.mkPen(COLORS["hand"], width=1))
        self.cursor_trail = self.cursor.plot(pen=pg.mkPen(COLORS["x"], width=2))
        self.target_dot = self.cursor.plot(
            pen=None, symbol="s", symbolSize=18, symbolBrush=pg.mkBrush(*COLORS["target"], 90), name="target"
        )
        self.hand_dot = self.cursor.plot(
            pen=None, symbol="o", symbolSize=12, symbolBrush=COLORS["hand"], name="true hand"
        )
        self.cursor_dot = self.cursor.plot(
            pen=None, symbol="o", symbolSize=14, symbolBrush=COLORS["x"], name="decoded cursor"
        )
        self.r2_label = QtWidgets.QLabel("R² (last 30 s): waiting for data")
        self.r2_label.setObjectName("r2")
        layout = QtWidgets.QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.traces, 0, 0)
        layout.addWidget(self.cursor, 0, 1)
        layout.addWidget(self.r2_label, 1, 0, 1, 2)
        layout.setColumnStretch(0, 3)
        layout.setColumnStretch(1, 2)
        # Preallocated float64 plot buffers, reused every redraw.
        self._x = np.zeros(self.trace_n)
        self._y = np.zeros((2, self.trace_n))
        self._truth_x = np.zeros(self.trace_n)
        self._truth_y = np.zeros((2, self.trace_n))
        self._trail = np.zeros((2, self.trail_n))
        self._hand = np.zeros((2, self.hand_n // _HAND_TRAIL_STEP + 1))
        self._dot = np.zeros((2, 1))
        self._target = np.zeros((2, 1))
        self._hand_dot = np.zeros((2, 1))
        self._ticks = 0
        self.points_drawn = 0

    def refresh(self, feed: DashboardFeed) -> None:
        """Redraw from the feed (called by the window's timer)."""
        now = feed.newest_time
        if now is None:
            return
        outputs = feed.outputs
        n = min(len(outputs), self.trace_n)
        times = outputs.times[-n:]
        values = outputs.values[-n:]
        x = self._x[:n]
        np.subtract(times, now, out=x)
        for k, column in enumerate(feed.velocity_columns[:2]):
            np.copyto(self._y[k, :n], values[:, column])
            set_curve(self.velocity_curves[k], x, self._y[k, :n])
        self.points_drawn = n
        self._refresh_truth_traces(feed, times, x)
        m = min(len(outputs), self.trail_n)
        for k, column in enumerate(feed.position_columns[:2]):
            np.copyto(self._trail[k, :m], outputs.values[-m:, column])
            self._dot[k, 0] = self._trail[k, m - 1]
        set_curve(self.cursor_trail, self._trail[0, :m], self._trail[1, :m])
        set_curve(self.cursor_dot, self._dot[0], self._dot[1])
        self._refresh_hand(feed)
        self._ticks += 1
        if self._ticks % _R2_EVERY_TICKS == 1:
            self._refresh_r2(feed)

    def _refresh_truth_traces(self, feed: DashboardFeed, times: np.ndarray, x: np.ndarray) -> None:
        if feed.follower is None:
            return
        truth = feed.truth_at_bins(times, feed.velocity_names[:2])
        known = np.isfinite(truth).all(axis=1)
        count = int(known.sum())
        np.compress(known, x, out=self._truth_x[:count])
        for k in range(truth.shape[1]):
            np.compress(known, truth[:, k], out=self._truth_y[k, :count])
            set_curve(self.truth_curves[k], self._truth_x[:count], self._truth_y[k, :count])

    def _refresh_hand(self, feed: DashboardFeed) -> None:
        follower = feed.follower
        if follower is None or len(follower.rolling) == 0:
            return
        names = ("pos_x", "pos_y")
        if not set(names) <= set(follower.labels):
            return
        hand = follower.channels(names, last=self.hand_n)[::_HAND_TRAIL_STEP]
        h = len(hand)
        np.copyto(self._hand[:, :h], hand.T)
        set_curve(self.hand_trail, self._hand[0, :h], self._hand[1, :h])
        self._hand_dot[:, 0] = follower.latest(names)
        set_curve(self.hand_dot, self._hand_dot[0], self._hand_dot[1])
        if {"target_x", "target_y"} <= set(follower.labels):
            self._target[:, 0] = follower.latest(("target_x", "target_y"))
            set_curve(self.target_dot, self._target[0], self._target[1])

    def _refresh_r2(self, feed: DashboardFeed) -> None:
        r2 = feed.live_r2()
        if r2 is None:
            reason = feed.truth_error or "no truth yet"
            self.r2_label.setText(f"R² (last 30 s): n/a ({reason})")
            return
        text = "  ".join(
            f"{name} {value:.2f}" if np.isfinite(value) else f"{name} –" for name, value in r2.items()
        )
        self.r2_label.setText(f"R² (last 30 s, truth at bin end + {feed.lag_s * 1000:.0f} ms): {text}")
