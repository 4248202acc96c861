"""Settings of the simulated rig, as frozen dataclasses with physiological defaults.

Ranges are ``(low, high)`` pairs from which a subject, session or unit draws its
own value, so that no two subjects are alike. Defaults follow monkey centre-out
reaching recorded with Utah arrays in motor cortex.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "ELECTRODES_PER_ARRAY",
    "LfpConfig",
    "PopulationConfig",
    "SimConfig",
    "TaskConfig",
    "VariabilityConfig",
    "sim_preset",
]

# A Utah array: a 10 x 10 grid with the four corners not wired.
ELECTRODES_PER_ARRAY = 96

Range = tuple[float, float]


@dataclass(frozen=True)
class TaskConfig:
    """The reaching task.

    Attributes
    ----------
    task
        ``center_out``, ``random_target``, or ``mixed`` (blocks of each).
    block_reaches
        Reaches per block when ``task == "mixed"``.
    center_out_radius_m
        Distance of the peripheral targets from the centre.
    n_directions
        Number of peripheral targets, evenly spaced.
    workspace_half_width_m
        Random targets fall in a square of this half width around the centre.
    min_reach_m
        Shortest reach to a random target.
    delay_s
        Instructed delay between target onset and go cue for outward
        centre-out reaches (other reaches have none).
    reaction_time_median_s, reaction_time_log_sd
        Log-normal reaction time from the go cue to movement onset.
    duration_base_s, duration_per_m
        Minimum-jerk duration grows with distance (Fitts-like).
    duration_log_sd
        Trial-to-trial spread of movement duration.
    curvature
        Typical sideways bow of a reach, as a fraction of its length.
    endpoint_error_m
        Spread of where the primary submovement lands.
    correction_probability
        Chance of a corrective submovement after the primary one.
    target_hold_s, inter_trial_s
        Hold on the target after the reach, then the pause before the next target.
    jitter_m
        Hand tremor/postural drift: SD of low-passed position noise.
    """

    task: Literal["center_out", "random_target", "mixed"] = "mixed"
    block_reaches: int = 40
    center_out_radius_m: float = 0.08
    n_directions: int = 8
    workspace_half_width_m: float = 0.10
    min_reach_m: float = 0.03
    delay_s: Range = (0.3, 0.8)
    reaction_time_median_s: float = 0.26
    reaction_time_log_sd: float = 0.2
    duration_base_s: float = 0.25
    duration_per_m: float = 2.5
    duration_log_sd: float = 0.12
    curvature: float = 0.06
    endpoint_error_m: float = 0.004
    correction_probability: float = 0.3
    target_hold_s: Range = (0.3, 0.6)
    inter_trial_s: Range = (0.1, 0.5)
    jitter_m: float = 0.0003


@dataclass(frozen=True)
class PopulationConfig:
    """The spiking population and its tuning.

    Attributes
    ----------
    units_per_array
        Number of units on an array, drawn per subject.
    baseline_hz
        Baseline rates, drawn log-uniformly per unit.
    untuned_fraction
        Share of units with no directional tuning.
    depth_median_hz, depth_log_sd
        Log-normal cosine-tuning depth at the reference speed.
    speed_mean_hz, speed_sd_hz
        Speed term at the reference speed (mostly positive: most M1 cells fire
        more during movement).
    position_sd_hz
        Position gain per 10 cm of hand displacement.
    prep_median_hz
        Preparatory (instructed-delay) activity, tuned to the planned reach.
    lead_mean_ms, lead_sd_ms
        How far the firing leads the kinematics it encodes.
    reference_speed_m_s
        Speed at which the tuning depths apply.
    pd_clustering
        Weight of a spatially smooth preferred-direction map relative to each
        unit's own random direction (neighbouring M1 cells prefer similar directions).
    refractory_ms
        Absolute refractory period.
    crossing_dead_time_ms
        After a threshold crossing the electrode's detector cannot cross again
        for this long (it is capturing the waveform); 0 turns it off (``v1``).
    hash_hz, hash_log_uniform
        Untuned background threshold crossings per electrode (multi-unit
        hash), drawn per electrode uniformly in log rate (or, ``v1``, in rate).
    shared_gain_sd, shared_gain_tau_s
        Slow population-wide gain fluctuation (arousal, attention).
    private_gain_sd, private_gain_tau_s
        Each unit's own slow rate fluctuation (overdispersion, Fano factor > 1).
    """

    units_per_array: tuple[int, int] = (96, 192)
    baseline_hz: Range = (2.0, 40.0)
    untuned_fraction: float = 0.15
    depth_median_hz: float = 10.0
    depth_log_sd: float = 0.6
    speed_mean_hz: float = 2.0
    speed_sd_hz: float = 4.0
    position_sd_hz: float = 3.0
    prep_median_hz: float = 4.0
    lead_mean_ms: float = 100.0
    lead_sd_ms: float = 30.0
    reference_speed_m_s: float = 0.3
    pd_clustering: float = 0.7
    refractory_ms: float = 2.0
    crossing_dead_time_ms: float = 1.0
    hash_hz: Range = (1.0, 40.0)
    hash_log_uniform: bool = True
    shared_gain_sd: float = 0.15
    shared_gain_tau_s: float = 2.0
    private_gain_sd: float = 0.25
    private_gain_tau_s: float = 0.3


@dataclass(frozen=True)
class LfpConfig:
    """How the LFP of each electrode is composed (amplitudes in µV).

    Attributes
    ----------
    lmp_uv_per_hz
        Local motor potential per Hz of the spatially averaged rate modulation
        of nearby units (negative: net excitatory input is a negative deflection).
    lmp_space_constant_um
        Gaussian reach of a unit's contribution to an electrode's field.
    lmp_far_field
        Share of the drive that is volume-conducted from the whole array.
    lmp_cutoff_hz
        Low-pass of synaptic drive into field potential.
    model
        ``"v2"`` (default): the 1/f^χ background passes ``knee_order``
        one-pole low-passes at a per-subject knee, so the spectrum steepens to
        about 1/f^(χ + 2 * knee_order) above it, as measured in real field
        potentials (issue 31; ``rtbci bench realism``), and the front end's
        anti-alias low-pass shapes the whole signal. ``"v1"``: the
        background before issue 31, 1/f^χ with no knee and no front-end
        filter (see :func:`sim_preset`).
    aperiodic_exponent
        Exponent χ of the 1/f^χ background, drawn per subject (0 < χ < 2);
        with ``model="v2"`` the exponent below the knee.
    knee_hz, knee_order
        Knee frequency of the background, drawn per subject, and the number of
        one-pole low-passes at it: above the knee the exponent grows by
        ``2 * knee_order`` (``model="v2"`` only).
    frontend_lowpass_hz
        Cutoff of the recording front end's 4th-order Butterworth anti-alias
        low-pass (Blackrock's 1 kHz LFP stream: 250 Hz); ``model="v2"`` only.
    aperiodic_uv
        RMS of the 1/f background.
    aperiodic_shared
        Share of background variance common to the whole array.
    beta_hz, beta_bandwidth_hz, beta_uv
        Beta rhythm: peak frequency (per subject), bandwidth and RMS amplitude.
    beta_desync
        Fraction of beta amplitude lost during movement (desynchronisation).
    beta_rebound
        Relative beta increase after the reach ends (post-movement rebound).
    line_hz, line_uv
        Mains frequency and per-channel amplitude range of line noise.
    line_harmonics
        Relative amplitude of the 2nd, 3rd, ... harmonics.
    amplifier_uv
        White amplifier noise floor.
    spike_bleed_uv
        Low-frequency remainder of each local spike waveform.
    mua_uv2_per_hz, mua_space_constant_um
        Broadband power from the many unresolved spikes near the electrode
        (shot noise: variance grows with the local rate), which makes
        high-gamma power follow local firing.
    channel_gain_log_sd
        Spread of per-channel gains (electrode impedance).
    resolution_uv
        ADC step the LFP is quantised to (Blackrock front ends: 0.25 µV).
    """

    model: Literal["v1", "v2"] = "v2"
    lmp_uv_per_hz: float = -5.0
    lmp_space_constant_um: float = 500.0
    lmp_far_field: float = 0.3
    lmp_cutoff_hz: float = 10.0
    aperiodic_exponent: Range = (0.3, 0.7)
    knee_hz: Range = (45.0, 75.0)
    knee_order: int = 2
    frontend_lowpass_hz: float = 250.0
    aperiodic_uv: float = 55.0
    aperiodic_shared: float = 0.6
    beta_hz: Range = (16.0, 26.0)
    beta_bandwidth_hz: float = 6.0
    beta_uv: Range = (14.0, 32.0)
    beta_desync: Range = (0.5, 0.8)
    beta_rebound: float = 0.4
    line_hz: float = 60.0
    line_uv: Range = (0.3, 2.0)
    line_harmonics: tuple[float, ...] = (0.3, 0.1)
    amplifier_uv: float = 2.0
    spike_bleed_uv: float = 3.0
    mua_uv2_per_hz: float = 0.5
    mua_space_constant_um: float = 200.0
    channel_gain_log_sd: float = 0.15
    resolution_uv: float = 0.25


@dataclass(frozen=True)
class VariabilityConfig:
    """How sessions (days) of one subject differ.

    Attributes
    ----------
    turnover_per_session
        Expected fraction of units replaced by new ones from one session to the next.
    pd_drift_deg_per_session
        SD of the daily random walk of each unit's preferred direction.
    gain_drift_log_sd_per_session
        SD of the daily random walk of log channel gain (spikes and LFP).
    dead_at_start
        Fraction of electrodes dead from the first session.
    dying_per_session
        Chance that a live electrode dies from one session to the next.
    noisy_channels_mean
        Mean number of noisy channels in a session (Poisson).
    noisy_crossings_hz
        Spurious threshold crossings on a noisy channel.
    noisy_lfp_uv
        Extra broadband noise on a noisy channel.
    """

    turnover_per_session: float = 0.08
    pd_drift_deg_per_session: float = 4.0
    gain_drift_log_sd_per_session: float = 0.04
    dead_at_start: float = 0.03
    dying_per_session: float = 0.004
    noisy_channels_mean: float = 1.5
    noisy_crossings_hz: Range = (40.0, 150.0)
    noisy_lfp_uv: Range = (30.0, 100.0)


@dataclass(frozen=True)
class SimConfig:
    """The whole simulated rig.

    Attributes
    ----------
    array_names
        One name per Utah array (96 electrodes each); they become the
        session's ``channel_regions``.
    rate_hz
        Sampling rate of every continuous stream.
    chunk_samples
        Samples per chunk, as the rig would send them over LSL.
    start_time_s
        LSL-clock time of the first sample of an offline session.
    """

    array_names: tuple[str, ...] = ("M1-array",)
    rate_hz: float = 1000.0
    chunk_samples: int = 10
    start_time_s: float = 1000.0
    task: TaskConfig = field(default_factory=TaskConfig)
    population: PopulationConfig = field(default_factory=PopulationConfig)
    lfp: LfpConfig = field(default_factory=LfpConfig)
    variability: VariabilityConfig = field(default_factory=VariabilityConfig)

    def __post_init__(self) -> None:
        if not self.array_names:
            raise ValueError("SimConfig.array_names: give at least one array")
        if self.rate_hz <= 0 or self.chunk_samples <= 0:
            raise ValueError(
                f"SimConfig.rate_hz ({self.rate_hz}) and chunk_samples ({self.chunk_samples}) must be > 0"
            )
        low, high = self.population.units_per_array
        if not 1 <= low <= high:
            raise ValueError(f"PopulationConfig.units_per_array must be 1 <= low <= high, got {(low, high)}")
        if self.task.block_reaches <= 0 or self.task.n_directions <= 0:
            raise ValueError("TaskConfig.block_reaches and n_directions must be > 0")

    @property
    def n_channels(self) -> int:
        """Electrodes over all arrays."""
        return ELECTRODES_PER_ARRAY * len(self.array_names)

    def channel_regions(self) -> list[str]:
        """Array name of every electrode."""
        return [name for name in self.array_names for _ in range(ELECTRODES_PER_ARRAY)]


SIM_PRESETS = ("default", "v1")


def sim_preset(name: str) -> SimConfig:
    """A named rig configuration.

    Parameters
    ----------
    name
        ``"default"`` (today's defaults) or ``"v1"``: the simulator before
        issue 31 (flat LFP background, 1/f^1.4-1.9, no knee), kept so that
        figures made with it reproduce.

    Returns
    -------
    SimConfig
    """
    if name == "default":
        return SimConfig()
    if name == "v1":
        return SimConfig(population=V1_POPULATION, lfp=V1_LFP)
    raise ValueError(f"unknown simulator preset {name!r}: use one of {', '.join(SIM_PRESETS)}")


# The settings of the simulator before issue 31 (sim_preset("v1")).
V1_POPULATION = PopulationConfig(crossing_dead_time_ms=0.0, hash_hz=(0.5, 4.0), hash_log_uniform=False)
V1_LFP = LfpConfig(
    model="v1",
    aperiodic_exponent=(1.4, 1.9),
    aperiodic_uv=35.0,
    beta_uv=(8.0, 20.0),
    line_uv=(1.0, 8.0),
    mua_uv2_per_hz=2.0,
)
