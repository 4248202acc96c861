"""The task stream's sample layout: one float sample per decoded bin, and back to a frame.

Pure (no LSL): ``rtbci task`` writes it (:mod:`rtbci.task.publisher`), the simulated participant
and the dashboard read it live, and calibration reads it back from a recording to make labels
(:mod:`rtbci.task.labels`). Every reader uses the column indices here, never a number of its own.

Channels (:data:`TASK_CHANNELS`):

- ``cursor_x``, ``cursor_y``: the cursor after this bin;
- ``target_x``, ``target_y``: the current (or last) target's centre;
- ``state``: :class:`~rtbci.task.trials.TrialState` code;
- ``trial_id``: trial number from 1, 0 before the first;
- ``cued_vel_x``, ``cued_vel_y``: the ideal velocity of this bin, straight at the target at the
  assist speed (zero with no target shown): the ``cue`` calibration label;
- ``decoded_vel_x``, ``decoded_vel_y``: the decoder's velocity the task stepped on this bin,
  before any assist: what a ``refit`` calibration rotates toward the target.
"""

from __future__ import annotations

import numpy as np

from rtbci.task.trials import TaskFrame, TrialState

__all__ = [
    "CUED_VELOCITY",
    "CURSOR",
    "DECODED_VELOCITY",
    "STATE",
    "TARGET",
    "TASK_CHANNELS",
    "TRIAL_ID",
    "frame_from_sample",
    "task_channel_units",
    "write_sample",
]

TASK_CHANNELS = (
    "cursor_x",
    "cursor_y",
    "target_x",
    "target_y",
    "state",
    "trial_id",
    "cued_vel_x",
    "cued_vel_y",
    "decoded_vel_x",
    "decoded_vel_y",
)

CURSOR = slice(0, 2)
TARGET = slice(2, 4)
STATE = TASK_CHANNELS.index("state")
TRIAL_ID = TASK_CHANNELS.index("trial_id")
CUED_VELOCITY = slice(6, 8)
DECODED_VELOCITY = slice(8, 10)


def task_channel_units(velocity_units: str) -> list[str]:
    """Units of each task channel, given the decoder's velocity units (e.g. ``"m/s"``).

    Positions are the velocity units without ``/s`` (or times ``s`` when they have none).
    """
    position = velocity_units.removesuffix("/s") if velocity_units.endswith("/s") else f"{velocity_units}*s"
    return [position] * 4 + ["code", "count"] + [velocity_units] * 4


def write_sample(sample: np.ndarray, frame: TaskFrame, decoded_velocity: np.ndarray) -> None:
    """Fill ``sample`` (``(len(TASK_CHANNELS),)``) with one bin's frame and the velocity it stepped on."""
    sample[CURSOR] = frame.cursor
    sample[TARGET] = frame.target
    sample[STATE] = int(frame.state)
    sample[TRIAL_ID] = frame.trial_id
    sample[CUED_VELOCITY] = frame.cued_velocity
    sample[DECODED_VELOCITY] = decoded_velocity


def frame_from_sample(sample: np.ndarray) -> TaskFrame:
    """A task stream sample as a frame (``hold_fraction`` 0 and no events: the stream has neither)."""
    return TaskFrame(
        cursor=sample[CURSOR].astype(np.float64),
        target=sample[TARGET].astype(np.float64),
        state=TrialState(int(sample[STATE])),
        trial_id=int(sample[TRIAL_ID]),
        hold_fraction=0.0,
        cued_velocity=sample[CUED_VELOCITY].astype(np.float64),
        events=(),
    )
