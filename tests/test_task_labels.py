"""Calibration labels from task stream rows (rtbci.task.labels): cue and ReFIT, pure, no LSL."""

import numpy as np
import pytest

from rtbci.profile import CursorTaskConfig
from rtbci.task import CursorTask, TrialState
from rtbci.task.labels import cue_labels, refit_labels, task_labels
from rtbci.task.stream import TASK_CHANNELS, write_sample

BIN_S = 0.02
REACH, HOLD = int(TrialState.REACH), int(TrialState.HOLD)


def _row(cursor, target, state, cued=(0.0, 0.0), decoded=(0.0, 0.0), trial_id=1) -> np.ndarray:
    return np.array([*cursor, *target, state, trial_id, *cued, *decoded], dtype=np.float64)


def _angle(v: np.ndarray) -> float:
    return float(np.degrees(np.arctan2(v[1], v[0])))


def test_cue_labels_are_the_cued_velocity_column():
    rows = np.stack(
        [
            _row((0, 0), (0.1, 0), REACH, cued=(0.05, 0.0), decoded=(-1.0, 2.0)),
            _row((0.001, 0), (0.1, 0), REACH, cued=(0.05, 0.01), decoded=(3.0, 3.0)),
        ]
    )
    np.testing.assert_array_equal(cue_labels(rows), [[0.05, 0.0], [0.05, 0.01]])
    assert cue_labels(rows).dtype == np.float64


def test_refit_rotates_the_decoded_velocity_from_the_previous_cursor_to_the_target_keeping_its_speed():
    # The previous row's cursor at the origin, the target straight up; decoded velocity points right.
    rows = np.stack(
        [
            _row((0, 0), (0, 0.1), REACH),
            _row((0.006, 0), (0, 0.1), REACH, decoded=(0.3, 0.0)),
            _row((0.006, 0), (0, 0.1), REACH, decoded=(-0.03, -0.04)),
        ]
    )
    labels = refit_labels(rows)
    np.testing.assert_allclose(labels[1], [0.0, 0.3], atol=1e-12)
    assert _angle(labels[1]) == pytest.approx(90.0), "rotated by 90 degrees, from right to up"
    # From (0.006, 0) to (0, 0.1): the direction of the cursor the velocity moved from, speed 0.05.
    expected = np.array([-0.006, 0.1]) / np.hypot(0.006, 0.1) * 0.05
    np.testing.assert_allclose(labels[2], expected, atol=1e-12)
    assert np.hypot(*labels[2]) == pytest.approx(0.05), "speed kept"


def test_refit_is_zero_on_the_target_and_while_no_target_is_shown():
    target = (0.1, 0.0)
    rows = np.stack(
        [
            _row((0, 0), target, int(TrialState.INTER_TRIAL), decoded=(0.2, 0.2), trial_id=0),
            _row((0, 0), target, REACH, decoded=(0.2, 0.2)),  # target_on: the participant saw none yet
            _row((0.004, 0), target, REACH, decoded=(0.2, 0.0)),  # reaching
            _row((0.1, 0), target, HOLD, decoded=(0.2, 0.0)),  # moved from outside: still a reach
            _row((0.1, 0), target, HOLD, decoded=(0.2, 0.0)),  # held: on the target
            _row((0.1, 0), target, int(TrialState.SUCCESS), decoded=(0.2, 0.0)),
            _row((0, 0), target, int(TrialState.INTER_TRIAL), decoded=(0.2, 0.0)),
            _row((0, 0), target, int(TrialState.TIMEOUT), decoded=(0.2, 0.0)),
            _row((0, 0), target, int(TrialState.INTER_TRIAL), decoded=(0.2, 0.0)),
        ]
    )
    labels = refit_labels(rows)
    moving = np.hypot(labels[:, 0], labels[:, 1]) > 0
    np.testing.assert_array_equal(moving, [False, False, True, True, False, False, False, False, False])
    np.testing.assert_allclose(labels[2:4], [[0.2, 0.0], [0.2, 0.0]], atol=1e-12)


def test_refit_is_zero_within_the_target_radius_even_while_reaching():
    rows = np.stack([_row((0.095, 0), (0.1, 0.0), REACH), _row((0.1, 0), (0.1, 0.0), HOLD, decoded=(0, 1))])
    assert np.hypot(*refit_labels(rows)[1]) == pytest.approx(1.0)
    np.testing.assert_array_equal(refit_labels(rows, target_radius=0.01)[1], [0.0, 0.0])


def test_labels_of_a_task_run_point_at_the_target_and_the_cue_moves_the_cursor_there():
    """Rows written by the real task (assist 1, decoded velocity orthogonal noise) give sane labels."""
    config = CursorTaskConfig(n_targets=4, inter_trial_ms=100.0, assist=1.0)
    task = CursorTask(config, BIN_S)
    rng = np.random.default_rng(0)
    rows = np.zeros((600, len(TASK_CHANNELS)))
    for k in range(len(rows)):
        decoded = rng.normal(0.0, 0.1, size=2)
        write_sample(rows[k], task.step(decoded), decoded)
    assert sum(r.success for r in task.results) >= 3, "assist 1 reaches every target"
    cue, refit = cue_labels(rows), refit_labels(rows, config.target_radius)
    reach = rows[:, 4] == REACH
    assert np.hypot(cue[:, 0], cue[:, 1]).max() == pytest.approx(config.assist_speed)
    moving = np.hypot(refit[:, 0], refit[:, 1]) > 0
    assert moving.any() and np.all(rows[np.flatnonzero(moving) - 1, 4] == REACH)
    # Where both move, cue and ReFIT agree in direction: both point from the cursor at the target.
    both = moving & (np.hypot(cue[:, 0], cue[:, 1]) > 0) & reach
    cosine = np.sum(cue[both] * refit[both], axis=1) / (np.hypot(*cue[both].T) * np.hypot(*refit[both].T))
    np.testing.assert_allclose(cosine, 1.0, atol=1e-9)
    np.testing.assert_allclose(np.hypot(*refit[moving].T), np.hypot(*rows[moving, 8:10].T), rtol=1e-12)


def test_bad_rows_name_the_shape_or_the_state():
    with pytest.raises(ValueError, match=r"shape \(n, 10\).*got \(3, 6\)"):
        cue_labels(np.zeros((3, 6)))
    bad = np.stack([_row((0, 0), (0, 0), 7)])
    with pytest.raises(ValueError, match="row 0: state 7 is not a trial state code"):
        refit_labels(bad)
    with pytest.raises(ValueError, match="target_radius must be >= 0"):
        refit_labels(np.zeros((0, 10)), target_radius=-1.0)
    with pytest.raises(ValueError, match="one of cue, refit, got 'hand'"):
        task_labels(np.zeros((0, 10)), "hand")
    assert refit_labels(np.zeros((0, 10))).shape == (0, 2)
