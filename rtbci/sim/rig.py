"""The simulated rig: behaviour, spikes and LFP of one session, generated block by block.

:class:`RigSimulator` is the one generator behind both the offline Session
files and the live LSL source. It always works in blocks of the same length,
so the samples depend only on the seed, never on how they are consumed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rtbci.sim.behavior import BehaviorBuffer, ReachingTask
from rtbci.sim.config import SimConfig
from rtbci.sim.lfp import LfpSynthesizer
from rtbci.sim.spiking import SpikingPopulation
from rtbci.sim.variability import SessionRig, build_session_rig, build_subject, derive_seed

__all__ = ["BEHAVIOR_LABELS", "RigSimulator", "SimBlock"]

BEHAVIOR_LABELS = ["pos_x", "pos_y", "vel_x", "vel_y", "target_x", "target_y"]
BLOCK_SECONDS = 1.0


@dataclass
class SimBlock:
    """One block of every stream.

    Attributes
    ----------
    start_sample
        Absolute index of the block's first sample.
    spikes
        ``(n, C)`` uint8 threshold crossings.
    lfp
        ``(n, C)`` float32 µV.
    behavior
        ``(n, 6)`` float32, columns :data:`BEHAVIOR_LABELS`.
    markers
        ``(absolute sample index, text)`` events in the block.
    """

    start_sample: int
    spikes: np.ndarray
    lfp: np.ndarray
    behavior: np.ndarray
    markers: list[tuple[int, str]]

    def __len__(self) -> int:
        return self.spikes.shape[0]


class RigSimulator:
    """Generates one session of one subject, deterministically from the top seed.

    Parameters
    ----------
    config
        Rig settings.
    subject, session
        Subject number and session (day) index.
    seed
        Top seed; the subject and session seeds derive from it.
    """

    def __init__(self, config: SimConfig, subject: int, session: int, seed: int) -> None:
        self.config = config
        self.subject = subject
        self.session = session
        self.seed = seed
        self.session_seed = derive_seed(seed, subject, session)
        self.rig: SessionRig = build_session_rig(build_subject(config, seed, subject), session)
        task_rng, init_rng, spike_rng, lfp_rng = (
            np.random.default_rng(child) for child in np.random.SeedSequence(self.session_seed).spawn(4)
        )
        self._spike_rng, self._lfp_rng = spike_rng, lfp_rng
        self._behavior = BehaviorBuffer(ReachingTask(config.task, config.rate_hz, task_rng))
        self._population = SpikingPopulation(self.rig, config.population, config.rate_hz, init_rng)
        self._lfp = LfpSynthesizer(self.rig, config.lfp, config.rate_hz)
        self.block_samples = round(BLOCK_SECONDS * config.rate_hz)
        self._next_sample = 0

    @property
    def subject_seed(self) -> int:
        """Seed of the subject model."""
        return self.rig.subject.seed

    def next_block(self) -> SimBlock:
        """Generate the next :data:`BLOCK_SECONDS` of every stream."""
        n, start = self.block_samples, self._next_sample
        ahead = self._behavior.window(start, start + n + self._population.max_lead)
        now = ahead.slice(0, n)
        rates, modulation = self._population.drive(ahead, n, self._spike_rng)
        spikes = self._population.spikes(rates, self._spike_rng)
        lfp = self._lfp.block(start, modulation, spikes, now, self._lfp_rng)
        behavior = np.concatenate([now.pos, now.vel, now.target], axis=1).astype(np.float32)
        markers = self._behavior.pop_markers(start + n)
        self._behavior.discard_before(start + n)
        self._next_sample = start + n
        return SimBlock(start, spikes, lfp, behavior, markers)
