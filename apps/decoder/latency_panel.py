"""Latency: a live histogram of processing latency, latency over time, p50/p99/max, source latency
and late-bin counts (the words are defined in :mod:`rtbci.engine.status`)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtWidgets

from apps.decoder.feed import DashboardFeed
from apps.decoder.plotting import COLORS, fixed_plot, set_curve

__all__ = ["LatencyPanel"]

_HISTOGRAM_BIN_MS = 0.25
_STATS_EVERY_TICKS = 10


class LatencyPanel(QtWidgets.QWidget):
    """Processing latency (push time minus the read of the chunk that completed the bin), with the source
    latency (push minus the bin's last sample's timestamp) in the figures below it.

    Parameters
    ----------
    bin_ms
        Bin width: the fixed latency range is one bin.
    deadline_ms
        The engine's late deadline, drawn as a line.
    history_s
        Seconds of bins in the histogram and the timeline.
    """

    def __init__(self, bin_ms: float, deadline_ms: float, history_s: float = 30.0) -> None:
        super().__init__()
        self.history_n = int(history_s * 1000.0 / bin_ms)
        self.edges = np.arange(0.0, bin_ms + _HISTOGRAM_BIN_MS / 2, _HISTOGRAM_BIN_MS)
        self.histogram = fixed_plot(
            f"Processing latency, last {history_s:g} s", (0.0, bin_ms), (0.0, 100.0), "ms", "% of bins"
        )
        self.histogram_curve = self.histogram.plot(
            stepMode="center", fillLevel=0, pen=pg.mkPen(COLORS["latency"]), brush=(*COLORS["latency"], 120)
        )
        self.timeline = fixed_plot("Latency over time", (-history_s, 0.0), (0.0, bin_ms), "time (s)", "ms")
        self.timeline_curve = self.timeline.plot(pen=pg.mkPen(COLORS["latency"], width=1))
        for plot in (self.histogram, self.timeline):
            line = pg.InfiniteLine(
                deadline_ms,
                angle=90 if plot is self.histogram else 0,
                pen=pg.mkPen(COLORS["deadline"], width=1),
            )
            plot.addItem(line)
        self.stats = QtWidgets.QLabel("waiting for data")
        self.stats.setObjectName("latency_stats")
        self.stats.setWordWrap(True)
        layout = QtWidgets.QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.histogram, 0, 0)
        layout.addWidget(self.timeline, 0, 1)
        layout.addWidget(self.stats, 1, 0, 1, 2)
        # Preallocated float64 plot buffers.
        self._x = np.zeros(self.history_n)
        self._y = np.zeros(self.history_n)
        self._percent = np.zeros(len(self.edges) - 1)
        self._histogram_top = 100.0
        self._ticks = 0

    def refresh(self, feed: DashboardFeed) -> None:
        """Redraw from the feed (called by the window's timer)."""
        now = feed.newest_time
        if now is None:
            return
        latency = feed.latency
        n = min(len(latency), self.history_n)
        processing = latency.values[-n:, 0]
        known = np.isfinite(processing)
        count = int(known.sum())
        if count == 0:
            return
        np.compress(known, latency.times[-n:] - now, out=self._x[:count])
        np.compress(known, processing, out=self._y[:count])
        # Values past the range pile up in the last bin, so the tail stays visible.
        counts, _ = np.histogram(np.minimum(self._y[:count], self.edges[-1] - 1e-9), self.edges)
        np.multiply(counts, 100.0 / count, out=self._percent)
        set_curve(self.histogram_curve, self.edges, self._percent)
        # The y range moves only in steps of 25 %, not on every redraw.
        top = min(100.0, 25.0 * np.ceil(self._percent.max() / 25.0))
        if top != self._histogram_top:
            self._histogram_top = top
            self.histogram.getPlotItem().setYRange(0.0, top, padding=0)
        set_curve(self.timeline_curve, self._x[:count], np.minimum(self._y[:count], self.edges[-1]))
        self._ticks += 1
        if self._ticks % _STATS_EVERY_TICKS == 1:
            self._refresh_stats(feed)

    def _refresh_stats(self, feed: DashboardFeed) -> None:
        summary = feed.latency_summary()
        status = feed.status or {}
        if summary is None:
            return
        self.stats.setText(
            f"processing p50 {summary['p50_ms']:.2f} ms   p99 {summary['p99_ms']:.2f} ms   "
            f"max {summary['max_ms']:.2f} ms (since start {feed.max_latency_ms:.2f} ms)\n"
            f"decoder p50 {summary['decoder_p50_ms']:.2f} ms   p99 {summary['decoder_p99_ms']:.2f} ms   "
            f"source p50 {summary['source_p50_ms']:.2f} ms   p99 {summary['source_p99_ms']:.2f} ms\n"
            f"late bins {status.get('late', 0)}   overdue {status.get('overdue', 0)}   "
            f"bins {status.get('bins', feed.bins)}"
        )
