"""A simulated participant in closed loop: it aims at the target from where it sees the cursor.

The open-loop rig (:mod:`rtbci.sim.rig`) drives its neurons with a hand. A participant with
paralysis has no hand; its neurons encode the *intended* velocity, and that intention depends on
what the decoder did, as seen on the screen. Two parts, both pure (no LSL):

- :class:`SimulatedParticipant` turns the task frames it is shown into an :class:`Intention`. It
  sees each frame ``feedback_delay_ms`` late, aims from the cursor it sees toward the target,
  corrects as the (late) cursor moves, and is quiet (zero intention) during holds and between trials.
- :class:`IntentionRig` turns one bin of intention into one bin of spikes and LFP with the very
  tuning, spiking and LFP models of the open-loop rig (:class:`~rtbci.sim.spiking.SpikingPopulation`,
  :class:`~rtbci.sim.lfp.LfpSynthesizer`), for the same subjects and sessions.

The intention model is the one ReFIT's retraining assumes (Gilja et al. 2012, Nat Neurosci 15:1752,
"A high-performance neural prosthesis enabled by control algorithm design"): the participant
intends to move straight from the cursor toward the target, and holds still on it. The feedback
delay is what makes closed loop differ from open loop: Cunningham et al. 2011 (J Neurophysiol
105:1932, "A closed-loop human simulator for investigating the role of feedback control in
brain-machine interfaces") showed that offline accuracy predicts closed-loop control poorly
because the user corrects, with a visual delay, for the decoder's errors.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from rtbci.sim.behavior import _ENGAGED_TAU_S, _REBOUND_TAU_S, _REBOUND_WINDOW_S, Kinematics
from rtbci.sim.config import SimConfig
from rtbci.sim.filters import one_pole_smoother
from rtbci.sim.lfp import LfpSynthesizer
from rtbci.sim.spiking import SpikingPopulation
from rtbci.sim.variability import build_session_rig, build_subject, derive_seed
from rtbci.task.trials import TaskFrame, TrialState

__all__ = ["Intention", "IntentionRig", "NeuralBin", "ParticipantConfig", "SimulatedParticipant"]


@dataclass(frozen=True)
class ParticipantConfig:
    """The simulated participant's control policy. Lengths in metres, as the simulated rig's.

    Attributes
    ----------
    feedback_delay_ms
        How late the participant sees the screen: the visuomotor delay of visually guided
        corrections, 100–150 ms in reaching (Cunningham et al. 2011 model the BMI user as a
        controller that sees the cursor with such a delay). 120 ms is mid-range. It is applied in
        whole bins (120 ms = 6 bins of 20 ms).
    max_speed_m_s
        Intended speed far from the target. The open-loop rig's 8 cm reaches (``TaskConfig``:
        0.25 s + 2.5 s/m ≈ 0.45 s, minimum jerk) average 0.18 m/s and peak at 0.33 m/s; 0.25 m/s
        keeps the intention within the speeds its neurons were tuned and decoders trained on
        (``PopulationConfig.reference_speed_m_s`` = 0.3).
    approach_s
        Near the target the intended speed is ``distance / approach_s`` (it slows down as it nears
        the target and is zero at its centre): people using intracortical BCIs intend a speed that
        grows with the distance to the target and saturates far from it (Willett et al. 2017,
        J Neural Eng 14:016001, "Feedback control policies employed by people using intracortical
        brain–computer interfaces"). 0.2 s makes the loop gain 5 /s; with the feedback delay that
        is a stable, slightly underdamped loop (gain × delay = 0.6 < π/2), like a person who
        corrects without oscillating.
    """

    feedback_delay_ms: float = 120.0
    max_speed_m_s: float = 0.25
    approach_s: float = 0.2

    def __post_init__(self) -> None:
        if self.feedback_delay_ms < 0:
            raise ValueError(
                f"ParticipantConfig.feedback_delay_ms must be >= 0, got {self.feedback_delay_ms}"
            )
        if self.max_speed_m_s <= 0:
            raise ValueError(f"ParticipantConfig.max_speed_m_s must be > 0, got {self.max_speed_m_s}")
        if self.approach_s <= 0:
            raise ValueError(f"ParticipantConfig.approach_s must be > 0, got {self.approach_s}")


@dataclass(frozen=True)
class Intention:
    """What the participant intends in one bin, and what it sees while doing so.

    Attributes
    ----------
    velocity
        ``(2,)`` intended velocity in m/s: what the neurons encode.
    cursor
        ``(2,)`` the cursor position the participant sees (the position the neurons' position
        terms read).
    target
        ``(2,)`` the target it sees.
    engaged
        Whether it is reaching (drives beta desynchronisation).
    rebound
        Whether it is in the post-movement window after a reach ended (beta rebound).
    """

    velocity: np.ndarray
    cursor: np.ndarray
    target: np.ndarray
    engaged: bool
    rebound: bool


_QUIET_STATES = (TrialState.INTER_TRIAL, TrialState.HOLD, TrialState.SUCCESS, TrialState.TIMEOUT)


class SimulatedParticipant:
    """Intends a velocity each bin from the task frame it saw ``feedback_delay_ms`` ago.

    Parameters
    ----------
    config
        Its control policy.
    bin_s
        Bin width in seconds; the feedback delay is rounded to whole bins.

    Attributes
    ----------
    delay_bins
        The feedback delay in bins.
    """

    def __init__(self, config: ParticipantConfig, bin_s: float) -> None:
        if bin_s <= 0:
            raise ValueError(f"bin_s must be > 0, got {bin_s}")
        self.config = config
        self.bin_s = bin_s
        self.delay_bins = round(config.feedback_delay_ms / 1000.0 / bin_s)
        self._shown: deque[TaskFrame] = deque(maxlen=self.delay_bins + 1)
        self._reaching = False
        self._rebound_bins = tuple(round(edge / bin_s) for edge in _REBOUND_WINDOW_S)
        self._since_reach_end = self._rebound_bins[1]  # bins; no reach has ended yet

    def step(self, frame: TaskFrame) -> Intention:
        """Show the participant the newest frame; get its intention for the next bin.

        The intention comes from the frame shown ``delay_bins`` calls ago (this one with no delay);
        until then the participant has seen nothing and is quiet.

        Parameters
        ----------
        frame
            What the task shows now.

        Returns
        -------
        Intention
        """
        self._shown.append(frame)
        if len(self._shown) <= self.delay_bins:
            return Intention(np.zeros(2), np.zeros(2), np.zeros(2), engaged=False, rebound=False)
        seen = self._shown[0]
        reaching = seen.state == TrialState.REACH
        self._since_reach_end = 0 if self._reaching and not reaching else self._since_reach_end + 1
        self._reaching = reaching
        low, high = self._rebound_bins
        rebound = low <= self._since_reach_end < high
        velocity = np.zeros(2) if seen.state in _QUIET_STATES else self.aim(seen.cursor, seen.target)
        return Intention(velocity, seen.cursor.copy(), seen.target.copy(), engaged=reaching, rebound=rebound)

    def aim(self, cursor: np.ndarray, target: np.ndarray) -> np.ndarray:
        """The intended velocity from ``cursor`` toward ``target``.

        Straight at the target, at ``min(max_speed_m_s, distance / approach_s)``.

        Returns
        -------
        np.ndarray
            ``(2,)`` m/s; zero at the target centre.
        """
        offset = np.asarray(target, dtype=np.float64) - cursor
        distance = float(np.hypot(offset[0], offset[1]))
        if distance == 0.0:
            return np.zeros(2)
        return offset / distance * min(self.config.max_speed_m_s, distance / self.config.approach_s)


@dataclass(frozen=True)
class NeuralBin:
    """One bin of simulated neural data.

    Attributes
    ----------
    start_sample
        Absolute index of the bin's first sample.
    spikes
        ``(n, C)`` uint8 threshold crossings.
    lfp
        ``(n, C)`` float32 µV.
    """

    start_sample: int
    spikes: np.ndarray
    lfp: np.ndarray


class IntentionRig:
    """Spikes and LFP of one simulated session, driven bin by bin by an intention instead of a hand.

    The subject and session are those of :class:`~rtbci.sim.rig.RigSimulator` with the same
    arguments (same units, tuning, gains, dead and noisy channels, and the same initial gain
    fluctuations); only the kinematics the neurons encode differ.

    Every unit encodes the current bin's intention. In the open-loop rig a unit fires ``lead``
    samples ahead of the hand movement it encodes; here there is no hand, and the intention is held
    constant over the bin, so every unit, whatever its lead, reads the intention of the bin it fires
    in. The preparatory term is zero (the task has no instructed delay).

    Parameters
    ----------
    config
        The simulated rig's settings (arrays, rate, population, LFP).
    subject, session, seed
        As for :class:`~rtbci.sim.rig.RigSimulator`.
    bin_samples
        Samples per bin (20 at 1 kHz for 20 ms bins); a whole number of the LFP model's 10 ms drive
        steps.
    """

    def __init__(self, config: SimConfig, subject: int, session: int, seed: int, bin_samples: int) -> None:
        if bin_samples <= 0:
            raise ValueError(f"bin_samples must be > 0, got {bin_samples}")
        self.config = config
        self.bin_samples = bin_samples
        self.rig = build_session_rig(build_subject(config, seed, subject), session)
        # The same streams, in the same order, as RigSimulator draws (the first one drives its task).
        _, init_rng, self._spike_rng, self._lfp_rng = (
            np.random.default_rng(child)
            for child in np.random.SeedSequence(derive_seed(seed, subject, session)).spawn(4)
        )
        self._population = SpikingPopulation(self.rig, config.population, config.rate_hz, init_rng)
        self._lfp = LfpSynthesizer(self.rig, config.lfp, config.rate_hz)
        self._engaged = one_pole_smoother(_ENGAGED_TAU_S, config.rate_hz, 1)
        self._rebound = one_pole_smoother(_REBOUND_TAU_S, config.rate_hz, 1)
        self._next_sample = 0

    def next_bin(self, intention: Intention) -> NeuralBin:
        """Generate the next bin of spikes and LFP from the participant's intention.

        Parameters
        ----------
        intention
            What the participant intends in this bin.

        Returns
        -------
        NeuralBin
        """
        n = self.bin_samples
        # The population reads up to max_lead samples past the bin: the held intention.
        span = n + self._population.max_lead
        engaged = self._engaged(np.full((n, 1), float(intention.engaged)))[:, 0]
        rebound = self._rebound(np.full((n, 1), float(intention.rebound)))[:, 0]
        ahead = Kinematics(
            pos=np.tile(intention.cursor, (span, 1)),
            vel=np.tile(intention.velocity, (span, 1)),
            target=np.tile(intention.target, (span, 1)),
            engaged=np.pad(engaged, (0, span - n), mode="edge"),
            prep=np.zeros((span, 2)),
            rebound=np.pad(rebound, (0, span - n), mode="edge"),
        )
        rates, modulation = self._population.drive(ahead, n, self._spike_rng)
        spikes = self._population.spikes(rates, self._spike_rng)
        start = self._next_sample
        lfp = self._lfp.block(start, modulation, spikes, ahead.slice(0, n), self._lfp_rng)
        self._next_sample = start + n
        return NeuralBin(start, spikes, lfp)
