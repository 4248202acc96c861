"""Signals: a map of every input channel, traces of chosen channels, and each channel's state.

Everything comes from the engine's per-bin records (the decoder's input features of each bin, and
for an LFP decoder each bin's spike counts, read from shared memory without a lock), so the views
cost the decoder nothing. The records carry no raw samples: the map shows a chosen feature per
channel, or the spike rate, and the traces the per-bin LMP (for an LFP decoder; spike counts for a
spike decoder), which the titles say. Feature values are z-scores against the normalisation the
decoder was trained with, so a channel that reads unlike training stands out.
Channel states (switched off, dead, noisy) follow :mod:`apps.decoder.channels`; NaN counts come from
the engine's status, per stream.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from apps.decoder.channels import ChannelState, DecoderChannels, channel_states
from apps.decoder.feed import DashboardFeed
from apps.decoder.labels import fix_lines
from apps.decoder.plotting import fixed_plot, set_curve

__all__ = ["MAX_TRACES", "SPIKE_RATE", "SignalPanel", "parse_channels"]

# Seconds of bins averaged for the map, and judged for the channel states.
MAP_S = 1.0
STATE_S = 5.0
# Colour range of the map, and each trace's range around its lane (z-scores).
Z_LIMIT = 4.0
# The map's spike-rate entry and its colour range (spikes a second).
SPIKE_RATE = "spike rate (Hz)"
RATE_LIMIT = 100.0
_Z_COLORS = pg.ColorMap([0.0, 0.5, 1.0], [(40, 90, 210), (250, 250, 250), (210, 40, 40)])
_RATE_COLORS = pg.ColorMap([0.0, 0.5, 1.0], [(255, 255, 255), (250, 160, 40), (120, 20, 20)])
MAX_TRACES = 8
_LANE = 2.0 * Z_LIMIT
_STATES_EVERY_TICKS = 15
_MARKS = {
    ChannelState.OFF: ("x", (30, 30, 30), "switched off"),
    ChannelState.DEAD: ("s", (20, 20, 160), "dead"),
    ChannelState.NOISY: ("o", (200, 0, 200), "noisy"),
}


def parse_channels(text: str, n_channels: int) -> list[int]:
    """Channel numbers from ``"0, 12 40"`` (commas or spaces), in the order given, without repeats.

    Raises
    ------
    ValueError
        On a word that is not a channel number below ``n_channels``, none at all, or more than
        :data:`MAX_TRACES`.
    """
    channels: list[int] = []
    for word in text.replace(",", " ").split():
        if not word.isdigit() or int(word) >= n_channels:
            raise ValueError(f"{word!r} is not a channel number from 0 to {n_channels - 1}")
        if int(word) not in channels:
            channels.append(int(word))
    if not channels or len(channels) > MAX_TRACES:
        raise ValueError(f"give 1 to {MAX_TRACES} channel numbers")
    return channels


class SignalPanel(QtWidgets.QWidget):
    """The signal views of one decoder's input.

    Parameters
    ----------
    channels
        The decoder's channels (normalisation, switched-off channels, feature names); ``None`` when
        the profile's artifact could not be read, which ``unavailable`` says.
    bin_ms
        Bin width.
    history_s
        Seconds shown by the traces (at most the feed's ``signal_s``).
    unavailable
        Why there is nothing to show, when ``channels`` is ``None``.
    spike_channels
        Spike channels of the rig: with as many as the decoder's (LFP) channels, the map offers
        :data:`SPIKE_RATE` (from the records' spike counts).

    Attributes
    ----------
    frames
        Redraws done (the window redraws this panel only while it is shown).
    states
        ``(C,)`` :class:`~apps.decoder.channels.ChannelState` of the last judgement.
    traced
        The channels the traces show.
    """

    def __init__(
        self,
        channels: DecoderChannels | None,
        bin_ms: float,
        history_s: float = 10.0,
        unavailable: str = "",
        spike_channels: int = 0,
    ) -> None:
        super().__init__()
        self.channels = channels
        self.bin_ms = bin_ms
        self.history_n = int(history_s * 1000.0 / bin_ms)
        self.frames = 0
        self._ticks = 0
        self.summary = QtWidgets.QLabel(unavailable or "waiting for data")
        self.summary.setObjectName("channel_states")
        self.summary.setWordWrap(True)
        fix_lines(self.summary, 2)
        self.summary.setToolTip(
            "Switched off: the channel check (rtbci.train.channel_check) turned the channel off in this "
            "decoder; it reads 0.\nDead: a feature's mean over the last "
            f"{STATE_S:g} s is more than 3 SD below training, and none above, or nothing changes.\n"
            f"Noisy: a feature's mean over the last {STATE_S:g} s is more than 3 SD above training.\n"
            "NaN: sample values the engine replaced before featurizing, per stream (not per channel)."
        )
        layout = QtWidgets.QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.summary, 0, 0, 1, 2)
        self.feature_box = QtWidgets.QComboBox()
        self.channel_edit = QtWidgets.QLineEdit()
        self.states = np.zeros(0, dtype=np.int8)
        self.traced: list[int] = []
        if channels is None:
            self.map = self.traces = None
            return
        n = channels.n_channels
        self.columns = math.ceil(math.sqrt(n))
        self.rows = math.ceil(n / self.columns)
        self.map = fixed_plot("", (0.0, self.columns), (0.0, self.rows), "channel + column", "row")
        map_item = self.map.getPlotItem()
        map_item.invertY(True)
        map_item.showGrid(x=False, y=False)
        map_item.getAxis("bottom").setTicks([[(x + 0.5, str(x)) for x in range(self.columns)]])
        map_item.getAxis("left").setTicks([[(y + 0.5, str(y * self.columns)) for y in range(self.rows)]])
        map_item.getAxis("left").setLabel("channel (row start)")
        map_item.getAxis("bottom").setLabel("+ column")
        # One cell per channel, row by row; the image is its transpose (pyqtgraph's image[x, y]).
        self._cells = np.full((self.rows, self.columns), np.nan)
        self.image = pg.ImageItem(self._cells.T, levels=(-Z_LIMIT, Z_LIMIT))
        self.image.setRect(QtCore.QRectF(0.0, 0.0, self.columns, self.rows))
        self.image.setColorMap(_Z_COLORS)
        self.map.addItem(self.image)
        self.colorbar = pg.ColorBarItem(
            values=(-Z_LIMIT, Z_LIMIT), colorMap=_Z_COLORS, interactive=False, label="z vs training", width=12
        )
        self.colorbar.setImageItem(self.image, insert_in=map_item)
        self.marks = pg.ScatterPlotItem(size=11, pxMode=True)
        self.map.addItem(self.marks)
        self.map.setToolTip(
            "Each cell is one input channel (row's first channel + column). Colour: the chosen feature's "
            f"mean over the last {MAP_S:g} s, as a z-score against the decoder's training normalisation, "
            f"or the spike rate over the last {MAP_S:g} s (0 to {RATE_LIMIT:g} spikes a second).\n"
            "Marks: × switched off, ■ dead, ○ noisy (hover the line above for the rules)."
        )
        self.feature_box.addItems(channels.feature_names)
        self.feature_box.setCurrentIndex(len(channels.feature_names) - 1)
        if channels.modality == "lfp" and spike_channels == n:
            self.feature_box.addItem(SPIKE_RATE)
        self.feature_box.setToolTip("The feature the map shows")
        self.feature_box.currentIndexChanged.connect(self._name_map)
        self._name_map()

        lfp = channels.modality == "lfp"
        first = "LMP" if lfp else "spike count"
        source = "decoder feature, not raw LFP" if lfp else "decoder input"
        self.traces = fixed_plot(
            f"{first} per {bin_ms:g} ms bin ({source})",
            (-history_s, 0.0),
            (-Z_LIMIT, _LANE * (MAX_TRACES - 1) + Z_LIMIT),
            "time (s)",
            f"channel (z ±{Z_LIMIT:g} a lane)",
        )
        self.traces.setToolTip(
            "One lane per chosen channel: the channel's first feature in each decoded bin (for an LFP "
            "decoder the LMP, its < 5 Hz local motor potential), as a z-score against the decoder's "
            f"training normalisation, clipped to ±{Z_LIMIT:g}. The engine's records hold each bin's "
            "decoder input, not raw samples."
        )
        pens = [pg.mkPen(pg.intColor(k, hues=MAX_TRACES), width=1) for k in range(MAX_TRACES)]
        self.trace_curves = [self.traces.plot(pen=pen) for pen in pens]
        defaults = np.linspace(0, n - 1, min(4, n)).round().astype(int)
        self.channel_edit.setText(", ".join(str(c) for c in defaults))
        self.channel_edit.setToolTip(f"Channels to trace: up to {MAX_TRACES} numbers, e.g. 0, 31, 63")
        self.channel_edit.editingFinished.connect(self._choose_traces)
        self._choose_traces()
        controls = QtWidgets.QHBoxLayout()
        controls.addWidget(QtWidgets.QLabel("map feature:"))
        controls.addWidget(self.feature_box)
        controls.addStretch(1)
        controls.addWidget(QtWidgets.QLabel("trace channels:"))
        controls.addWidget(self.channel_edit)
        layout.addLayout(controls, 1, 0, 1, 2)
        layout.addWidget(self.map, 2, 0)
        layout.addWidget(self.traces, 2, 1)
        layout.setColumnStretch(0, 1)
        layout.setColumnStretch(1, 1)
        self._x = np.zeros(self.history_n)
        self._y = np.zeros((MAX_TRACES, self.history_n))  # one buffer per lane: curves keep theirs
        self.states = np.zeros(n, dtype=np.int8)
        self._scale = 1.0 / channels.std
        self._flat_mean = channels.mean.reshape(-1)
        self._flat_scale = self._scale.reshape(-1)

    def _name_map(self) -> None:
        name = self.feature_box.currentText()
        rate = name == SPIKE_RATE
        levels = (0.0, RATE_LIMIT) if rate else (-Z_LIMIT, Z_LIMIT)
        self.image.setColorMap(_RATE_COLORS if rate else _Z_COLORS)
        self.image.setLevels(levels)
        self.colorbar.setColorMap(_RATE_COLORS if rate else _Z_COLORS)
        self.colorbar.setLevels(levels)
        self.colorbar.getAxis("left").setLabel("spikes/s" if rate else "z vs training")
        self.map.getPlotItem().setTitle(f"All {self.channels.n_channels} channels: {name}, last {MAP_S:g} s")

    def _choose_traces(self) -> None:
        try:
            self.traced = parse_channels(self.channel_edit.text(), self.channels.n_channels)
        except ValueError as error:
            self.channel_edit.setStyleSheet("border: 2px solid #d62728;")
            self.channel_edit.setToolTip(str(error))
            return
        self.channel_edit.setStyleSheet("")
        self.channel_edit.setToolTip(f"Channels to trace: up to {MAX_TRACES} numbers, e.g. 0, 31, 63")
        item = self.traces.getPlotItem()
        item.getAxis("left").setTicks([[(_LANE * lane, f"ch {c}") for lane, c in enumerate(self.traced)]])
        item.setYRange(-Z_LIMIT, _LANE * (len(self.traced) - 1) + Z_LIMIT, padding=0)
        for curve in self.trace_curves[len(self.traced) :]:
            curve.setData([], [])

    def refresh(self, feed: DashboardFeed) -> None:
        """Redraw from the feed (the window calls this on its timer while the panel is shown)."""
        if self.channels is None or len(feed.features) == 0:
            return
        n_features = len(self.channels.feature_names)
        values = feed.features.values
        last = max(1, round(MAP_S * 1000.0 / self.bin_ms))
        feature = self.feature_box.currentIndex()
        if feature < n_features:
            columns = slice(feature, None, n_features)
            mean = values[-last:, columns].mean(axis=0)
            shown = (mean - self.channels.mean[:, feature]) * self._scale[:, feature]
        elif feed.spike_counts is not None and len(feed.spike_counts):
            shown = feed.spike_counts.values[-last:].mean(axis=0) * (1000.0 / self.bin_ms)
        else:  # spike rate chosen, but these records carry no spike counts
            shown = np.full(self.channels.n_channels, np.nan)
        self._cells.reshape(-1)[: len(shown)] = shown
        self.image.setImage(self._cells.T, autoLevels=False)
        n = min(len(values), self.history_n)
        times = feed.features.times[-n:]
        np.subtract(times, times[-1], out=self._x[:n])
        for lane, channel in enumerate(self.traced):
            column = channel * n_features
            trace = (values[-n:, column] - self._flat_mean[column]) * self._flat_scale[column]
            y = self._y[lane, :n]
            np.clip(trace, -Z_LIMIT, Z_LIMIT, out=y)
            y += _LANE * lane
            set_curve(self.trace_curves[lane], self._x[:n], y)
        if self._ticks % _STATES_EVERY_TICKS == 0:
            self._judge(feed)
        self._ticks += 1
        self.frames += 1

    def _judge(self, feed: DashboardFeed) -> None:
        """Channel states over the last :data:`STATE_S` seconds, their marks, and the summary line."""
        values = feed.features.values
        block = values[-max(2, int(STATE_S * 1000.0 / self.bin_ms)) :]
        if len(block) < 2:
            return
        states = channel_states(block.reshape(len(block), *feed.feature_shape), self.channels)
        if not np.array_equal(states, self.states) or not self._ticks:
            self.states = states
            self._mark(states)
        parts = []
        for state, (_, _, word) in _MARKS.items():
            found = np.flatnonzero(states == state)
            listed = ", ".join(str(c) for c in found[:12]) + (" …" if len(found) > 12 else "")
            parts.append(f"{word} {len(found)}" + (f" ({listed})" if len(found) else ""))
        inputs = (feed.status or {}).get("inputs", {})
        nan = ", ".join(f"{role} {health['nan_total']}" for role, health in inputs.items())
        self.summary.setText(
            f"channels: {' · '.join(parts)} · ok {int((states == ChannelState.OK).sum())}\n"
            f"NaN values replaced (per stream): {nan or '–'}"
        )

    def _mark(self, states: np.ndarray) -> None:
        spots = []
        for state, (symbol, color, _) in _MARKS.items():
            for channel in np.flatnonzero(states == state):
                row, column = divmod(int(channel), self.columns)
                spots.append(
                    {
                        "pos": (column + 0.5, row + 0.5),
                        "symbol": symbol,
                        "pen": pg.mkPen(color, width=2),
                        "brush": None,
                        "data": int(channel),
                    }
                )
        self.marks.setData(spots)
