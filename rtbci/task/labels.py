"""Velocity labels for calibration without a hand, read from the task stream's rows.

Pure (no LSL): the rows are what ``rtbci task`` published (:mod:`rtbci.task.stream`), one per
decoded bin, as a recording holds them. Each function gives one ``(2,)`` velocity label per row:
what the decoder should have put out in that row's bin.

- ``cue`` (:func:`cue_labels`): the cued velocity, the straight path to the target at the assist
  speed that the task moved the cursor along (assist 1). The participant is asked to imagine
  following it.
- ``refit`` (:func:`refit_labels`): the closed-loop recalibration of Gilja et al. 2012 (ReFIT,
  "A high-performance neural prosthesis enabled by control algorithm design", Nat. Neurosci. 15,
  1752-1757): the participant is assumed to always intend to go straight to the target, so the
  decoded velocity is rotated to point from the cursor at the target with its speed kept, and set
  to zero when the cursor is on the target (hold) or no target is shown.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from rtbci.task.stream import CUED_VELOCITY, CURSOR, DECODED_VELOCITY, STATE, TARGET, TASK_CHANNELS
from rtbci.task.trials import TrialState

__all__ = ["LABEL_LAG_MS", "TASK_LABELS", "TaskLabels", "cue_labels", "refit_labels", "task_labels"]

TaskLabels = Literal["cue", "refit"]
TASK_LABELS: tuple[TaskLabels, ...] = ("cue", "refit")

# How far each label lags the neural data it is fit to (``featurize``'s default lag), in ms: the label
# of a bin is read from the task row stamped this long after the bin's end.
# - cue: -120. The participant follows the cue with a visuomotor delay (100-150 ms in visually guided
#   reaching; Cunningham et al. 2011), so a bin's neural data answer the cue shown that long before.
#   On a 60 s cued block of the simulated participant (120 ms feedback delay), Stage A's held-out R²
#   was 0.035 at 0 ms and 0.133 at -120 ms (0.125 at -200; docs/results.md).
# - refit: 0. The decoded velocity a row carries came from the neural data of its own bin, so its
#   speed belongs there; the direction already reads the cursor the participant last saw moved.
LABEL_LAG_MS: dict[TaskLabels, float] = {"cue": -120.0, "refit": 0.0}


def _checked(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[1] != len(TASK_CHANNELS):
        raise ValueError(
            f"task stream rows must have shape (n, {len(TASK_CHANNELS)}) "
            f"({', '.join(TASK_CHANNELS)}), got {rows.shape}"
        )
    states = rows[:, STATE]
    valid = np.isin(states, [int(s) for s in TrialState])
    if not valid.all():
        row = int(np.flatnonzero(~valid)[0])
        raise ValueError(
            f"task stream row {row}: state {states[row]:g} is not a trial state code "
            f"({', '.join(f'{int(s)} {s.label}' for s in TrialState)})"
        )
    return rows


def cue_labels(rows: np.ndarray) -> np.ndarray:
    """The cued velocity of each row: the ``cue`` label.

    The task computes it before moving the cursor in the bin, from where the cursor was, straight
    at the target at the assist speed (landing on the centre in the last bin); it is zero while no
    target is shown (``inter_trial``) and on the bin a target appears.

    Parameters
    ----------
    rows
        ``(n, len(TASK_CHANNELS))`` task stream samples, oldest first.

    Returns
    -------
    np.ndarray
        ``(n, 2)`` float64 velocities, in the decoder's output units.

    Raises
    ------
    ValueError
        If ``rows`` has the wrong shape or a state that is no trial state code.
    """
    return _checked(rows)[:, CUED_VELOCITY].copy()


def refit_labels(rows: np.ndarray, target_radius: float = 0.0) -> np.ndarray:
    """The decoded velocity rotated toward the target, speed kept: the ``refit`` label.

    After Gilja et al. 2012 (ReFIT): in a closed-loop block the participant is assumed to intend
    the straight path to the target, at the speed the decoder gave. Row ``t``'s decoded velocity
    moved the cursor from where row ``t-1`` left it, so the direction is from the previous row's
    cursor to this row's target, and the task as the participant saw it is the previous row's
    state (the first row stands in for its own previous one). The label is zero, as the
    participant holds still or rests:

    - when the previous state was ``hold`` (the cursor is on the target);
    - when it was ``inter_trial``, ``success`` or ``timeout`` (no target shown, or the trial
      ended: the decoded velocity did not move the cursor, or the target it saw is gone);
    - when that cursor was within ``target_radius`` of the target's centre.

    Parameters
    ----------
    rows
        ``(n, len(TASK_CHANNELS))`` task stream samples, oldest first, one per decoded bin.
    target_radius
        The target's acceptance radius (the profile's ``[task] target_radius``). The ``hold``
        state already marks a cursor on the target in rows the task wrote; the radius also covers
        a target that appeared under the cursor.

    Returns
    -------
    np.ndarray
        ``(n, 2)`` float64 velocities, in the decoder's output units.

    Raises
    ------
    ValueError
        If ``rows`` has the wrong shape or a state that is no trial state code, or
        ``target_radius`` is negative.
    """
    if target_radius < 0:
        raise ValueError(f"target_radius must be >= 0, got {target_radius}")
    rows = _checked(rows)
    if len(rows) == 0:
        return np.zeros((0, 2))
    seen = np.concatenate([rows[:1], rows[:-1]])
    to_target = rows[:, TARGET] - seen[:, CURSOR]
    distance = np.hypot(to_target[:, 0], to_target[:, 1])
    reaching = (seen[:, STATE] == int(TrialState.REACH)) & (distance > target_radius) & (distance > 0)
    decoded = rows[:, DECODED_VELOCITY]
    speed = np.hypot(decoded[:, 0], decoded[:, 1])
    labels = np.zeros((len(rows), 2))
    labels[reaching] = to_target[reaching] / distance[reaching, None] * speed[reaching, None]
    return labels


def task_labels(rows: np.ndarray, kind: TaskLabels, target_radius: float = 0.0) -> np.ndarray:
    """:func:`cue_labels` or :func:`refit_labels` by name (``target_radius`` is for ``refit``).

    Raises
    ------
    ValueError
        If ``kind`` is not one of :data:`TASK_LABELS`, or as the label function does.
    """
    if kind == "cue":
        return cue_labels(rows)
    if kind == "refit":
        return refit_labels(rows, target_radius)
    raise ValueError(f"task labels must be one of {', '.join(TASK_LABELS)}, got {kind!r}")
