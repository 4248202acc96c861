"""pyqtgraph settings and small helpers every panel uses: fixed ranges, fast curves, a preallocated x axis."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

__all__ = ["COLORS", "fixed_plot", "set_curve"]

# One colour per role, the same in every panel.
COLORS = {
    "x": (66, 135, 245),
    "y": (245, 130, 48),
    "target": (220, 50, 47),
    "hand": (40, 170, 90),
    "latency": (120, 80, 200),
    "deadline": (220, 50, 47),
}

pg.setConfigOptions(antialias=False, useOpenGL=False, background="w", foreground="k")


def fixed_plot(
    title: str, x_range: tuple[float, float], y_range: tuple[float, float], x_label: str, y_label: str
) -> pg.PlotWidget:
    """A plot with fixed ranges (no auto-range work on every redraw) and no mouse interaction."""
    plot = pg.PlotWidget(title=title)
    plot.setMinimumSize(300, 220)
    item = plot.getPlotItem()
    item.setXRange(*x_range, padding=0)
    item.setYRange(*y_range, padding=0)
    item.disableAutoRange()
    item.setMouseEnabled(x=False, y=False)
    item.hideButtons()
    item.showGrid(x=True, y=True, alpha=0.2)
    # No SI-prefix rescaling: ticks show the values in the units the label names.
    item.getAxis("bottom").setLabel(x_label, siPrefixEnableRanges=())
    item.getAxis("left").setLabel(y_label, siPrefixEnableRanges=())
    item.setMenuEnabled(False)
    return plot


def set_curve(curve: pg.PlotDataItem, x: np.ndarray, y: np.ndarray) -> None:
    """Redraw a curve from float64 arrays the caller keeps finite (so pyqtgraph's check is skipped)."""
    curve.setData(x, y, skipFiniteCheck=True)
