"""Decoded kinematics: velocity traces (last 10 s, scrolling), a 2-D cursor view, and the live R².

When the rig runs the cursor task (``rtbci task``), the cursor view also shows its target, its
cursor, the hold's progress and the running score (:mod:`apps.decoder.task_overlay`).

The cursor view stays useful when the decoded position drifts: it can follow the cursor (re-centring
when the cursor nears an edge), an arrow at the edge points to a cursor that is off the view and says
how far, and "Reset position" asks the engine to zero the integrated position (an engine command,
logged as an engine event)."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from apps.decoder.feed import DashboardFeed
from apps.decoder.plotting import COLORS, fixed_plot, set_curve
from apps.decoder.task_overlay import TaskOverlay

__all__ = ["KinematicsPanel", "edge_marker", "follow_centre"]

# The simulated workspace is ±10 cm; a little margin keeps the cursor in view.
_WORKSPACE_M = 0.15
# Following: the view re-centres on the cursor once it is past this share of the half-width.
_FOLLOW_INNER = 0.8
# The off-view arrow sits this share of the half-width inside the edge.
_ARROW_INSET = 0.06
# Its label sits at this share of the way from the view's centre to the arrow.
_LABEL_SHARE = 0.7


Point = tuple[float, float]


def edge_marker(centre: Point, half: float, point: Point) -> tuple[Point, float, float] | None:
    """Where the off-view arrow goes: on the edge of the square view, pointing at ``point``.

    Parameters
    ----------
    centre, half
        The view: ``centre`` ± ``half`` on both axes.
    point
        The cursor.

    Returns
    -------
    tuple or None
        The arrow's tip (x, y), its direction in degrees (counter-clockwise from +x) and how far
        ``point`` lies past the edge; ``None`` when ``point`` is in view.
    """
    dx, dy = point[0] - centre[0], point[1] - centre[1]
    reach = max(abs(dx), abs(dy))
    if reach <= half:
        return None
    scale = half * (1.0 - _ARROW_INSET) / reach
    position = (centre[0] + dx * scale, centre[1] + dy * scale)
    return position, math.degrees(math.atan2(dy, dx)), reach - half


def follow_centre(centre: Point, half: float, point: Point) -> Point:
    """The view's centre when following: unchanged while ``point`` is in the inner part of the view,
    else ``point`` itself (the view re-centres in a step, not on every frame)."""
    inner = half * _FOLLOW_INNER
    if abs(point[0] - centre[0]) <= inner and abs(point[1] - centre[1]) <= inner:
        return centre
    return point


_HAND_TRAIL_STEP = 10  # the behavior stream runs at 1 kHz; every 10th sample is plenty for a trail
_R2_EVERY_TICKS = 15


class KinematicsPanel(QtWidgets.QWidget):
    """Velocity x/y over time, the integrated cursor with target and true hand, and R² over 30 s.

    Signals
    -------
    reset_requested()
        "Reset position" was clicked: the window asks the engine to zero the integrated position.

    Parameters
    ----------
    velocity_limit
        The output clamp; the trace plot's fixed y range.
    bin_ms
        Bin width (sets how many points the traces hold).
    trace_s, trail_s
        Seconds of velocity trace and of cursor trail.

    Attributes
    ----------
    view_centre
        The cursor view's centre (m); it shows ± the workspace around it.
    follow
        "Follow cursor": the view re-centres on the cursor when it nears an edge.
    off_view_arrow, off_view_label
        The arrow at the edge pointing to a cursor off the view, and how far it is (hidden when in view).
    """

    reset_requested = QtCore.Signal()

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
        self.view_centre = (0.0, 0.0)
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
        self.task = TaskOverlay(self.cursor)
        self.off_view_arrow = pg.ArrowItem(
            headLen=26, headWidth=22, tailLen=22, tailWidth=8, pen=pg.mkPen("k", width=1), brush=COLORS["x"]
        )
        self.off_view_label = pg.TextItem(color=COLORS["x"], fill=(255, 255, 255, 210))
        for item in (self.off_view_arrow, self.off_view_label):
            item.hide()
            self.cursor.addItem(item)
        self.follow = QtWidgets.QCheckBox("Follow cursor")
        self.follow.setToolTip("Re-centre the view on the decoded cursor whenever it nears an edge")
        self.follow.toggled.connect(self._follow_toggled)
        self.reset_button = QtWidgets.QPushButton("Reset position")
        self.reset_button.setObjectName("reset_position")
        self.reset_button.setToolTip(
            "Zero the decoded (integrated) position: the cursor goes back to the centre. The engine does "
            "it at its next bin and logs it as an event (in the recording too)."
        )
        self.reset_button.setEnabled(False)
        self.reset_button.clicked.connect(self.reset_requested)
        cursor_controls = QtWidgets.QHBoxLayout()
        cursor_controls.addWidget(self.follow)
        cursor_controls.addStretch(1)
        cursor_controls.addWidget(self.reset_button)
        self.r2_label = QtWidgets.QLabel("R² (last 30 s): waiting for data")
        self.r2_label.setObjectName("r2")
        layout = QtWidgets.QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.traces, 0, 0)
        layout.addWidget(self.cursor, 0, 1)
        layout.addWidget(self.r2_label, 1, 0)
        layout.addLayout(cursor_controls, 1, 1)
        layout.addWidget(self.task.label, 2, 0, 1, 2)
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
        self.show_cursor(float(self._dot[0, 0]), float(self._dot[1, 0]))
        self._refresh_hand(feed)
        self.task.refresh(feed.task)
        self._ticks += 1
        if self._ticks % _R2_EVERY_TICKS == 1:
            self._refresh_r2(feed)
            self._repaint_legends()

    def show_cursor(self, x: float, y: float) -> None:
        """Keep the cursor at (``x``, ``y``) findable: re-centre the view when following, and show the
        edge arrow with the distance when the cursor is off the view."""
        if self.follow.isChecked():
            self._set_view_centre(follow_centre(self.view_centre, _WORKSPACE_M, (x, y)))
        marker = edge_marker(self.view_centre, _WORKSPACE_M, (x, y))
        if marker is None:
            if self.off_view_arrow.isVisible():
                self.off_view_arrow.hide()
                self.off_view_label.hide()
            return
        (ax, ay), direction, distance = marker
        self.off_view_arrow.setStyle(angle=180.0 - direction)
        self.off_view_arrow.setPos(ax, ay)
        # Millimetres below a centimetre, so a cursor just past the edge never reads "0 cm off view".
        text = f"{distance * 100:.0f} cm" if distance >= 0.01 else f"{max(distance * 1000, 1.0):.0f} mm"
        self.off_view_label.setText(f"cursor {text} off view")
        # The label sits on the view's side of the arrow, so it stays inside the plot.
        cx, cy = self.view_centre
        self.off_view_label.setAnchor((1.0 if ax > cx else 0.0, 1.0 if ay < cy else 0.0))
        # Further in than the arrow, clear of its tail.
        self.off_view_label.setPos(cx + (ax - cx) * _LABEL_SHARE, cy + (ay - cy) * _LABEL_SHARE)
        self.off_view_arrow.show()
        self.off_view_label.show()

    def _set_view_centre(self, centre: Point) -> None:
        if centre == self.view_centre:
            return
        self.view_centre = centre
        item = self.cursor.getPlotItem()
        item.setXRange(centre[0] - _WORKSPACE_M, centre[0] + _WORKSPACE_M, padding=0)
        item.setYRange(centre[1] - _WORKSPACE_M, centre[1] + _WORKSPACE_M, padding=0)

    def _follow_toggled(self, on: bool) -> None:
        """Following starts centred on the cursor; ending it goes back to the workspace."""
        self._set_view_centre((float(self._dot[0, 0]), float(self._dot[1, 0])) if on else (0.0, 0.0))

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

    def _repaint_legends(self) -> None:
        """Repaint the legend samples: one painted before its curve had data is drawn grey, and with a
        layout that never moves nothing else repaints it."""
        for plot in (self.traces, self.cursor):
            for sample, _ in plot.getPlotItem().legend.items:
                sample.update()

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
