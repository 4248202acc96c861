"""Qt-free: follows the cursor task's LSL stream, when a task runs, for the dashboard's cursor view.

``rtbci task`` publishes one sample per decoded bin (:data:`rtbci.task.stream.TASK_CHANNELS`).
The task may start before or after the dashboard, and stop and start again: a
``pylsl.ContinuousResolver`` watches for its stream without blocking the window, and the
feed follows whichever task stream of this rig is up.

From the state channel the feed tells trials apart and keeps a running score: the share of
the last :attr:`TaskFeed.window_trials` finished trials that were acquired, and their mean
time to target, as the task itself counts it: from the target's onset to the cursor's last
entry into it, the hold excluded (Gilja et al. 2012).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from rtbci.lsl import require_pylsl
from rtbci.profile import Profile
from rtbci.task.publisher import task_stream_spec
from rtbci.task.stream import CURSOR, STATE, TARGET, TRIAL_ID
from rtbci.task.trials import TrialState

__all__ = ["TaskFeed", "TaskScore"]

# How often the resolver's results are looked at while no task stream is followed.
_LOOK_EVERY_S = 0.5


@dataclass(frozen=True)
class TaskScore:
    """The running score over the last finished trials.

    Attributes
    ----------
    trials
        Finished trials counted (at most the feed's window).
    acquired
        Of those, the ones that ended in success.
    mean_time_to_target_s
        Mean time from target onset to the last entry into it over the acquired ones (NaN when none).
    """

    trials: int
    acquired: int
    mean_time_to_target_s: float

    @property
    def success_rate(self) -> float:
        """``acquired / trials`` (NaN before the first finished trial)."""
        return self.acquired / self.trials if self.trials else float("nan")


class TaskFeed:
    """The newest frame of the rig's cursor task, its hold progress and running score.

    Parameters
    ----------
    profile
        The rig profile: names the task stream (:func:`~rtbci.task.publisher.task_stream_spec`)
        and gives the hold time.
    window_trials
        Finished trials the running score is taken over.

    Attributes
    ----------
    target_radius
        Radius of the task's targets (``[task]``).
    cursor, target
        ``(2,)`` the task's cursor (what the participant sees) and target centre; ``None`` before
        the first sample.
    state, trial_id
        The task state and trial number of the newest sample.
    """

    def __init__(self, profile: Profile, window_trials: int = 20) -> None:
        self.pylsl = require_pylsl()
        self.spec = task_stream_spec(profile)
        self.hold_s = profile.task.hold_ms / 1000.0
        self.target_radius = profile.task.target_radius
        self.window_trials = window_trials
        self.resolver = self.pylsl.ContinuousResolver(prop="source_id", value=self.spec.source_id)
        self.inlet = None
        self.cursor: np.ndarray | None = None
        self.target: np.ndarray | None = None
        self.state = TrialState.INTER_TRIAL
        self.trial_id = 0
        self._newest_time = 0.0
        self._hold_since: float | None = None
        self._shown_at: float | None = None
        self._outcomes: deque[tuple[bool, float]] = deque(maxlen=window_trials)
        self._next_look = 0.0

    @property
    def following(self) -> bool:
        """True while a task stream is open."""
        return self.inlet is not None

    def poll(self) -> int:
        """Take the task samples waiting (opening the task stream once it appears); returns how many."""
        if self.inlet is None:
            self._look_for_stream()
            return 0
        data, stamps = self.inlet.pull_chunk(timeout=0.0, max_samples=4096, as_numpy=True)
        for sample, stamp in zip(data, stamps, strict=True):
            self._take(sample, float(stamp))
        return len(stamps)

    def _look_for_stream(self) -> None:
        now = time.monotonic()
        if now < self._next_look:
            return
        self._next_look = now + _LOOK_EVERY_S
        found = self.resolver.results()
        if found:
            inlet = self.pylsl.StreamInlet(found[0], max_buflen=2, processing_flags=self.pylsl.proc_clocksync)
            inlet.open_stream(timeout=1.0)
            self.inlet = inlet

    def _take(self, sample: np.ndarray, stamp: float) -> None:
        state, trial_id = TrialState(int(sample[STATE])), int(sample[TRIAL_ID])
        if trial_id != self.trial_id and state in (TrialState.REACH, TrialState.HOLD):
            self._shown_at = stamp  # a new trial's first bin: its target is shown
        entered = self._hold_since  # the last entry into the target, while the hold lasts
        if state is TrialState.HOLD and self.state is not TrialState.HOLD:
            self._hold_since = stamp
        elif state is not TrialState.HOLD:
            self._hold_since = None
        if state is not self.state and state in (TrialState.SUCCESS, TrialState.TIMEOUT):
            acquired = state is TrialState.SUCCESS and self._shown_at is not None
            entry = stamp if entered is None else entered  # no hold state with hold_ms = 0
            self._outcomes.append((acquired, entry - self._shown_at if acquired else float("nan")))
        self.cursor, self.target = sample[CURSOR].astype(float), sample[TARGET].astype(float)
        self.state, self.trial_id, self._newest_time = state, trial_id, stamp

    @property
    def hold_fraction(self) -> float:
        """Share of the hold done at the newest sample (0 outside a hold)."""
        if self._hold_since is None or self.hold_s <= 0:
            return 0.0
        return min((self._newest_time - self._hold_since) / self.hold_s, 1.0)

    def score(self) -> TaskScore:
        """The running score over the last finished trials."""
        times = [seconds for acquired, seconds in self._outcomes if acquired]
        return TaskScore(
            trials=len(self._outcomes),
            acquired=len(times),
            mean_time_to_target_s=float(np.mean(times)) if times else float("nan"),
        )

    def close(self) -> None:
        """Stop following the task stream."""
        if self.inlet is not None:
            self.inlet.close_stream()
            self.inlet = None
