"""Latency: a live histogram of processing latency, latency over time, p50/p99/max, source latency
and late-bin counts (the words are defined in :data:`rtbci.glossary.DEFINITIONS`, shown as tooltips)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtWidgets

from apps.decoder.feed import DashboardFeed
from apps.decoder.labels import fix_lines
from apps.decoder.plotting import COLORS, fixed_plot, set_curve
from rtbci.glossary import DEFINITIONS

__all__ = ["LatencyPanel", "latency_histogram"]

_HISTOGRAM_BIN_MS = 0.25
# The overflow bar's drawn width, in ms past the histogram's range.
_OVERFLOW_WIDTH_MS = 1.5
_STATS_EVERY_TICKS = 10


def latency_histogram(values_ms: np.ndarray, edges: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Share (%) of ``values_ms`` in each bar; every value at or past ``edges[-2]`` is in the last bar.

    Parameters
    ----------
    values_ms
        Latencies, finite, at least one.
    edges
        Increasing bar edges; the last bar (``edges[-2]`` to ``edges[-1]``) is the overflow bar.
    out
        Written with the shares, ``len(edges) - 1`` of them, and returned.
    """
    counts, _ = np.histogram(np.minimum(values_ms, edges[-2]), edges)
    return np.multiply(counts, 100.0 / len(values_ms), out=out)


def _tip(*words: str) -> str:
    return "\n".join(f"{word.capitalize()}: {DEFINITIONS[word]}" for word in words)


class LatencyPanel(QtWidgets.QWidget):
    """Processing latency (push time minus the read of the chunk that completed the bin), with the source
    latency (push minus the bin's last sample's timestamp) in the figures below it.

    The histogram covers one bin width; every bin at or past it goes into a last, red overflow bar
    labelled "≥ N ms" with its share. The timeline draws such bins at its top edge. The deadline is a
    labelled line in both.

    Parameters
    ----------
    bin_ms
        Bin width: the latency range drawn is one bin.
    deadline_ms
        The engine's deadline (``[engine] late_deadline_ms``), drawn as a labelled line.
    history_s
        Seconds of bins in the histogram and the timeline.

    Attributes
    ----------
    edges
        The histogram's edges: ``_HISTOGRAM_BIN_MS`` steps up to ``bin_ms``, then the overflow bar's end.
    overflow_ms
        Latencies at or past this count in the overflow bar.
    """

    def __init__(self, bin_ms: float, deadline_ms: float, history_s: float = 30.0) -> None:
        super().__init__()
        self.history_n = int(history_s * 1000.0 / bin_ms)
        self.overflow_ms = bin_ms
        regular = np.arange(0.0, bin_ms + _HISTOGRAM_BIN_MS / 2, _HISTOGRAM_BIN_MS)
        self.edges = np.append(regular, bin_ms + _OVERFLOW_WIDTH_MS)
        self.histogram = fixed_plot(
            f"Processing latency, last {history_s:g} s",
            (0.0, bin_ms + _OVERFLOW_WIDTH_MS),
            (0.0, 100.0),
            "ms",
            "% of bins",
        )
        self.histogram_curve = self.histogram.plot(
            stepMode="center", fillLevel=0, pen=pg.mkPen(COLORS["latency"]), brush=(*COLORS["latency"], 120)
        )
        self.overflow_curve = self.histogram.plot(
            stepMode="center", fillLevel=0, pen=pg.mkPen(COLORS["deadline"]), brush=(*COLORS["deadline"], 160)
        )
        self.overflow_label = pg.TextItem(f"≥ {bin_ms:g} ms", color=COLORS["deadline"], anchor=(1.0, 0.0))
        self.overflow_label.setPos(bin_ms + _OVERFLOW_WIDTH_MS, 100.0)
        self.histogram.addItem(self.overflow_label)
        self.histogram.setToolTip(
            _tip("processing latency")
            + f"\nThe last, red bar holds every bin at or past {bin_ms:g} ms (one bin width)."
            + f"\nThe deadline line: {deadline_ms:g} ms ([engine] late_deadline_ms). "
            + _tip("overdue")
        )
        self.timeline = fixed_plot(
            "Processing latency over time", (-history_s, 0.0), (0.0, bin_ms), "time (s)", "ms"
        )
        self.timeline_curve = self.timeline.plot(pen=pg.mkPen(COLORS["latency"], width=1))
        self.timeline.setToolTip(
            _tip("processing latency") + f"\nBins at or past {bin_ms:g} ms are drawn at the top edge."
        )
        self.deadline_lines = []
        for plot, angle, position in ((self.histogram, 90, 0.85), (self.timeline, 0, 0.12)):
            line = pg.InfiniteLine(
                deadline_ms,
                angle=angle,
                pen=pg.mkPen(COLORS["deadline"], width=1),
                label=f"deadline {deadline_ms:g} ms",
                labelOpts={"position": position, "color": COLORS["deadline"], "fill": (255, 255, 255, 200)},
            )
            plot.addItem(line)
            self.deadline_lines.append(line)
        self.stats = QtWidgets.QLabel("waiting for data")
        self.stats.setObjectName("latency_stats")
        self.stats.setWordWrap(True)
        fix_lines(self.stats, 3)
        self.stats.setToolTip(
            _tip("processing latency", "source latency", "late", "overdue", "gap", "outage")
            + "\nLate bins here count each bin once; Stream health counts them per input, so a bin late "
            "on two inputs counts there twice."
        )
        layout = QtWidgets.QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.histogram, 0, 0)
        layout.addWidget(self.timeline, 0, 1)
        layout.addWidget(self.stats, 1, 0, 1, 2)
        # Preallocated float64 plot buffers.
        self._x = np.zeros(self.history_n)
        self._y = np.zeros(self.history_n)
        self._percent = np.zeros(len(self.edges) - 1)
        self._overflow_edges = self.edges[-2:].copy()
        self._histogram_top = 100.0
        self._overflow_share = -1.0
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
        # Values at or past the range go into the last (overflow) bar, drawn apart in red.
        latency_histogram(self._y[:count], self.edges, self._percent)
        set_curve(self.histogram_curve, self.edges, self._percent)
        set_curve(self.overflow_curve, self._overflow_edges, self._percent[-1:])
        share = float(self._percent[-1])
        if share != self._overflow_share:
            self._overflow_share = share
            self.overflow_label.setText(f"≥ {self.overflow_ms:g} ms: {share:.1f}%")
        # The y range moves only in steps of 25 %, not on every redraw.
        top = min(100.0, 25.0 * np.ceil(self._percent.max() / 25.0))
        if top != self._histogram_top:
            self._histogram_top = top
            self.histogram.getPlotItem().setYRange(0.0, top, padding=0)
            self.overflow_label.setPos(self.edges[-1], top)
        set_curve(self.timeline_curve, self._x[:count], np.minimum(self._y[:count], self.overflow_ms))
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
            f"gaps {status.get('gaps', 0)}   outages {status.get('outages', 0)}   "
            f"bins {status.get('bins', feed.bins)}   (hover for what these mean)"
        )
