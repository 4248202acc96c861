"""The cursor task drawn over the dashboard's cursor view: target, the task's cursor, hold progress, score.

The task's cursor is what the participant sees (assist and workspace clamp applied), so it is
drawn apart from the engine's integrated position. The target is its acceptance circle, to
scale; during a hold a disc fills it as the hold proceeds.
"""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6 import QtWidgets

from apps.decoder.plotting import COLORS, set_curve
from apps.decoder.task_feed import TaskFeed
from rtbci.task.trials import TrialState

__all__ = ["TaskOverlay", "task_summary"]

_TASK_CURSOR = (20, 20, 20)
_HOLD = (40, 170, 90)


def task_summary(feed: TaskFeed) -> str:
    """The line under the cursor view: trial, state, hold progress and the running score."""
    if not feed.following:
        return f"Task: none running (start `rtbci task` on this rig; its stream is {feed.spec.name!r})"
    if feed.cursor is None:
        return "Task: stream found, waiting for its first sample"
    state = feed.state.label.replace("_", " ")
    if feed.state is TrialState.HOLD:
        state += f" {feed.hold_fraction:.0%}"
    score = feed.score()
    if not score.trials:
        return f"Task: trial {feed.trial_id} · {state} · no trial finished yet"
    ttt = score.mean_time_to_target_s
    ttt_text = f"{ttt:.2f} s" if math.isfinite(ttt) else "–"
    return (
        f"Task: trial {feed.trial_id} · {state} · acquired {score.acquired}/{score.trials} "
        f"({score.success_rate:.0%}) · time to target {ttt_text} (last {score.trials} trials)"
    )


class TaskOverlay:
    """Draws the task on ``plot`` and its summary in :attr:`label`.

    Parameters
    ----------
    plot
        The cursor view.
    """

    def __init__(self, plot: pg.PlotWidget) -> None:
        self.target = QtWidgets.QGraphicsEllipseItem()
        self.target.setPen(pg.mkPen(COLORS["target"], width=2))
        self.hold = QtWidgets.QGraphicsEllipseItem()
        self.hold.setPen(pg.mkPen(None))
        self.hold.setBrush(pg.mkBrush(*_HOLD, 150))
        self.cursor = plot.plot(
            pen=None,
            symbol="+",
            symbolSize=16,
            symbolPen=pg.mkPen(_TASK_CURSOR, width=2),
            name="task cursor",
        )
        for item in (self.target, self.hold):
            item.hide()
            plot.addItem(item)
        self.label = QtWidgets.QLabel("Task: none running")
        self.label.setObjectName("task_summary")

    def refresh(self, feed: TaskFeed) -> None:
        """Redraw from the task feed (called with the panel's redraw)."""
        self.label.setText(task_summary(feed))
        if feed.cursor is None:
            return
        set_curve(self.cursor, feed.cursor[:1], feed.cursor[1:])
        shown = feed.state in (TrialState.REACH, TrialState.HOLD)
        self.target.setVisible(shown)
        self.hold.setVisible(shown and feed.hold_fraction > 0)
        if not shown:
            return
        (x, y), r = feed.target, feed.target_radius
        self.target.setRect(x - r, y - r, 2 * r, 2 * r)
        filled = r * math.sqrt(feed.hold_fraction)  # the disc's area grows with the hold
        self.hold.setRect(x - filled, y - filled, 2 * filled, 2 * filled)
