"""Stream health: each input's rate, gaps, NaN counts, reconnects and state, with a traffic light.

The column headers' tooltips define gap, late and outage with :data:`rtbci.glossary.DEFINITIONS`."""

from __future__ import annotations

import time
from enum import StrEnum

from PySide6 import QtWidgets

from apps.decoder.feed import DashboardFeed
from apps.decoder.labels import ElidedLabel, fix_lines
from rtbci.glossary import DEFINITIONS
from rtbci.profile import Profile

__all__ = ["HealthPanel", "Light", "input_light"]

# An input whose measured rate is off its nominal rate by more than this is amber.
_RATE_TOLERANCE = 0.1
# Below this fraction of its nominal rate an input counts as silent.
_SILENT_FRACTION = 0.1
_COLUMNS = ("", "stream", "state", "rate (Hz)", "gaps", "NaN", "late bins", "reconnects", "outages")
_HEADER_TIPS = {
    "state": "waiting (found, nothing sent yet), connected or lost; (timestamps!) when the source's "
    "timestamps do not fit their arrival (hover the state)",
    "rate (Hz)": "samples per second arriving now, against the profile's rate",
    "gaps": f"Gap: {DEFINITIONS['gap']}",
    "NaN": "non-finite sample values replaced before featurizing",
    "late bins": f"Late: {DEFINITIONS['late']}\nCounted per input: a bin late on two inputs counts in "
    "both rows, and once in the latency panel's total.",
    "reconnects": "times the inlet found the stream again after losing it",
    "outages": f"Outage: {DEFINITIONS['outage']}\nShown as count (total seconds).",
}


class Light(StrEnum):
    """The indicator colours."""

    GREEN = "#2ca02c"
    AMBER = "#ff9f0e"
    RED = "#d62728"
    OFF = "#b0b0b0"


def input_light(health: dict, rate: float | None, nominal_rate: float, new_problems: int) -> Light:
    """Red when the input is lost, in an outage or silent (under a tenth of its rate: liblsl may still
    be reconnecting quietly); amber when its rate is off, its timestamps do not fit their arrival, or
    new gaps, NaNs or late bins appeared since the last look; green otherwise.

    Parameters
    ----------
    health
        The input's entry of the engine status (``state`` is ``waiting``, ``connected`` or ``lost``;
        ``in_outage`` and ``timestamp_warning`` where the engine reports them).
    rate
        Measured samples per second, ``None`` before two status polls.
    nominal_rate
        The profile's rate.
    new_problems
        Gaps, NaN values and late bins added since the previous status.
    """
    silent = rate is not None and nominal_rate > 0 and rate < _SILENT_FRACTION * nominal_rate
    if health["state"] != "connected" or health.get("in_outage") or silent:
        return Light.RED
    off_rate = (
        rate is not None and nominal_rate > 0 and abs(rate - nominal_rate) > _RATE_TOLERANCE * nominal_rate
    )
    if off_rate or new_problems > 0 or health.get("timestamp_warning"):
        return Light.AMBER
    return Light.GREEN


class HealthPanel(QtWidgets.QGroupBox):
    """A table of the inputs (spikes, LFP, and the behavior stream the dashboard reads) and the engine line.

    Parameters
    ----------
    profile
        Gives the nominal rates.
    """

    def __init__(self, profile: Profile) -> None:
        super().__init__("Stream health")
        self.nominal = {"spikes": profile.streams.spikes.rate, "lfp": profile.streams.lfp.rate}
        if profile.streams.behavior is not None:
            self.nominal["behavior"] = profile.streams.behavior.rate
        grid = QtWidgets.QGridLayout(self)
        self.headers: dict[str, QtWidgets.QLabel] = {}
        for column, title in enumerate(_COLUMNS):
            header = QtWidgets.QLabel(f"<b>{title}</b>")
            header.setToolTip(_HEADER_TIPS.get(title, ""))
            grid.addWidget(header, 0, column)
            self.headers[title] = header
        grid.setColumnStretch(1, 1)  # the stream names take what is left, elided
        self.cells: dict[str, list[QtWidgets.QLabel]] = {}
        for row, role in enumerate(self.nominal, start=1):
            cells = [ElidedLabel() if column == 1 else QtWidgets.QLabel() for column in range(len(_COLUMNS))]
            cells[0].setFixedSize(16, 16)
            cells[1].setText(role)
            cells[2].setObjectName(f"state_{role}")
            for column, cell in enumerate(cells):
                grid.addWidget(cell, row, column)
            self.cells[role] = cells
        self.engine_line = QtWidgets.QLabel("engine: not started")
        self.engine_line.setObjectName("engine_state")
        self.engine_line.setWordWrap(True)
        fix_lines(self.engine_line, 4)
        grid.addWidget(self.engine_line, len(self.nominal) + 1, 0, 1, len(_COLUMNS))
        self.lights: dict[str, Light] = {}
        self._previous: dict[str, int] = {}
        self._behavior_seen: tuple[float, int] | None = None
        self.show_stopped("not started")

    def _set_light(self, role: str, light: Light) -> None:
        self.lights[role] = light
        self.cells[role][0].setStyleSheet(f"background-color: {light}; border-radius: 8px;")

    def show_stopped(self, text: str) -> None:
        """Every light red (or off before the first start) and the engine line set to ``text``."""
        for role, cells in self.cells.items():
            self._set_light(role, Light.OFF if text == "not started" else Light.RED)
            cells[2].setText("not connected")
        self.engine_line.setText(f"engine: {text}")
        self._previous.clear()
        self._behavior_seen = None

    def refresh(self, feed: DashboardFeed) -> None:
        """Update from the feed's latest status (a few times a second is enough)."""
        status = feed.status
        if status is None:
            return
        late_by_input = status["late_by_input"]
        for role, health in status["inputs"].items():
            problems = int(health["gaps"]) + int(health["nan_total"]) + int(late_by_input.get(role, 0))
            new_problems = problems - self._previous.get(role, problems)
            self._previous[role] = problems
            rate = feed.rates.rates.get(role)
            self._set_light(role, input_light(health, rate, self.nominal[role], new_problems))
            cells = self.cells[role]
            cells[1].setText(f"{role}: {health['stream']}")
            cells[2].setText(str(health["state"]) + (" (timestamps!)" if health["timestamp_warning"] else ""))
            cells[2].setToolTip(health["timestamp_warning"] or "")
            cells[3].setText("–" if rate is None else f"{rate:.0f}")
            cells[4].setText(str(health["gaps"]))
            cells[5].setText(str(health["nan_total"]))
            cells[6].setText(str(late_by_input.get(role, 0)))
            cells[7].setText(str(health["reconnects"]))
            cells[8].setText(f"{health['outages']} ({health['outage_s']:.1f} s)")
        if "behavior" in self.cells:
            self._refresh_behavior(feed)
        description = feed.description
        recorder = status.get("recorder")
        recording = "off" if recorder is None else f"on ({recorder['bins_written']} bins written)"
        self.engine_line.setText(
            f"engine: running in process {description.pid} — {status['bins']} bins, "
            f"{status['bins_per_s']:.1f}/s, gaps {status['gaps']}, clock resets {status['clock_resets']}, "
            f"non-finite outputs {status['nonfinite_outputs']}; output → {description.output_stream!r}; "
            f"recording {recording}; decode thread {status['scheduling']}"
            + (f"; ERRORS: {status['errors'][0]}" if status["errors"] else "")
        )

    def _refresh_behavior(self, feed: DashboardFeed) -> None:
        cells = self.cells["behavior"]
        follower = feed.follower
        if follower is None:
            self._set_light("behavior", Light.OFF)
            cells[2].setText("not used")
            cells[1].setText(f"behavior: {feed.truth_error or ''}"[:60])
            return
        now, appended = time.monotonic(), follower.rolling.appended
        rate = None
        if self._behavior_seen is not None and now > self._behavior_seen[0]:
            rate = (appended - self._behavior_seen[1]) / (now - self._behavior_seen[0])
        self._behavior_seen = (now, appended)
        state = "connected" if rate is None or rate > 0 else "silent"
        health = {"state": "connected" if state == "connected" else "lost"}
        self._set_light("behavior", input_light(health, rate, self.nominal["behavior"], 0))
        cells[1].setText("behavior (truth, read by the dashboard)")
        cells[2].setText(state)
        cells[3].setText("–" if rate is None else f"{rate:.0f}")
        for column in (4, 5, 6, 7, 8):
            cells[column].setText("–")
