"""LFP synthesis: what one Utah-array electrode's field potential is made of.

Per electrode, at the sampling rate:

- local motor potential: the rate modulation of nearby units (the synaptic
  drive), mixed with a Gaussian spatial kernel plus a volume-conducted share
  of the whole array, and low-passed;
- beta (15–30 Hz): two array-wide narrow-band sources whose amplitude drops
  during movement and rebounds after it;
- aperiodic background, partly common to the array: 1/f^χ, steepening by
  ``2 * knee_order`` above a per-subject knee (``model="v2"``, the default;
  real field potentials fall as about 1/f^2-4 above 30 Hz), or plain 1/f^χ
  (``"v1"``, before issue 31);
- the low-frequency remainder of local spike waveforms, and broadband
  power from unresolved nearby spikes that follows the local rate;
- per-channel gain; then line noise and the amplifier's white floor; with
  ``model="v2"`` the front end's anti-alias low-pass; quantised to the ADC step.

The movement information in the LFP therefore comes from the same neurons as
the spikes, but blurred in space, filtered in time and buried under
background activity, as in real recordings.
"""

from __future__ import annotations

import numba
import numpy as np
from scipy import signal

from rtbci.sim.behavior import Kinematics
from rtbci.sim.config import LfpConfig
from rtbci.sim.filters import StatefulFilter, unit_variance_scale
from rtbci.sim.variability import SessionRig

__all__ = ["LfpSynthesizer"]

# Corner frequencies of the one-pole bank that builds the 1/f background: three
# per decade from 0.3 to 300 Hz give a power law across the LFP band.
_APERIODIC_CORNERS_HZ = np.logspace(np.log10(0.3), np.log10(300.0), 10)
# Shape of one spike's low-frequency remainder (1 kHz samples, relative).
_SPIKE_BLEED_KERNEL = np.array([-1.0, -0.4, 0.3, 0.2])
# The units' drive changes slowly against the LMP low-pass and the MUA envelope,
# so it is mixed into the channels at 10 ms steps and held in between.
_DRIVE_STEP_S = 0.01


@numba.njit(cache=True, nogil=True)
def _mix(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``values @ weights`` for small float32 matrices, single-threaded.

    A multi-threaded BLAS is many times slower than this on a busy machine.
    """
    n, n_in = values.shape
    out = np.zeros((n, weights.shape[1]), dtype=np.float32)
    for t in range(n):
        for i in range(n_in):
            value = values[t, i]
            for c in range(weights.shape[1]):
                out[t, c] += value * weights[i, c]
    return out


@numba.njit(cache=True, nogil=True)
def _one_pole_bank(
    noise: np.ndarray, decays: np.ndarray, weights: np.ndarray, state: np.ndarray
) -> np.ndarray:
    """Weighted sum of one-pole low-passes of the same input, per column; ``state`` (K, C) in/out."""
    n, n_columns = noise.shape
    out = np.empty((n, n_columns), dtype=np.float32)
    for c in range(n_columns):
        for t in range(n):
            total = 0.0
            x = noise[t, c]
            for k in range(decays.shape[0]):
                state[k, c] = decays[k] * state[k, c] + (1.0 - decays[k]) * x
                total += weights[k] * state[k, c]
            out[t, c] = total
    return out


def _bank_sd(decays: np.ndarray, weights: np.ndarray) -> float:
    """SD of the bank's output for unit white noise (stationary covariances of one-pole pairs)."""
    gains = 1.0 - decays
    covariance = np.outer(gains, gains) / (1.0 - np.outer(decays, decays))
    return float(np.sqrt(weights @ covariance @ weights))


def _knee_sos(knee_decay: float, order: int) -> np.ndarray:
    """``order`` identical unit-gain one-pole low-passes in cascade, as second-order sections."""
    b, a = np.array([1.0]), np.array([1.0])
    for _ in range(order):
        b, a = np.convolve(b, [1.0 - knee_decay]), np.convolve(a, [1.0, -knee_decay])
    return signal.tf2sos(b, a)


def _background_sd(decays: np.ndarray, weights: np.ndarray, knee: np.ndarray, rate_hz: float) -> float:
    """SD of the bank followed by the knee filter ``knee`` (sos), for unit white noise (numerically)."""
    n = round(20 * rate_hz)
    impulse = np.zeros(n)
    impulse[0] = 1.0
    bank = sum(
        w * signal.lfilter([1.0 - a], [1.0, -a], impulse) for a, w in zip(decays, weights, strict=True)
    )
    response = signal.sosfilt(knee, bank)
    return float(np.sqrt(np.sum(response**2)))


def _local_average(rig: SessionRig, space_constant_um: float) -> np.ndarray:
    """``(U, C)`` Gaussian-weighted average over units around each electrode (columns sum to 1)."""
    subject = rig.subject
    unit_um = subject.electrode_um[rig.units.electrode]
    distance2 = np.sum((unit_um[:, None, :] - subject.electrode_um[None, :, :]) ** 2, axis=2)
    local = np.exp(-distance2 / (2.0 * space_constant_um**2))
    return local / np.maximum(local.sum(axis=0, keepdims=True), 1e-12)


def mixing_matrix(rig: SessionRig, config: LfpConfig) -> np.ndarray:
    """``(U, C)`` µV per Hz of each unit's rate modulation on each electrode."""
    subject = rig.subject
    unit_um = subject.electrode_um[rig.units.electrode]
    local = _local_average(rig, config.lmp_space_constant_um)
    # Volume conduction spreads over the array the unit is on, not to other arrays.
    same_array = np.abs(unit_um[:, None, 0] - subject.electrode_um[None, :, 0]) < 1e4
    far = same_array / same_array.sum(axis=0, keepdims=True)
    return config.lmp_uv_per_hz * ((1.0 - config.lmp_far_field) * local + config.lmp_far_field * far)


class LfpSynthesizer:
    """Builds one session's LFP block by block, keeping every filter's state.

    Parameters
    ----------
    rig
        The session.
    config
        LFP settings.
    rate_hz
        Sampling rate.
    """

    def __init__(self, rig: SessionRig, config: LfpConfig, rate_hz: float) -> None:
        self.rig = rig
        self.config = config
        self.rate_hz = rate_hz
        subject = rig.subject
        n_channels = subject.n_channels
        self._mixing = mixing_matrix(rig, config).astype(np.float32)
        self._mua_mixing = _local_average(rig, config.mua_space_constant_um).astype(np.float32)
        self._baseline_hz = rig.units.baseline_hz.astype(np.float32)
        self._lmp_filter = StatefulFilter(
            signal.butter(2, config.lmp_cutoff_hz, fs=rate_hz, output="sos"), n_channels
        )

        self._decays = np.exp(-2.0 * np.pi * _APERIODIC_CORNERS_HZ / rate_hz)
        # Amplitude weights f_k^(−χ/2) over log-spaced corners sum to a 1/f^χ spectrum.
        weights = _APERIODIC_CORNERS_HZ ** (-subject.aperiodic_exponent / 2.0)
        self._bank_state = np.zeros((len(self._decays), n_channels))
        self._v2 = config.model == "v2"
        if self._v2:
            # One-pole low-passes at the knee: 1/f^χ below it, 1/f^(χ + 2 * order) above it.
            knee_decay = float(np.exp(-2.0 * np.pi * subject.knee_hz / rate_hz))
            knee = _knee_sos(knee_decay, config.knee_order)
            self._knee = StatefulFilter(knee, n_channels)
            self._bank_weights = weights / _background_sd(self._decays, weights, knee, rate_hz)
            self._frontend = StatefulFilter(
                signal.butter(4, config.frontend_lowpass_hz, fs=rate_hz, output="sos"), n_channels
            )
        elif config.model == "v1":
            self._bank_weights = weights / _bank_sd(self._decays, weights)
        else:
            raise ValueError(f"LfpConfig.model must be 'v1' or 'v2', got {config.model!r}")

        low = subject.beta_hz - config.beta_bandwidth_hz / 2.0
        high = subject.beta_hz + config.beta_bandwidth_hz / 2.0
        beta_sos = signal.butter(2, [low, high], btype="bandpass", fs=rate_hz, output="sos")
        self._beta_filter = StatefulFilter(beta_sos, subject.beta_weights.shape[0])
        self._beta_scale = unit_variance_scale(beta_sos, rate_hz) * subject.beta_uv

        self._bleed_history = np.zeros((len(_SPIKE_BLEED_KERNEL) - 1, n_channels), dtype=np.float32)
        self._line_parts = [
            (
                (amplitude * subject.line_uv * np.cos(h * subject.line_phase)).astype(np.float32),
                (amplitude * subject.line_uv * np.sin(h * subject.line_phase)).astype(np.float32),
            )
            for h, amplitude in enumerate([1.0, *config.line_harmonics], start=1)
        ]
        self._alive = (~rig.dead).astype(np.float32)
        self._drive_step = max(1, round(_DRIVE_STEP_S * rate_hz))

    def block(
        self,
        start_sample: int,
        modulation_hz: np.ndarray,
        counts: np.ndarray,
        now: Kinematics,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """The next block of LFP.

        Parameters
        ----------
        start_sample
            Absolute index of the block's first sample (line-noise phase).
        modulation_hz
            ``(n, U)`` float32 rate modulation of the units (their synaptic drive).
        counts
            ``(n, C)`` threshold crossings on each electrode.
        now
            Kinematics of the block's samples (movement state drives beta).
        rng
            Noise source.

        Returns
        -------
        np.ndarray
            ``(n, C)`` float32 µV.
        """
        cfg, subject = self.config, self.rig.subject
        n, n_channels = counts.shape
        step = self._drive_step
        coarse = modulation_hz.reshape(n // step, step, -1).mean(axis=1)
        lmp_in = np.repeat(_mix(coarse, self._mixing), step, axis=0)
        local_rate = np.repeat(_mix(coarse + self._baseline_hz, self._mua_mixing), step, axis=0)
        lmp = self._lmp_filter(lmp_in)

        noise = rng.standard_normal((n, 2 * n_channels + 3), dtype=np.float32)
        private, amplifier = noise[:, :n_channels], noise[:, n_channels : 2 * n_channels]
        shared, beta_noise = noise[:, 2 * n_channels : 2 * n_channels + 1], noise[:, 2 * n_channels + 1 :]
        mixed = np.sqrt(1.0 - cfg.aperiodic_shared) * private + np.sqrt(cfg.aperiodic_shared) * shared
        background = cfg.aperiodic_uv * _one_pole_bank(
            mixed, self._decays, self._bank_weights, self._bank_state
        )
        if self._v2:
            background = self._knee(background)

        beta_sources = self._beta_filter(beta_noise)
        envelope = 1.0 - subject.beta_desync * now.engaged + cfg.beta_rebound * now.rebound
        beta_sources *= (self._beta_scale * envelope)[:, None]
        beta = beta_sources[:, :1] * subject.beta_weights[0] + beta_sources[:, 1:] * subject.beta_weights[1]

        # Causal FIR over the counts, with the last samples of the previous block in front.
        history = np.concatenate([self._bleed_history, counts.astype(np.float32)])
        taps = len(_SPIKE_BLEED_KERNEL)
        bleed = sum(
            weight * history[taps - 1 - lag : taps - 1 - lag + n]
            for lag, weight in enumerate(cfg.spike_bleed_uv * _SPIKE_BLEED_KERNEL)
        )
        self._bleed_history = history[n:]

        # sin(h(ωt + φ)) = sin(hωt)cos(hφ) + cos(hωt)sin(hφ): no per-channel sine per sample.
        phase = 2.0 * np.pi * cfg.line_hz * (start_sample + np.arange(n)) / self.rate_hz
        line = np.zeros((n, n_channels), dtype=np.float32)
        for harmonic, (cos_part, sin_part) in enumerate(self._line_parts, start=1):
            line += np.sin(harmonic * phase)[:, None].astype(np.float32) * cos_part
            line += np.cos(harmonic * phase)[:, None].astype(np.float32) * sin_part

        neural = (lmp + background + beta + bleed) * (self.rig.lfp_gain * self._alive)
        white_sd = np.sqrt(
            cfg.amplifier_uv**2
            + self.rig.noisy_lfp_uv**2
            + cfg.mua_uv2_per_hz * np.maximum(local_rate, 0.0) * self._alive
        )
        noise_floor = amplifier * white_sd
        total = neural + line + noise_floor
        if self._v2:
            total = self._frontend(total)
        return (np.round(total / cfg.resolution_uv) * cfg.resolution_uv).astype(np.float32)
