"""The cursor task's trial logic and metrics (rtbci.task): pure, bin by bin, no LSL."""

import dataclasses

import numpy as np
import pytest

from rtbci.profile import CursorTaskConfig
from rtbci.task import (
    Cursor,
    CursorTask,
    TrialResult,
    TrialState,
    index_of_difficulty,
    path_efficiency,
    summarize,
)

BIN_S = 0.02
# One centre-out target at (0.08, 0), no pause: every trial starts at once from the centre.
ONE_TARGET = CursorTaskConfig(n_targets=1, inter_trial_ms=0.0)
# Velocities that move the cursor by a whole distance in one 20 ms bin.
TO_TARGET = np.array([0.08 / BIN_S, 0.0])
STILL = np.zeros(2)


def _started(config: CursorTaskConfig = ONE_TARGET) -> CursorTask:
    task = CursorTask(config, BIN_S)
    frame = task.step(STILL)
    assert frame.state == TrialState.REACH and frame.events == ("target_on",)
    np.testing.assert_allclose(frame.target, [0.08, 0.0], atol=1e-12)
    return task


def _run(task: CursorTask, velocity: np.ndarray, bins: int) -> list:
    return [task.step(velocity) for _ in range(bins)]


def test_success_comes_500_ms_after_the_cursor_enters_and_stays():
    task = _started()
    frame = task.step(TO_TARGET)
    assert frame.state == TrialState.HOLD and frame.events == ("enter",)
    frames = _run(task, STILL, 25)
    assert all(f.state == TrialState.HOLD for f in frames[:24])
    assert frames[23].hold_fraction == pytest.approx(24 / 25)
    assert frames[24].state == TrialState.SUCCESS and frames[24].events == ("success",)
    (result,) = task.results
    assert result.success and result.time_to_target_s == pytest.approx(BIN_S), "the hold is not counted"
    assert result.duration_s == pytest.approx(BIN_S + 0.5)


def test_leaving_the_target_restarts_the_hold():
    task = _started()
    task.step(TO_TARGET)
    _run(task, STILL, 20)  # 400 ms of the 500 ms hold
    out = task.step(np.array([0.03 / BIN_S, 0.0]))
    assert out.state == TrialState.REACH and out.events == ("exit",)
    back = task.step(np.array([-0.03 / BIN_S, 0.0]))
    assert back.state == TrialState.HOLD and back.events == ("enter",)
    frames = _run(task, STILL, 25)
    assert [f.state for f in frames].count(TrialState.SUCCESS) == 1
    assert frames[-1].state == TrialState.SUCCESS, "a full 500 ms after the second entry, not the first"
    (result,) = task.results
    assert result.time_to_target_s == pytest.approx(23 * BIN_S), "time to the last entry"
    np.testing.assert_allclose(result.entry, [0.08, 0.0], atol=1e-12)
    assert result.path_length == pytest.approx(0.08 + 0.03 + 0.03)


def test_a_trial_times_out_10_s_after_its_target_appears():
    task = _started()
    frames = _run(task, STILL, 500)
    assert all(f.state == TrialState.REACH for f in frames[:499])
    assert frames[499].state == TrialState.TIMEOUT and frames[499].events == ("timeout",)
    (result,) = task.results
    assert not result.success and result.duration_s == pytest.approx(10.0)
    assert np.isnan(result.time_to_target_s)


def test_a_hold_cut_by_the_timeout_is_a_timeout():
    task = _started()
    _run(task, STILL, 490)
    task.step(TO_TARGET)
    frames = _run(task, STILL, 9)
    assert frames[-1].state == TrialState.TIMEOUT and not task.results[0].success


def test_the_pause_between_trials_shows_no_target_and_holds_the_cursor():
    config = dataclasses.replace(ONE_TARGET, inter_trial_ms=100.0)
    task = CursorTask(config, BIN_S)
    frames = _run(task, np.array([1.0, 1.0]), 6)
    assert [f.state for f in frames] == [TrialState.INTER_TRIAL] * 5 + [TrialState.REACH]
    assert all(f.trial_id == 0 for f in frames[:5]) and frames[5].trial_id == 1
    np.testing.assert_array_equal(frames[5].cursor, [0.0, 0.0])


def test_centre_out_shows_each_of_8_targets_once_per_block_from_the_centre():
    config = dataclasses.replace(CursorTaskConfig(), inter_trial_ms=0.0, timeout_s=1.0)
    task = CursorTask(config, BIN_S)
    starts, targets = [], []
    while len(task.results) < 16:
        frame = task.step(np.array([0.3, 0.1]))  # wanders off; the next trial starts at the centre anyway
        if "target_on" in frame.events:
            starts.append(frame.cursor)
            targets.append(frame.target)
    angles = np.round(np.degrees(np.arctan2(*np.array(targets)[:, ::-1].T)) % 360).astype(int)
    expected = list(range(0, 360, 45))
    assert sorted(angles[:8]) == expected and sorted(angles[8:16]) == expected
    assert list(angles[:8]) != list(angles[8:16]), "each block is shuffled"
    np.testing.assert_allclose(np.linalg.norm(targets, axis=1), 0.08)
    np.testing.assert_array_equal(np.array(starts), 0.0)


@pytest.mark.parametrize("targets", ["center_out", "random"])
def test_full_assist_acquires_every_target_on_its_own(targets):
    task = CursorTask(dataclasses.replace(CursorTaskConfig(), targets=targets, assist=1.0), BIN_S)
    _run(task, np.array([0.4, -0.4]), 2000)  # the decoded velocity has no say at assist 1
    metrics = summarize(task.results)
    assert metrics.trials >= 20 and metrics.success_rate == 1.0
    assert metrics.path_efficiency == pytest.approx(1.0)
    # Straight at 0.15 m/s from 8 cm (centre-out) to the edge of a 1.5 cm target.
    if targets == "center_out":
        assert metrics.mean_time_to_target_s == pytest.approx(0.44, abs=BIN_S)


@pytest.mark.parametrize("targets", ["center_out", "random"])
def test_a_decoder_that_outputs_zeros_acquires_nothing(targets):
    task = CursorTask(dataclasses.replace(CursorTaskConfig(), targets=targets), BIN_S)
    _run(task, STILL, 5 * 520)
    metrics = summarize(task.results)
    assert metrics.trials == 5
    assert metrics.success_rate == 0.0 and metrics.fitts_bits_per_s == 0.0
    assert np.isnan(metrics.mean_time_to_target_s)


def test_random_targets_are_inside_the_workspace_and_far_enough_from_the_cursor():
    config = dataclasses.replace(
        CursorTaskConfig(), targets="random", inter_trial_ms=0.0, timeout_s=0.1, hold_ms=0.0
    )
    task = CursorTask(config, BIN_S)
    for _ in range(500):
        frame = task.step(np.array([0.9, 0.7]))
        if "target_on" in frame.events:
            assert np.all(np.abs(frame.target) <= 0.12 - 0.015)
            assert np.hypot(*(frame.target - frame.cursor)) >= 0.05


def test_partial_assist_blends_decoded_and_ideal_velocity():
    config = dataclasses.replace(ONE_TARGET, assist=0.5)
    task = _started(config)
    frame = task.step(np.array([0.0, 0.2]))
    # Half of (0, 0.2) m/s decoded and half of 0.15 m/s toward (0.08, 0), for 20 ms.
    np.testing.assert_allclose(frame.cursor, [0.5 * 0.15 * BIN_S, 0.5 * 0.2 * BIN_S])
    np.testing.assert_allclose(frame.cued_velocity, [0.15, 0.0])


def test_the_gain_scales_the_decoded_velocity_but_not_the_cue_or_the_assist():
    config = dataclasses.replace(ONE_TARGET, assist=0.5, gain=3.0)
    task = _started(config)
    frame = task.step(np.array([0.0, 0.2]))
    # Half of 3 x (0, 0.2) m/s decoded and half of 0.15 m/s toward (0.08, 0), for 20 ms.
    np.testing.assert_allclose(frame.cursor, [0.5 * 0.15 * BIN_S, 0.5 * 3.0 * 0.2 * BIN_S])
    np.testing.assert_allclose(frame.cued_velocity, [0.15, 0.0])


def test_the_cursor_stays_in_the_workspace():
    cursor = Cursor(0.12, BIN_S)
    travelled = cursor.move(np.array([100.0, -3.0]))
    np.testing.assert_allclose(cursor.position, [0.12, -0.06])
    assert travelled == pytest.approx(np.hypot(0.12, 0.06))


def _trial(trial_id, start, target, success, time_to_target_s, duration_s, entry, path_length):
    return TrialResult(
        trial_id=trial_id,
        start=np.array(start),
        target=np.array(target),
        target_radius=0.015,
        success=success,
        time_to_target_s=time_to_target_s,
        duration_s=duration_s,
        entry=np.array(entry),
        path_length=path_length,
    )


def test_metrics_on_a_hand_computed_block():
    trials = [
        # D = 9 cm, W = 3 cm: log2(3 + 1) = 2 bits, a straight path to the entry point.
        _trial(1, [0, 0], [0.09, 0], True, 0.5, 1.0, [0.075, 0], 0.075),
        # D = 3 cm: log2(1 + 1) = 1 bit; a 3-4-5 entry reached along the two legs (efficiency 5 / 7).
        _trial(2, [0, 0], [0.018, 0.024], True, 0.5, 1.0, [0.0108, 0.0144], 0.0252),
        # A timeout costs its full 1 s.
        _trial(3, [0, 0], [0.09, 0], False, np.nan, 1.0, [np.nan, np.nan], np.nan),
    ]
    assert index_of_difficulty(0.09, 0.03) == pytest.approx(2.0)
    assert index_of_difficulty(0.0, 0.03) == 0.0
    assert path_efficiency(trials[0]) == pytest.approx(1.0)
    assert path_efficiency(trials[1]) == pytest.approx(5 / 7)
    assert np.isnan(path_efficiency(trials[2]))
    metrics = summarize(trials)
    assert metrics.trials == 3
    assert metrics.success_rate == pytest.approx(2 / 3)
    assert metrics.mean_time_to_target_s == pytest.approx(0.5)
    assert metrics.path_efficiency == pytest.approx((1.0 + 5 / 7) / 2)
    assert metrics.fitts_bits_per_s == pytest.approx((2.0 + 1.0) / (0.5 + 0.5 + 1.0))
    assert metrics.as_dict()["fitts_bits_per_s"] == pytest.approx(1.5)


def test_no_trials_cannot_be_scored():
    with pytest.raises(ValueError, match="no finished trials"):
        summarize([])
