"""The dashboard's panels without an engine (pytest-qt, offscreen): the latency histogram's overflow
bar, the labelled deadline line, tooltips that define the latency words from the glossary, a right
column whose width does not follow its texts, and a cursor view that points to and follows a cursor
off the view."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before Qt is imported

import numpy as np
import pytest
from app_fixtures import random_artifact, write_unique_profile

from apps.decoder.kinematics_panel import KinematicsPanel, edge_marker, follow_centre
from apps.decoder.latency_panel import LatencyPanel, latency_histogram
from apps.decoder.main_window import SIDE_WIDTH, DecoderWindow
from rtbci.glossary import DEFINITIONS


def test_latencies_at_or_past_the_range_go_into_the_overflow_bar(qtbot):
    panel = LatencyPanel(bin_ms=20.0, deadline_ms=10.0)
    qtbot.addWidget(panel)
    edges = panel.edges
    assert edges[-2] == 20.0 and edges[-1] > 20.0, "the last bar starts at one bin width"
    values = np.array([0.5, 0.6, 9.9, 19.99, 20.0, 35.0, 400.0, 1.0])
    percent = latency_histogram(values, edges, np.zeros(len(edges) - 1))
    assert percent.sum() == pytest.approx(100.0)
    assert percent[-1] == pytest.approx(100.0 * 3 / 8), "20, 35 and 400 ms are overflow"
    assert percent[-2] == pytest.approx(100.0 / 8), "19.99 ms is the last regular bar"
    assert percent[np.searchsorted(edges, 0.5, side="right") - 1] == pytest.approx(200.0 / 8)


def test_the_deadline_is_labelled_and_the_words_are_defined(qtbot):
    panel = LatencyPanel(bin_ms=20.0, deadline_ms=10.0)
    qtbot.addWidget(panel)
    assert [line.label.toPlainText() for line in panel.deadline_lines] == ["deadline 10 ms"] * 2
    assert panel.overflow_label.toPlainText() == "≥ 20 ms"
    for word in ("processing latency", "source latency", "late", "overdue", "gap", "outage"):
        assert DEFINITIONS[word] in panel.stats.toolTip(), word
    assert DEFINITIONS["overdue"] in panel.histogram.toolTip()
    assert "≥ 20 ms" not in panel.histogram.toolTip() and "last, red bar" in panel.histogram.toolTip()


def test_stream_health_headers_define_gap_late_and_outage(qtbot, tmp_path):
    window = DecoderWindow([write_unique_profile(tmp_path, random_artifact())], lower_priority=False)
    qtbot.addWidget(window)
    headers = window.health.headers
    assert DEFINITIONS["gap"] in headers["gaps"].toolTip()
    assert DEFINITIONS["late"] in headers["late bins"].toolTip()
    assert DEFINITIONS["outage"] in headers["outages"].toolTip()


def test_the_right_column_keeps_its_width_whatever_its_texts(qtbot, tmp_path):
    profile_path = write_unique_profile(tmp_path, random_artifact())
    window = DecoderWindow([profile_path], lower_priority=False)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    plots = (
        window.kinematics.traces,
        window.kinematics.cursor,
        window.latency.histogram,
        window.latency.timeline,
    )
    before = [plot.geometry() for plot in plots]
    assert window.side_panel.width() == SIDE_WIDTH

    long_path = tmp_path / ("a-very-long-folder-name-" * 8) / "rig.toml"
    card = window.model_card.values["profile"]
    card.setText(str(long_path))
    window.health.cells["spikes"][1].setText("spikes: " + "x" * 300)
    window.health.engine_line.setText("engine: " + "a long status line " * 40)
    qtbot.wait(100)  # the layout settles
    assert window.side_panel.width() == SIDE_WIDTH
    assert [plot.geometry() for plot in plots] == before, "the plots moved"
    assert card.text() == str(long_path) and card.shown_text() != card.text() and "…" in card.shown_text()

    card.setText("/srv/rig.toml")
    assert card.shown_text() == card.text(), "a short path is shown whole"


def test_edge_marker_and_follow_centre():
    assert edge_marker((0.0, 0.0), 0.15, (0.1, -0.14)) is None, "in view: no arrow"
    (x, y), direction, distance = edge_marker((0.0, 0.0), 0.15, (0.35, 0.0))
    assert x == pytest.approx(0.15 * 0.94) and y == 0.0 and direction == 0.0
    assert distance == pytest.approx(0.20)
    (x, y), direction, _ = edge_marker((0.0, 0.0), 0.15, (-0.3, -0.3))
    assert x == y == pytest.approx(-0.15 * 0.94) and direction == pytest.approx(-135.0)
    assert follow_centre((0.0, 0.0), 0.15, (0.1, 0.1)) == (0.0, 0.0), "inside: the view stays"
    assert follow_centre((0.0, 0.0), 0.15, (0.13, 0.0)) == (0.13, 0.0), "near the edge: re-centred"


def test_the_cursor_view_shows_an_off_view_cursor_and_can_follow_it(qtbot):
    panel = KinematicsPanel(velocity_limit=0.5, bin_ms=20.0)
    qtbot.addWidget(panel)
    panel.show()
    x_range = panel.cursor.getPlotItem().viewRange()[0]
    panel.show_cursor(0.35, 0.0)
    assert panel.off_view_arrow.isVisible() and panel.off_view_label.toPlainText() == "cursor 20 cm off view"
    assert panel.off_view_arrow.pos().x() == pytest.approx(0.141) and x_range[0] < 0.141 < x_range[1]
    panel.show_cursor(0.153, 0.0)  # just past the edge: never "0 cm"
    assert panel.off_view_label.toPlainText() == "cursor 3 mm off view"
    panel.show_cursor(0.05, 0.0)
    assert not panel.off_view_arrow.isVisible(), "back in view: no arrow"

    panel._dot[:, 0] = (0.35, -0.2)  # where the last redraw put the cursor
    panel.follow.setChecked(True)
    assert panel.view_centre == (0.35, -0.2)
    panel.show_cursor(0.4, -0.2)
    assert not panel.off_view_arrow.isVisible() and panel.view_centre == (0.35, -0.2)
    x_range, y_range = panel.cursor.getPlotItem().viewRange()
    assert x_range[0] < 0.4 < x_range[1] and y_range[0] < -0.2 < y_range[1]
    panel.follow.setChecked(False)
    assert panel.view_centre == (0.0, 0.0)
    assert not panel.reset_button.isEnabled(), "no engine: nothing to reset"
