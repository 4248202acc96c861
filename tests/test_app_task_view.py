"""The dashboard's view of the cursor task: a task stream from a plain pylsl outlet, followed and scored."""

from __future__ import annotations

import time
import tomllib
import uuid
from pathlib import Path

import numpy as np
import pylsl
import pytest

from apps.decoder.task_feed import TaskFeed
from rtbci.profile import profile_from_dict
from rtbci.task.publisher import TASK_CHANNELS, task_stream_spec
from rtbci.task.trials import TrialState

DEMO_PROFILE = Path(__file__).resolve().parents[1] / "profiles" / "demo.toml"
BIN_S = 0.02
# One letter per state, so that a trial reads as a row of bins.
R, H, S, T = TrialState.REACH, TrialState.HOLD, TrialState.SUCCESS, TrialState.TIMEOUT
W = TrialState.INTER_TRIAL  # waiting between trials


def _task_row(cursor, state, trial) -> list[float]:
    """A task sample toward the target at (0.08, 0), with no cued or decoded velocity."""
    return [*cursor, 0.08, 0.0, float(state), float(trial), 0.0, 0.0, 0.0, 0.0]


def _profile():
    data = tomllib.loads(DEMO_PROFILE.read_text(encoding="utf-8"))
    data["streams"]["output"]["source_id"] = f"task-view-{uuid.uuid4().hex[:8]}"  # no crosstalk
    return profile_from_dict(data, DEMO_PROFILE)


def _trials() -> list[tuple[TrialState, int, tuple[float, float]]]:
    """Trial 1: 10 bins of reach, a 4-bin hold broken by an exit, then a full 25-bin hold (500 ms) and
    success; trial 2: 30 bins of reach and a timeout. (state, trial id, cursor) per bin."""
    one = [R] * 10 + [H] * 4 + [R] * 3 + [H] * 25 + [S] + [W] * 5
    two = [R] * 30 + [T] + [W] * 5
    return [(state, 1, (0.01 * k, 0.0)) for k, state in enumerate(one)] + [
        (state, 2, (0.0, -0.001 * k)) for k, state in enumerate(two)
    ]


def _plain_outlet(profile) -> pylsl.StreamOutlet:
    """The task stream as any LSL program would publish it (not rtbci's publisher)."""
    spec = task_stream_spec(profile)
    info = pylsl.StreamInfo(spec.name, spec.type, len(TASK_CHANNELS), spec.rate, "float32", spec.source_id)
    return pylsl.StreamOutlet(info)


def _wait(feed: TaskFeed, until, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not until() and time.monotonic() < deadline:
        feed.poll()
        time.sleep(0.02)


@pytest.mark.slow
def test_a_task_started_after_the_dashboard_is_followed_and_scored():
    profile = _profile()
    feed = TaskFeed(profile)
    assert feed.poll() == 0 and not feed.following  # no task yet: nothing blocks, nothing shown
    outlet = _plain_outlet(profile)
    try:
        _wait(feed, lambda: feed.following)
        assert feed.following
        time.sleep(0.5)  # the inlet is connected before anything is pushed
        frames = _trials()
        start = pylsl.local_clock()
        halfway = 10 + 4 + 3 + 12  # trial 1, 12 bins into its second hold
        for k, (state, trial, cursor) in enumerate(frames[:halfway]):
            outlet.push_sample(_task_row(cursor, state, trial), start + k * BIN_S)
        _wait(feed, lambda: feed.state is H and feed.hold_fraction > 0.4)
        # The hold restarted on the exit: 12 bins in, 11 intervals of 20 ms out of 500 ms.
        assert feed.hold_fraction == pytest.approx(11 * BIN_S / 0.5)
        assert feed.target.tolist() == pytest.approx([0.08, 0.0])
        for k, (state, trial, cursor) in enumerate(frames[halfway:], start=halfway):
            outlet.push_sample(_task_row(cursor, state, trial), start + k * BIN_S)
        _wait(feed, lambda: feed.score().trials == 2)
    finally:
        feed.close()
        del outlet
    score = feed.score()
    assert (score.trials, score.acquired) == (2, 1)
    assert score.success_rate == 0.5
    # Target onset to the last entry (the second hold's first bin): 17 bins of 20 ms.
    assert score.mean_time_to_target_s == pytest.approx(17 * BIN_S)
    assert feed.trial_id == 2 and feed.state is W and feed.hold_fraction == 0.0
    np.testing.assert_allclose(feed.cursor, [0.0, -0.035], atol=1e-6)


def test_the_summary_says_what_to_start_when_no_task_runs(qtbot):
    from apps.decoder.task_overlay import task_summary

    feed = TaskFeed(_profile())
    try:
        text = task_summary(feed)
    finally:
        feed.close()
    assert "none running" in text and "rtbci task" in text and feed.spec.name in text


def test_the_overlay_draws_the_target_to_scale_and_fills_it_during_a_hold(qtbot):
    import pyqtgraph as pg

    from apps.decoder.task_overlay import TaskOverlay

    feed = TaskFeed(_profile())
    plot = pg.PlotWidget()
    qtbot.addWidget(plot)
    overlay = TaskOverlay(plot)
    try:
        feed.inlet = object()  # stands for an open stream; _take is fed the samples directly
        for k, state in enumerate([R] * 3 + [H] * 13):
            feed._take(np.array([0.07, 0.0, 0.08, 0.0, float(state), 1.0]), k * BIN_S)
        overlay.refresh(feed)
        r = feed.target_radius
        assert overlay.target.isVisible() and overlay.hold.isVisible()
        rect = overlay.target.rect()
        assert (rect.x(), rect.y(), rect.width()) == pytest.approx((0.08 - r, -r, 2 * r))
        # 12 intervals of a 500 ms hold: the filled disc's area is that share of the target's.
        assert (overlay.hold.rect().width() / (2 * r)) ** 2 == pytest.approx(12 * BIN_S / 0.5)
        assert "hold 48%" in overlay.label.text() and "no trial finished yet" in overlay.label.text()
        feed._take(np.array([0.07, 0.0, 0.08, 0.0, float(S), 1.0]), 16 * BIN_S)
        overlay.refresh(feed)
        assert not overlay.target.isVisible() and not overlay.hold.isVisible()
        assert "acquired 1/1 (100%)" in overlay.label.text()
    finally:
        feed.inlet = None
        feed.close()
