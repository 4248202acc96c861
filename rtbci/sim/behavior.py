"""Reaching behaviour: centre-out and random-target reaches with minimum-jerk hand paths.

A reach goes: target appears (``target_on``), optional instructed delay, go cue
(``go``), reaction time, one minimum-jerk primary submovement (slightly bowed,
landing near the target) and sometimes a corrective one, ``reach_end``, a hold
on the target (``reward``), then a pause. :class:`ReachingTask` makes reaches one
after another; :class:`BehaviorBuffer` serves them as a continuous 1 kHz record
that can be read ahead (neurons lead the movement they encode).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy import signal

from rtbci.sim.config import TaskConfig
from rtbci.sim.filters import StatefulFilter, one_pole_smoother, unit_variance_scale

__all__ = ["BehaviorBuffer", "Kinematics", "ReachingTask"]

# Time constants of the slow internal states the neural models read.
_ENGAGED_TAU_S = 0.15  # movement engagement: drives beta desynchronisation
_PREP_TAU_S = 0.1  # preparatory state: rises after the target appears
_REBOUND_TAU_S = 0.25  # post-movement beta rebound
_REBOUND_WINDOW_S = (0.2, 1.0)  # after reach end
_JITTER_CUTOFF_HZ = 2.0


@dataclass
class Kinematics:
    """Per-sample behaviour and task state.

    Attributes
    ----------
    pos, vel, target
        ``(n, 2)`` hand position (m), hand velocity (m/s), current target (m).
    engaged
        ``(n,)`` smoothed 0..1: from the go cue until the reach ends.
    prep
        ``(n, 2)`` smoothed planned-reach vector (direction times distance /
        centre-out radius) from target onset until just after movement onset.
    rebound
        ``(n,)`` smoothed 0..1 post-movement window.
    """

    pos: np.ndarray
    vel: np.ndarray
    target: np.ndarray
    engaged: np.ndarray
    prep: np.ndarray
    rebound: np.ndarray

    def __len__(self) -> int:
        return self.pos.shape[0]

    def slice(self, start: int, stop: int) -> Kinematics:
        """Samples ``[start, stop)``."""
        return Kinematics(*(getattr(self, name)[start:stop] for name in _FIELDS))

    @staticmethod
    def concatenate(parts: list[Kinematics]) -> Kinematics:
        """Join consecutive pieces."""
        return Kinematics(*(np.concatenate([getattr(p, name) for p in parts]) for name in _FIELDS))


_FIELDS = ("pos", "vel", "target", "engaged", "prep", "rebound")


def minimum_jerk(tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-jerk displacement fraction and its derivative for ``tau`` in [0, 1].

    Returns
    -------
    shape, rate
        ``10τ³ − 15τ⁴ + 6τ⁵`` and its derivative with respect to τ.
    """
    tau = np.clip(tau, 0.0, 1.0)
    shape = tau**3 * (10.0 - 15.0 * tau + 6.0 * tau**2)
    rate = 30.0 * tau**2 * (1.0 - tau) ** 2
    return shape, rate


class ReachingTask:
    """An endless sequence of reaches, deterministic from its generator.

    Parameters
    ----------
    config
        Task settings.
    rate_hz
        Sampling rate of the kinematics.
    rng
        Source of all randomness of the task.
    """

    def __init__(self, config: TaskConfig, rate_hz: float, rng: np.random.Generator) -> None:
        self.config = config
        self.rate_hz = rate_hz
        self._rng = rng
        self._pos = np.zeros(2)
        self._engaged = one_pole_smoother(_ENGAGED_TAU_S, rate_hz, 1)
        self._prep = one_pole_smoother(_PREP_TAU_S, rate_hz, 2)
        self._rebound = one_pole_smoother(_REBOUND_TAU_S, rate_hz, 1)
        # Second-order low-pass of white noise: smooth tremor/postural drift whose
        # derivative stays small compared with reaching speeds.
        jitter_sos = signal.butter(2, _JITTER_CUTOFF_HZ, fs=rate_hz, output="sos")
        self._jitter = StatefulFilter(jitter_sos, 2)
        self._jitter_gain = config.jitter_m * unit_variance_scale(jitter_sos, rate_hz)
        self._last_jitter = np.zeros(2)

    def reaches(self) -> Iterator[tuple[Kinematics, list[tuple[int, str]]]]:
        """Yield ``(kinematics, markers)`` per reach; marker offsets are samples into the reach.

        A block of reaches of one task starts with a ``task:<name>`` marker;
        ``mixed`` alternates blocks of ``block_reaches`` reaches.
        """
        tasks = ("center_out", "random_target")
        mixed = self.config.task == "mixed"
        current = int(self._rng.integers(2)) if mixed else tasks.index(self.config.task)
        while True:
            block_markers = [(0, f"task:{tasks[current]}")]
            outward = False  # centre-out alternates return-to-centre and outward reaches
            for _ in range(self.config.block_reaches) if mixed else itertools.count():
                if tasks[current] == "center_out":
                    target, delay = self._center_out_target(outward)
                    outward = not outward
                else:
                    target, delay = self._random_target(), 0.0
                kinematics, markers = self._reach(target, delay)
                yield kinematics, block_markers + markers
                block_markers = []
            current = 1 - current

    def _center_out_target(self, outward: bool) -> tuple[np.ndarray, float]:
        cfg = self.config
        if not outward:
            return np.zeros(2), 0.0
        angle = 2.0 * np.pi * int(self._rng.integers(cfg.n_directions)) / cfg.n_directions
        target = cfg.center_out_radius_m * np.array([np.cos(angle), np.sin(angle)])
        return target, float(self._rng.uniform(*cfg.delay_s))

    def _random_target(self) -> np.ndarray:
        cfg = self.config
        while True:
            target = self._rng.uniform(-cfg.workspace_half_width_m, cfg.workspace_half_width_m, size=2)
            if np.linalg.norm(target - self._pos) >= cfg.min_reach_m:
                return target

    def _duration(self, distance: float) -> float:
        cfg = self.config
        spread = np.exp(cfg.duration_log_sd * self._rng.standard_normal())
        return (cfg.duration_base_s + cfg.duration_per_m * distance) * spread

    def _reach(self, target: np.ndarray, delay_s: float) -> tuple[Kinematics, list[tuple[int, str]]]:
        cfg, rng, fs = self.config, self._rng, self.rate_hz
        start = self._pos.copy()
        reaction = cfg.reaction_time_median_s * np.exp(cfg.reaction_time_log_sd * rng.standard_normal())
        go_s = delay_s
        onset_s = go_s + reaction

        # Submovements (onset, duration, displacement, sideways bow), superposed.
        submovements = []
        distance = float(np.linalg.norm(target - start))
        landing = target + rng.normal(0.0, cfg.endpoint_error_m, size=2)
        primary_duration = self._duration(distance)
        bow = cfg.curvature * rng.standard_normal()
        submovements.append((onset_s, primary_duration, landing - start, bow))
        if rng.random() < cfg.correction_probability:
            correction_onset = onset_s + primary_duration * rng.uniform(0.6, 0.85)
            residual = target + rng.normal(0.0, cfg.endpoint_error_m / 4, size=2) - landing
            duration = self._duration(float(np.linalg.norm(residual))) * 0.6
            submovements.append((correction_onset, duration, residual, 0.0))
            landing = landing + residual
        end_s = max(on + dur for on, dur, _, _ in submovements)
        hold_s = float(rng.uniform(*cfg.target_hold_s))
        pause_s = float(rng.uniform(*cfg.inter_trial_s))
        n = round((end_s + hold_s + pause_s) * fs)
        t = np.arange(n) / fs

        pos = np.tile(start, (n, 1))
        vel = np.zeros((n, 2))
        for on, dur, displacement, bow_fraction in submovements:
            tau = (t - on) / dur
            shape, rate = minimum_jerk(tau)
            sideways = np.array([-displacement[1], displacement[0]]) * bow_fraction
            inside = (tau > 0) & (tau < 1)
            # Bow 16τ²(1−τ)² is zero, with zero slope, at both ends.
            bow_shape = np.where(inside, 16.0 * tau**2 * (1 - tau) ** 2, 0.0)
            bow_rate = np.where(inside, 32.0 * tau * (1 - tau) * (1 - 2 * tau), 0.0)
            pos += shape[:, None] * displacement + bow_shape[:, None] * sideways
            vel += (rate[:, None] * displacement + bow_rate[:, None] * sideways) / dur
        jitter = self._jitter(self._rng.standard_normal((n, 2)) * self._jitter_gain)
        pos += jitter
        vel += np.diff(np.vstack([self._last_jitter, jitter]), axis=0) * fs
        self._last_jitter = jitter[-1]
        self._pos = landing

        go_i, onset_i, end_i = (round(x * fs) for x in (go_s, onset_s, end_s))
        engaged = np.zeros((n, 1))
        engaged[go_i:end_i] = 1.0
        planned = (target - start) / cfg.center_out_radius_m
        prep = np.zeros((n, 2))
        prep[: onset_i + int(0.1 * fs)] = planned
        rebound = np.zeros((n, 1))
        rebound[end_i + int(_REBOUND_WINDOW_S[0] * fs) : end_i + int(_REBOUND_WINDOW_S[1] * fs)] = 1.0
        kinematics = Kinematics(
            pos=pos,
            vel=vel,
            target=np.tile(target, (n, 1)),
            engaged=self._engaged(engaged)[:, 0],
            prep=self._prep(prep),
            rebound=self._rebound(rebound)[:, 0],
        )
        hold_end = min(round((end_s + hold_s) * fs), n - 1)
        markers = [(0, "target_on"), (go_i, "go"), (min(end_i, n - 1), "reach_end"), (hold_end, "reward")]
        return kinematics, markers


class BehaviorBuffer:
    """A continuous behaviour record, generated on demand and readable ahead.

    Parameters
    ----------
    task
        The reach generator.
    """

    def __init__(self, task: ReachingTask) -> None:
        self._reaches = task.reaches()
        self._parts: list[Kinematics] = []
        self._data: Kinematics | None = None
        self._first = 0  # absolute index of the first buffered sample
        self._end = 0  # absolute index one past the last generated sample
        self._markers: list[tuple[int, str]] = []

    def window(self, start: int, stop: int) -> Kinematics:
        """Kinematics of absolute samples ``[start, stop)``; earlier ones may have been dropped."""
        if start < self._first:
            raise ValueError(f"sample {start} was already discarded (buffer starts at {self._first})")
        while self._end < stop:
            kinematics, markers = next(self._reaches)
            self._markers.extend((self._end + offset, text) for offset, text in markers)
            self._parts.append(kinematics)
            self._end += len(kinematics)
            self._data = None
        if self._data is None:
            self._data = Kinematics.concatenate(self._parts)
            self._parts = [self._data]
        return self._data.slice(start - self._first, stop - self._first)

    def pop_markers(self, stop: int) -> list[tuple[int, str]]:
        """Remove and return the markers before absolute sample ``stop``."""
        done = [m for m in self._markers if m[0] < stop]
        self._markers = [m for m in self._markers if m[0] >= stop]
        return done

    def discard_before(self, sample: int) -> None:
        """Forget samples before absolute index ``sample``."""
        if sample <= self._first:
            return
        self.window(sample, sample)  # make sure the buffer is one concatenated piece
        self._data = self._data.slice(sample - self._first, self._end - self._first)
        self._parts = [self._data]
        self._first = sample
