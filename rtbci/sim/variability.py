"""Subjects and sessions: what is fixed for a subject and what changes from day to day.

A subject is an implant: electrode geometry, a map of preferred directions,
slots where units are recorded, LFP character (1/f exponent, beta frequency),
and random walks over days of unit tuning and channel gains. A session is one
day of that subject: the units present that day (turnover), their drifted
preferred directions, the gains, and the dead and noisy channels.

Everything is drawn from seeds derived from one top seed, so any session can be
built on its own, without building the ones before it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rtbci.sim.config import ELECTRODES_PER_ARRAY, SimConfig

__all__ = [
    "SessionRig",
    "SubjectModel",
    "UnitTuning",
    "build_session_rig",
    "build_subject",
    "derive_seed",
    "electrode_grid_um",
]

ELECTRODE_PITCH_UM = 400.0
# Arrays sit far apart: no field of one reaches the other.
_ARRAY_SPACING_UM = 1e5

# Purposes of the random streams of a subject, so that they never overlap.
_SUBJECT_LAYOUT, _UNIT_PARAMS, _DAILY_WALKS, _TURNOVER, _SESSION_FAULTS = range(5)


def derive_seed(seed: int, *key: int) -> int:
    """A 64-bit seed derived from ``seed`` and an integer key path.

    ``derive_seed(seed, subject)`` is the subject seed and
    ``derive_seed(seed, subject, session)`` the session seed.
    """
    state = np.random.SeedSequence(seed, spawn_key=tuple(int(k) for k in key)).generate_state(1, np.uint64)
    return int(state[0])


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=tuple(int(k) for k in key)))


def electrode_grid_um(n_arrays: int) -> np.ndarray:
    """``(96 * n_arrays, 2)`` electrode positions: 10 x 10 grids without corners."""
    rows, cols = np.meshgrid(np.arange(10), np.arange(10), indexing="ij")
    corners = {(0, 0), (0, 9), (9, 0), (9, 9)}
    keep = [(r, c) for r, c in zip(rows.ravel(), cols.ravel(), strict=True) if (r, c) not in corners]
    grid = np.array(keep, dtype=np.float64) * ELECTRODE_PITCH_UM
    assert grid.shape[0] == ELECTRODES_PER_ARRAY
    return np.concatenate([grid + np.array([a * _ARRAY_SPACING_UM, 0.0]) for a in range(n_arrays)])


@dataclass
class UnitTuning:
    """Tuning of the units present in a session (arrays over units).

    Attributes
    ----------
    electrode
        ``(U,)`` electrode each unit is recorded on.
    baseline_hz
        ``(U,)`` rate at rest.
    depth_hz
        ``(U,)`` cosine-tuning depth at the reference speed.
    preferred
        ``(U, 2)`` unit vectors of preferred direction.
    speed_hz
        ``(U,)`` speed term at the reference speed.
    position_hz
        ``(U, 2)`` position gain per 10 cm.
    prep_hz
        ``(U, 2)`` preparatory tuning vector (per unit of planned reach).
    lead_samples
        ``(U,)`` how many samples the firing leads the kinematics.
    unit_ids
        ``(U,)`` stable identity ``slot * 1000 + generation``: equal ids across
        sessions are the same neuron.
    """

    electrode: np.ndarray
    baseline_hz: np.ndarray
    depth_hz: np.ndarray
    preferred: np.ndarray
    speed_hz: np.ndarray
    position_hz: np.ndarray
    prep_hz: np.ndarray
    lead_samples: np.ndarray
    unit_ids: np.ndarray

    @property
    def n_units(self) -> int:
        return int(self.electrode.shape[0])


@dataclass
class SubjectModel:
    """What is fixed for one subject (one implant).

    Attributes
    ----------
    index, seed
        Subject number and its derived seed.
    config
        The rig settings it was built with.
    electrode_um
        ``(C, 2)`` electrode positions.
    slot_electrode
        ``(S,)`` electrode of each unit slot.
    pd_map
        ``(C, 2)`` smooth preferred-direction map at each electrode.
    hash_hz
        ``(C,)`` untuned background crossing rate per electrode.
    aperiodic_exponent, beta_hz, beta_uv, beta_desync
        Subject-level LFP character.
    lfp_gain
        ``(C,)`` channel gains on day 0.
    beta_weights
        ``(2, C)`` mixing of two beta sources into the channels.
    line_uv, line_phase
        ``(C,)`` line-noise amplitude and phase per channel.
    knee_hz
        Knee frequency of the LFP background (drawn last, so that adding it
        left every earlier draw, and the ``v1`` preset, unchanged).
    death_session
        ``(C,)`` session from which an electrode is dead (inf: never).
    """

    index: int
    seed: int
    config: SimConfig
    electrode_um: np.ndarray
    slot_electrode: np.ndarray
    pd_map: np.ndarray
    hash_hz: np.ndarray
    aperiodic_exponent: float
    beta_hz: float
    beta_uv: float
    beta_desync: float
    lfp_gain: np.ndarray
    beta_weights: np.ndarray
    line_uv: np.ndarray
    line_phase: np.ndarray
    death_session: np.ndarray
    knee_hz: float = 0.0

    @property
    def n_channels(self) -> int:
        return int(self.electrode_um.shape[0])

    @property
    def n_slots(self) -> int:
        return int(self.slot_electrode.shape[0])


@dataclass
class SessionRig:
    """One day of a subject: the units present and the state of the electrodes.

    Attributes
    ----------
    subject
        The subject model.
    session
        Session (day) index.
    units
        Tuning of the units present.
    spike_gain
        ``(C,)`` multiplier of unit rates per electrode (waveform amplitude
        drifting relative to the threshold).
    lfp_gain
        ``(C,)`` LFP channel gains that day.
    dead
        ``(C,)`` bool: no signal, only amplifier noise, no crossings.
    noisy_crossings_hz
        ``(C,)`` spurious crossing rate (0 on clean channels).
    noisy_lfp_uv
        ``(C,)`` extra broadband LFP noise (0 on clean channels).
    """

    subject: SubjectModel
    session: int
    units: UnitTuning
    spike_gain: np.ndarray
    lfp_gain: np.ndarray
    dead: np.ndarray
    noisy_crossings_hz: np.ndarray
    noisy_lfp_uv: np.ndarray


def _smooth_direction_map(rng: np.random.Generator, electrode_um: np.ndarray) -> np.ndarray:
    """Unit vectors that vary smoothly over each array (a few Gaussian bumps)."""
    field = np.zeros_like(electrode_um)
    array_of = (electrode_um[:, 0] // _ARRAY_SPACING_UM).astype(int)
    for array in np.unique(array_of):
        on = array_of == array
        origin = electrode_um[on].min(axis=0)
        for _ in range(5):
            centre = origin + rng.uniform(0, 10 * ELECTRODE_PITCH_UM, size=2)
            width = rng.uniform(1.0, 2.5) * 1000.0
            weight = np.exp(-np.sum((electrode_um[on] - centre) ** 2, axis=1) / (2 * width**2))
            field[on] += weight[:, None] * rng.standard_normal(2)
    return field / np.maximum(np.linalg.norm(field, axis=1, keepdims=True), 1e-9)


def build_subject(config: SimConfig, seed: int, subject: int) -> SubjectModel:
    """Draw a subject's implant and character from the top seed.

    Parameters
    ----------
    config
        Rig settings.
    seed
        Top seed.
    subject
        Subject number.
    """
    subject_seed = derive_seed(seed, subject)
    rng = _rng(subject_seed, _SUBJECT_LAYOUT)
    n_arrays = len(config.array_names)
    electrode_um = electrode_grid_um(n_arrays)
    n_channels = electrode_um.shape[0]
    pop, lfp, var = config.population, config.lfp, config.variability

    slots = []
    for array in range(n_arrays):
        n_units = int(rng.integers(pop.units_per_array[0], pop.units_per_array[1] + 1))
        slots.append(array * ELECTRODES_PER_ARRAY + rng.integers(ELECTRODES_PER_ARRAY, size=n_units))
    slot_electrode = np.sort(np.concatenate(slots))

    # Beta is coherent over an array: one broad source plus one with a spatial gradient.
    centred = electrode_um - electrode_um.mean(axis=0)
    gradient_axis = rng.standard_normal(2)
    gradient = centred @ (gradient_axis / np.linalg.norm(gradient_axis)) / (5 * ELECTRODE_PITCH_UM)
    beta_weights = np.stack(
        [rng.uniform(0.7, 1.0, size=n_channels), 0.5 * np.clip(gradient, -1.5, 1.5)]
    ) / np.sqrt(1.25)

    dead_now = rng.random(n_channels) < var.dead_at_start
    dying = rng.exponential(1.0 / max(var.dying_per_session, 1e-12), size=n_channels)
    death_session = np.where(dead_now, 0.0, np.ceil(dying))
    return SubjectModel(
        index=subject,
        seed=subject_seed,
        config=config,
        electrode_um=electrode_um,
        slot_electrode=slot_electrode,
        pd_map=_smooth_direction_map(rng, electrode_um),
        hash_hz=(
            np.exp(rng.uniform(*np.log(pop.hash_hz), size=n_channels))
            if pop.hash_log_uniform
            else rng.uniform(*pop.hash_hz, size=n_channels)
        ),
        aperiodic_exponent=float(rng.uniform(*lfp.aperiodic_exponent)),
        beta_hz=float(rng.uniform(*lfp.beta_hz)),
        beta_uv=float(rng.uniform(*lfp.beta_uv)),
        beta_desync=float(rng.uniform(*lfp.beta_desync)),
        lfp_gain=np.exp(lfp.channel_gain_log_sd * rng.standard_normal(n_channels)),
        beta_weights=beta_weights,
        line_uv=rng.uniform(*lfp.line_uv, size=n_channels),
        line_phase=rng.uniform(0, 2 * np.pi, size=n_channels),
        death_session=death_session,
        knee_hz=float(rng.uniform(*lfp.knee_hz)),
    )


def _generations(subject: SubjectModel, session: int) -> np.ndarray:
    """Which unit occupies each slot on a session: the number of turnovers so far."""
    rate = subject.config.variability.turnover_per_session
    if rate <= 0:
        return np.zeros(subject.n_slots, dtype=np.int64)
    # Rows are drawn in order, so a longer draw extends a shorter one unchanged.
    rows = max(8, int(4 * rate * (session + 1)) + 8)
    while True:
        lifetimes = _rng(subject.seed, _TURNOVER).exponential(1.0 / rate, size=(rows, subject.n_slots))
        changes = np.cumsum(lifetimes, axis=0)
        if np.all(changes[-1] > session):
            return np.sum(changes <= session, axis=0)
        rows *= 2


def _unit_tuning(subject: SubjectModel, generations: np.ndarray, pd_walk: np.ndarray) -> UnitTuning:
    pop = subject.config.population
    rate_hz = subject.config.rate_hz
    n = subject.n_slots
    baseline, depth, angle, speed = (np.empty(n) for _ in range(4))
    position, prep = np.empty((n, 2)), np.empty((n, 2))
    lead = np.empty(n, dtype=np.int64)
    for slot in range(n):
        rng = _rng(subject.seed, _UNIT_PARAMS, slot, int(generations[slot]))
        low, high = np.log(pop.baseline_hz[0]), np.log(pop.baseline_hz[1])
        baseline[slot] = np.exp(rng.uniform(low, high))
        tuned = rng.random() >= pop.untuned_fraction
        depth[slot] = tuned * pop.depth_median_hz * np.exp(pop.depth_log_sd * rng.standard_normal())
        own = rng.standard_normal(2)
        own /= np.linalg.norm(own)
        direction = pop.pd_clustering * subject.pd_map[subject.slot_electrode[slot]] + own
        angle[slot] = np.arctan2(direction[1], direction[0])
        speed[slot] = rng.normal(pop.speed_mean_hz, pop.speed_sd_hz)
        position[slot] = rng.normal(0.0, pop.position_sd_hz, size=2)
        # Preparatory tuning resembles, but is not, the movement tuning.
        prep_angle = angle[slot] + rng.normal(0.0, np.deg2rad(30.0))
        prep_size = tuned * pop.prep_median_hz * np.exp(0.5 * rng.standard_normal())
        prep[slot] = prep_size * np.array([np.cos(prep_angle), np.sin(prep_angle)])
        lead_ms = np.clip(rng.normal(pop.lead_mean_ms, pop.lead_sd_ms), 20.0, 200.0)
        lead[slot] = round(lead_ms * rate_hz / 1000.0)
    angle += pd_walk
    return UnitTuning(
        electrode=subject.slot_electrode.copy(),
        baseline_hz=baseline,
        depth_hz=depth,
        preferred=np.stack([np.cos(angle), np.sin(angle)], axis=1),
        speed_hz=speed,
        position_hz=position,
        prep_hz=prep,
        lead_samples=lead,
        unit_ids=np.arange(n) * 1000 + generations,
    )


def build_session_rig(subject: SubjectModel, session: int) -> SessionRig:
    """The state of a subject's implant on one session (day).

    Parameters
    ----------
    subject
        From :func:`build_subject`.
    session
        Day index, ``>= 0``; consecutive indices are consecutive days.
    """
    if session < 0:
        raise ValueError(f"session index must be >= 0, got {session}")
    var = subject.config.variability
    n_channels = subject.n_channels
    walks = _rng(subject.seed, _DAILY_WALKS)
    # One generator, always drawn in the same order and amount per day, so the
    # walks of day d are a prefix of those of day d + 1.
    steps = walks.standard_normal((session, subject.n_slots + 2 * n_channels))
    total = steps.sum(axis=0) if session else np.zeros(subject.n_slots + 2 * n_channels)
    pd_walk = np.deg2rad(var.pd_drift_deg_per_session) * total[: subject.n_slots]
    spike_walk = var.gain_drift_log_sd_per_session * total[subject.n_slots : subject.n_slots + n_channels]
    lfp_walk = var.gain_drift_log_sd_per_session * total[subject.n_slots + n_channels :]

    faults = _rng(subject.seed, _SESSION_FAULTS, session)
    dead = subject.death_session <= session
    n_noisy = min(int(faults.poisson(var.noisy_channels_mean)), int((~dead).sum()))
    noisy = faults.choice(np.flatnonzero(~dead), size=n_noisy, replace=False)
    noisy_crossings = np.zeros(n_channels)
    noisy_lfp = np.zeros(n_channels)
    noisy_crossings[noisy] = faults.uniform(*var.noisy_crossings_hz, size=n_noisy)
    noisy_lfp[noisy] = faults.uniform(*var.noisy_lfp_uv, size=n_noisy)

    return SessionRig(
        subject=subject,
        session=session,
        units=_unit_tuning(subject, _generations(subject, session), pd_walk),
        spike_gain=np.exp(spike_walk),
        lfp_gain=subject.lfp_gain * np.exp(lfp_walk),
        dead=dead,
        noisy_crossings_hz=noisy_crossings,
        noisy_lfp_uv=noisy_lfp,
    )
