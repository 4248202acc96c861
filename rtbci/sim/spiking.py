"""Spiking population: firing rates from kinematics, then refractory Poisson spikes per electrode.

Each unit's rate is a baseline plus a cosine tuning to hand velocity, a speed
term, a position term and preparatory activity, all read ``lead`` samples
ahead of the present (M1 fires about 100 ms before the movement it encodes),
times slow shared and private gain fluctuations. Spikes are drawn at the
sampling rate with an absolute refractory period, and summed per electrode as
threshold crossings would be.
"""

from __future__ import annotations

import numba
import numpy as np

from rtbci.sim.behavior import Kinematics
from rtbci.sim.config import PopulationConfig
from rtbci.sim.filters import ar1_unit_variance
from rtbci.sim.variability import SessionRig

__all__ = ["SpikingPopulation", "crossings_per_electrode", "detector_dead_time"]

_POSITION_SCALE_M = 0.1  # position gains are per 10 cm


@numba.njit(cache=True, nogil=True)
def crossings_per_electrode(
    rates_hz: np.ndarray,
    uniforms: np.ndarray,
    electrode: np.ndarray,
    n_channels: int,
    dt: float,
    refractory_samples: int,
    since_spike: np.ndarray,
) -> np.ndarray:
    """Draw refractory Bernoulli-Poisson spikes and count them per electrode.

    Parameters
    ----------
    rates_hz
        ``(n, U)`` float32 rates.
    uniforms
        ``(n, U)`` float32 uniform draws in [0, 1).
    electrode
        ``(U,)`` electrode of each unit.
    n_channels
        Number of electrodes.
    dt
        Sample interval in seconds.
    refractory_samples
        Samples after a spike in which the unit cannot fire again.
    since_spike
        ``(U,)`` samples since each unit's last spike; updated in place so that
        refractoriness carries across blocks.

    Returns
    -------
    np.ndarray
        ``(n, n_channels)`` int32 spike counts.
    """
    n, n_units = rates_hz.shape
    counts = np.zeros((n, n_channels), dtype=np.int32)
    for u in range(n_units):
        channel = electrode[u]
        since = since_spike[u]
        for t in range(n):
            since += 1
            if since > refractory_samples:
                # P(at least one event of a Poisson process in dt).
                if uniforms[t, u] < 1.0 - np.exp(-rates_hz[t, u] * dt):
                    counts[t, channel] += 1
                    since = 0
        since_spike[u] = since
    return counts


@numba.njit(cache=True, nogil=True)
def detector_dead_time(counts: np.ndarray, dead_samples: int, since_crossing: np.ndarray) -> np.ndarray:
    """Keep at most one crossing per sample and none within ``dead_samples`` after a kept one.

    A threshold detector cannot fire again while it is capturing a waveform
    (Blackrock: 48 samples at 30 kHz, 1.6 ms), whichever units crossed.

    Parameters
    ----------
    counts
        ``(n, C)`` crossings per electrode.
    dead_samples
        Samples after a crossing in which the electrode cannot cross again.
    since_crossing
        ``(C,)`` samples since each electrode's last crossing; updated in place.

    Returns
    -------
    np.ndarray
        ``(n, C)`` int32 counts of 0 or 1.
    """
    n, n_channels = counts.shape
    out = np.zeros((n, n_channels), dtype=np.int32)
    for c in range(n_channels):
        since = since_crossing[c]
        for t in range(n):
            since += 1
            if counts[t, c] > 0 and since > dead_samples:
                out[t, c] = 1
                since = 0
        since_crossing[c] = since
    return out


class SpikingPopulation:
    """The units of one session and the state of their spiking.

    Parameters
    ----------
    rig
        The session: units, electrode gains, dead and noisy channels.
    config
        Population settings (fluctuations, refractoriness, reference speed).
    rate_hz
        Sampling rate.
    rng
        Draws the initial state of the gain fluctuations.
    """

    def __init__(
        self, rig: SessionRig, config: PopulationConfig, rate_hz: float, rng: np.random.Generator
    ) -> None:
        self.rig = rig
        self.config = config
        self.rate_hz = rate_hz
        units = rig.units
        self.max_lead = int(units.lead_samples.max())
        self._coefficients = np.concatenate(
            [units.depth_hz[:, None] * units.preferred, units.position_hz, units.prep_hz], axis=1
        ).astype(np.float32)
        self._speed_hz = units.speed_hz.astype(np.float32)
        self._unit_gain = rig.spike_gain[units.electrode]
        self._unit_alive = ~rig.dead[units.electrode]
        self._shared = ar1_unit_variance(config.shared_gain_tau_s, rate_hz, 1, rng)
        self._private = ar1_unit_variance(config.private_gain_tau_s, rate_hz, units.n_units, rng)
        self._since_spike = np.full(units.n_units, 1 << 20, dtype=np.int64)
        self._unit_since_spike = self._since_spike.copy()  # for unit_spikes()
        self._refractory = round(config.refractory_ms * rate_hz / 1000.0)
        self._dead_samples = round(config.crossing_dead_time_ms * rate_hz / 1000.0)
        self._since_crossing = np.full(rig.subject.n_channels, 1 << 20, dtype=np.int64)
        background = rig.subject.hash_hz * ~rig.dead + rig.noisy_crossings_hz
        self._background_p = (1.0 - np.exp(-background / rate_hz)).astype(np.float32)

    def drive(self, ahead: Kinematics, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Firing rates for the next ``n`` samples.

        Parameters
        ----------
        ahead
            Kinematics of samples ``[t0, t0 + n + max_lead)``, where ``t0`` is the
            first sample of the block.
        n
            Block length.
        rng
            Source of the gain fluctuations.

        Returns
        -------
        rates_hz
            ``(n, U)`` float32 rectified rates, gains applied.
        modulation_hz
            ``(n, U)`` float32 rate change from baseline: the synaptic drive the
            LFP sees.
        """
        units, cfg = self.rig.units, self.config
        # One gather of every covariate at each unit's own lead: (n, U, 6).
        covariates = np.concatenate(
            [ahead.vel / cfg.reference_speed_m_s, ahead.pos / _POSITION_SCALE_M, ahead.prep], axis=1
        ).astype(np.float32)
        led = covariates[np.arange(n)[:, None] + units.lead_samples[None, :]]
        speed = np.sqrt(led[..., 0] ** 2 + led[..., 1] ** 2)
        tuned = units.baseline_hz.astype(np.float32) + np.einsum("nuk,uk->nu", led, self._coefficients)
        tuned += self._speed_hz * speed
        noise = rng.standard_normal((n, units.n_units + 1), dtype=np.float32)
        gain = np.exp(
            cfg.shared_gain_sd * self._shared(noise[:, :1])
            + cfg.private_gain_sd * self._private(noise[:, 1:])
        )
        rates = (np.maximum(tuned, 0.0) * gain).astype(np.float32)
        modulation = rates - units.baseline_hz.astype(np.float32)
        rates *= (self._unit_gain * self._unit_alive).astype(np.float32)
        return rates, modulation

    def unit_spikes(
        self, rates_hz: np.ndarray, electrode: np.ndarray, n_channels: int, rng: np.random.Generator
    ) -> np.ndarray:
        """Spikes of the units counted on any electrode map (``np.arange(U)`` gives each unit's own train).

        Keeps its own refractory state, apart from :meth:`spikes`, so it can run
        beside a session without changing it. No background crossings are added.

        Parameters
        ----------
        rates_hz
            ``(n, U)`` rates from :meth:`drive`.
        electrode
            ``(U,)`` column of each unit.
        n_channels
            Number of columns.
        rng
            Noise source.

        Returns
        -------
        np.ndarray
            ``(n, n_channels)`` int32 counts.
        """
        uniforms = rng.random(rates_hz.shape, dtype=np.float32)
        return crossings_per_electrode(
            rates_hz,
            uniforms,
            np.asarray(electrode, dtype=np.int64),
            n_channels,
            1.0 / self.rate_hz,
            self._refractory,
            self._unit_since_spike,
        )

    def spikes(self, rates_hz: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``(n, C)`` uint8 threshold crossings for a block of rates, carrying refractoriness."""
        n = rates_hz.shape[0]
        n_channels = self.rig.subject.n_channels
        uniforms = rng.random((n, rates_hz.shape[1]), dtype=np.float32)
        counts = crossings_per_electrode(
            rates_hz,
            uniforms,
            self.rig.units.electrode,
            n_channels,
            1.0 / self.rate_hz,
            self._refractory,
            self._since_spike,
        )
        counts += rng.random((n, n_channels), dtype=np.float32) < self._background_p
        if self._dead_samples > 0:
            counts = detector_dead_time(counts, self._dead_samples, self._since_crossing)
        return np.minimum(counts, 255).astype(np.uint8)
