"""Closed-loop performance of a block of trials: success rate, time to target, path efficiency, bits/s.

Fitts's index of difficulty is the Shannon form (MacKenzie & Buxton 1992, "Extending Fitts' law to
two-dimensional tasks", CHI '92)::

    ID = log2(D / W + 1)   bits

with D the distance from the cursor at target onset to the target centre and W the target width,
the diameter of its acceptance circle. BCI cursor studies report it over the time to acquire the
target, the hold excluded (Gilja et al. 2012, Nat Neurosci 15:1752, "A high-performance neural
prosthesis enabled by control algorithm design").

The information rate here is the bits of the targets acquired over all the time spent reaching::

    rate = sum(ID_i over successful trials) / (sum(time to target over successes) + sum(duration of timeouts))

so that a failed trial costs its time and earns nothing: a decoder that never acquires a target
scores 0, and one that acquires every target scores the Fitts throughput of its block.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rtbci.task.trials import TrialResult

__all__ = ["TaskMetrics", "index_of_difficulty", "path_efficiency", "summarize"]


def index_of_difficulty(distance: float, width: float) -> float:
    """Fitts's index of difficulty in bits, Shannon form ``log2(D / W + 1)``.

    Parameters
    ----------
    distance
        Distance D from the start to the target centre.
    width
        Target width W (the acceptance circle's diameter), in the same unit.

    Returns
    -------
    float
        Bits; 0 when the start is at the centre.
    """
    if width <= 0:
        raise ValueError(f"target width must be > 0, got {width}")
    return float(np.log2(distance / width + 1.0))


def path_efficiency(trial: TrialResult) -> float:
    """Straight-line distance over the distance travelled, from target onset to the last entry.

    1.0 for a straight path; NaN for a timeout, and for a trial that started inside its target.
    """
    if not trial.success or trial.path_length == 0.0:
        return np.nan
    straight = float(np.hypot(*(trial.entry - trial.start)))
    return straight / trial.path_length


@dataclass(frozen=True)
class TaskMetrics:
    """Performance over a block of trials.

    Attributes
    ----------
    trials
        Trials scored.
    success_rate
        Share of trials acquired (0..1).
    mean_time_to_target_s
        Mean time to target over successful trials; NaN with none.
    path_efficiency
        Mean :func:`path_efficiency` over successful trials; NaN with none.
    fitts_bits_per_s
        Information rate (see the module docstring); 0 with no success.
    """

    trials: int
    success_rate: float
    mean_time_to_target_s: float
    path_efficiency: float
    fitts_bits_per_s: float

    def as_dict(self) -> dict[str, float | int]:
        """The figures as a JSON-ready mapping."""
        return {
            "trials": self.trials,
            "success_rate": self.success_rate,
            "mean_time_to_target_s": self.mean_time_to_target_s,
            "path_efficiency": self.path_efficiency,
            "fitts_bits_per_s": self.fitts_bits_per_s,
        }


def summarize(trials: Sequence[TrialResult]) -> TaskMetrics:
    """Score a block of finished trials.

    Parameters
    ----------
    trials
        Trials as :attr:`CursorTask.results` lists them.

    Returns
    -------
    TaskMetrics

    Raises
    ------
    ValueError
        With no trials.
    """
    if not trials:
        raise ValueError("no finished trials to score")
    successes = [t for t in trials if t.success]
    bits = sum(
        index_of_difficulty(float(np.hypot(*(t.target - t.start))), 2.0 * t.target_radius) for t in successes
    )
    seconds = sum(t.time_to_target_s if t.success else t.duration_s for t in trials)
    efficiencies = [path_efficiency(t) for t in successes]
    efficiencies = [e for e in efficiencies if np.isfinite(e)]
    times = [t.time_to_target_s for t in successes]
    return TaskMetrics(
        trials=len(trials),
        success_rate=len(successes) / len(trials),
        mean_time_to_target_s=float(np.mean(times)) if times else np.nan,
        path_efficiency=float(np.mean(efficiencies)) if efficiencies else np.nan,
        fitts_bits_per_s=bits / seconds if seconds > 0 else 0.0,
    )
