"""The trial state machine of the cursor task: pure, one call per decoded bin, no LSL and no Qt.

A trial goes::

    inter_trial --(pause over)--> reach --(cursor enters target)--> hold --(held hold_ms)--> success
                                    ^                                 |
                                    +------(cursor leaves target)-----+
    reach or hold --(timeout_s after the target appeared)--> timeout

``success`` and ``timeout`` last one bin, then the next pause begins. The task's clock is the
decoder's: every decoded bin advances it by one bin width, so it runs the same in real time and in
lockstep.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from rtbci.profile import CursorTaskConfig
from rtbci.task.cursor import Cursor, blend_velocity, ideal_velocity

__all__ = ["CursorTask", "TaskFrame", "TrialResult", "TrialState"]


class TrialState(IntEnum):
    """The task's state in a bin; its value is what the task stream carries."""

    INTER_TRIAL = 0
    REACH = 1
    HOLD = 2
    SUCCESS = 3
    TIMEOUT = 4

    @property
    def label(self) -> str:
        """``inter_trial``, ``reach``, ``hold``, ``success`` or ``timeout``."""
        return self.name.lower()


@dataclass(frozen=True)
class TaskFrame:
    """What the task shows after one bin.

    Attributes
    ----------
    cursor
        ``(2,)`` cursor position.
    target
        ``(2,)`` centre of the current trial's target (of the last trial during ``inter_trial``;
        the centre before the first trial).
    state
        The trial state.
    trial_id
        Number of the current (or last) trial, from 1; 0 before the first one.
    hold_fraction
        Share of the hold done, 0 outside ``hold``.
    cued_velocity
        ``(2,)`` the ideal velocity of this bin (straight to the target at the assist speed; zero with
        no target shown): the cue a participant is asked to follow.
    events
        Trial events of this bin, as the marker stream writes them (``target_on``, ``enter``,
        ``exit``, ``success``, ``timeout``).
    """

    cursor: np.ndarray
    target: np.ndarray
    state: TrialState
    trial_id: int
    hold_fraction: float
    cued_velocity: np.ndarray
    events: tuple[str, ...]


@dataclass(frozen=True)
class TrialResult:
    """One finished trial.

    Attributes
    ----------
    trial_id
        Trial number, from 1.
    start, target
        ``(2,)`` cursor position when the target appeared, and the target centre.
    target_radius
        Radius of the target's acceptance circle.
    success
        Whether the target was held long enough before the timeout.
    time_to_target_s
        Target onset to the cursor's last entry into the target, the hold excluded (Gilja et al.
        2012); NaN for a timeout.
    duration_s
        Target onset to the end of the trial (success or timeout).
    entry
        ``(2,)`` cursor position at its last entry into the target; NaN for a timeout.
    path_length
        Distance the cursor travelled from target onset to its last entry; NaN for a timeout.
    """

    trial_id: int
    start: np.ndarray
    target: np.ndarray
    target_radius: float
    success: bool
    time_to_target_s: float
    duration_s: float
    entry: np.ndarray
    path_length: float


class _Targets:
    """Where the next target is: centre-out in shuffled blocks, or random in the workspace."""

    def __init__(self, config: CursorTaskConfig) -> None:
        self.config = config
        self._rng = np.random.default_rng(config.seed)
        self._block: list[int] = []

    def next(self, cursor: np.ndarray) -> np.ndarray:
        cfg = self.config
        if cfg.targets == "center_out":
            if not self._block:
                self._block = [int(k) for k in self._rng.permutation(cfg.n_targets)]
            angle = 2.0 * np.pi * self._block.pop(0) / cfg.n_targets
            return cfg.center_out_radius * np.array([np.cos(angle), np.sin(angle)])
        # The whole acceptance circle inside the workspace; the validator keeps min_distance reachable.
        reach = cfg.workspace_half_width - cfg.target_radius
        while True:
            target = self._rng.uniform(-reach, reach, size=2)
            if np.hypot(*(target - cursor)) >= cfg.min_distance:
                return target


class CursorTask:
    """Runs trials on a stream of decoded velocities, one bin per :meth:`step`.

    Parameters
    ----------
    config
        The profile's ``[task]`` section.
    bin_s
        Bin width in seconds: the integration step and the task's clock.

    Attributes
    ----------
    results
        Finished trials, oldest first.
    """

    def __init__(self, config: CursorTaskConfig, bin_s: float) -> None:
        if bin_s <= 0:
            raise ValueError(f"bin_s must be > 0, got {bin_s}")
        self.config = config
        self.bin_s = bin_s
        self.cursor = Cursor(config.workspace_half_width, bin_s)
        self.results: list[TrialResult] = []
        self._targets = _Targets(config)
        self._hold_bins = round(config.hold_ms / 1000.0 / bin_s)
        self._timeout_bins = round(config.timeout_s / bin_s)
        self._pause_bins = round(config.inter_trial_ms / 1000.0 / bin_s)
        self._state = TrialState.INTER_TRIAL
        self._target = np.zeros(2)
        self._trial_id = 0
        self._paused = 0
        self._trial_bins = 0
        self._held = 0
        self._start = np.zeros(2)
        self._path = 0.0
        self._entry_bins = 0
        self._entry = np.full(2, np.nan)
        self._entry_path = np.nan

    @property
    def state(self) -> TrialState:
        """The state after the last bin."""
        return self._state

    def step(self, decoded_velocity: np.ndarray) -> TaskFrame:
        """Advance one bin with the decoded velocity of that bin.

        Parameters
        ----------
        decoded_velocity
            ``(2,)`` decoded velocity in the output's units (position units per second).

        Returns
        -------
        TaskFrame
            The task after this bin.
        """
        if self._state in (TrialState.SUCCESS, TrialState.TIMEOUT):
            self._state = TrialState.INTER_TRIAL
            self._paused = 0
            if self.config.targets == "center_out":
                self.cursor.place(np.zeros(2))
        if self._state == TrialState.INTER_TRIAL:
            return self._pause()
        events: list[str] = []
        cued = ideal_velocity(self.cursor.position, self._target, self.config.assist_speed, self.bin_s)
        steered = self.config.gain * np.asarray(decoded_velocity, dtype=np.float64)
        self._path += self.cursor.move(blend_velocity(steered, cued, self.config.assist))
        self._trial_bins += 1
        offset = self.cursor.position - self._target
        inside = float(np.hypot(offset[0], offset[1])) <= self.config.target_radius
        if self._state == TrialState.REACH and inside:
            self._state = TrialState.HOLD
            self._held = 0
            self._entry_bins = self._trial_bins
            self._entry = self.cursor.position.copy()
            self._entry_path = self._path
            events.append("enter")
        elif self._state == TrialState.HOLD and not inside:
            self._state = TrialState.REACH
            events.append("exit")
        elif self._state == TrialState.HOLD:
            self._held += 1
        if self._state == TrialState.HOLD and self._held >= self._hold_bins:
            self._finish(success=True)
            events.append("success")
        elif self._trial_bins >= self._timeout_bins:
            self._finish(success=False)
            events.append("timeout")
        return self._frame(cued, events)

    def _pause(self) -> TaskFrame:
        if self._paused < self._pause_bins:
            self._paused += 1
            return self._frame(np.zeros(2), [])
        self._trial_id += 1
        self._target = self._targets.next(self.cursor.position)
        self._state = TrialState.REACH
        self._trial_bins = 0
        self._start = self.cursor.position.copy()
        self._path = 0.0
        self._entry = np.full(2, np.nan)
        self._entry_path = np.nan
        return self._frame(np.zeros(2), ["target_on"])

    def _finish(self, success: bool) -> None:
        self.results.append(
            TrialResult(
                trial_id=self._trial_id,
                start=self._start,
                target=self._target.copy(),
                target_radius=self.config.target_radius,
                success=success,
                time_to_target_s=self._entry_bins * self.bin_s if success else np.nan,
                duration_s=self._trial_bins * self.bin_s,
                entry=self._entry if success else np.full(2, np.nan),
                path_length=self._entry_path if success else np.nan,
            )
        )
        self._state = TrialState.SUCCESS if success else TrialState.TIMEOUT

    def _frame(self, cued: np.ndarray, events: list[str]) -> TaskFrame:
        holding = self._state == TrialState.HOLD
        return TaskFrame(
            cursor=self.cursor.position.copy(),
            target=self._target.copy(),
            state=self._state,
            trial_id=self._trial_id,
            hold_fraction=self._held / self._hold_bins if holding and self._hold_bins else 0.0,
            cued_velocity=cued,
            events=tuple(events),
        )
