"""Output safety and integration: gain, clamp, causal smoothing, velocity integrated to position."""

from __future__ import annotations

import math

import numpy as np

from rtbci.profile import OutputConfig

__all__ = ["PostProcessor", "output_channels"]


def output_channels(config: OutputConfig) -> tuple[list[str], list[str]]:
    """Labels and units of the output stream: the decoded channels, then one position per velocity.

    A decoded channel named ``vel_<axis>`` is integrated into ``pos_<axis>``.

    Returns
    -------
    labels, units
    """
    velocity_unit = config.units
    position_unit = velocity_unit[:-2] if velocity_unit.endswith("/s") else f"{velocity_unit}*s"
    labels = list(config.kinematics)
    units = [velocity_unit] * len(labels)
    for name in config.kinematics:
        if name.startswith("vel_"):
            labels.append("pos_" + name[len("vel_") :])
            units.append(position_unit)
    return labels, units


class PostProcessor:
    """Turns one decoded bin into one output sample, in place.

    Order: non-finite values are replaced by the last good output (and counted);
    then gain; then the clamp (so the limit holds after gain); then an
    exponential smoother with the profile's time constant (a convex mix of
    clamped values stays within the clamp); then integration of every
    ``vel_*`` channel into position.

    Parameters
    ----------
    config
        The profile's output section.
    bin_s
        Bin width, the integration step.
    enabled
        The output's state at the first bin: ``False`` starts it held (see :attr:`enabled`).

    Attributes
    ----------
    output
        The preallocated output sample: decoded channels then positions.
    nonfinite
        Decoded values that were NaN or Inf.
    enabled
        When False (the safety stop) velocities are zero and positions hold.
    position_resets
        Position resets applied so far (see :meth:`request_position_reset`).
    reset_source
        What asked for the newest position reset.
    """

    def __init__(self, config: OutputConfig, bin_s: float, enabled: bool = True) -> None:
        self.n_decoded = len(config.kinematics)
        self.velocity = np.array([name.startswith("vel_") for name in config.kinematics])
        self.velocity_index = np.flatnonzero(self.velocity)
        labels, _ = output_channels(config)
        self.output = np.zeros(len(labels), dtype=np.float32)
        self.gain = np.float32(config.gain)
        self.clamp = np.float32(config.velocity_clamp)
        tau_s = config.smoothing_ms / 1000.0
        self.alpha = np.float32(1.0 if tau_s == 0 else 1.0 - math.exp(-bin_s / tau_s))
        self.bin_s = np.float32(bin_s)
        self._work = np.zeros(self.n_decoded, dtype=np.float32)
        self._smoothed = np.zeros(self.n_decoded, dtype=np.float32)
        self._last_good = np.zeros(self.n_decoded, dtype=np.float32)
        self._bad = np.zeros(self.n_decoded, dtype=bool)
        self.nonfinite = 0
        self.enabled = enabled
        self.position_resets = 0
        self.reset_source = ""
        self._reset_requests = 0

    def process(self, decoded: np.ndarray) -> np.ndarray:
        """Post-process one decoded bin; returns :attr:`output` (reused every call)."""
        work = self._work
        work[...] = decoded
        np.isfinite(work, out=self._bad)
        np.logical_not(self._bad, out=self._bad)
        if self._bad.any():
            self.nonfinite += int(self._bad.sum())
            np.copyto(work, self._last_good, where=self._bad)
        else:
            self._last_good[...] = work
        work *= self.gain
        np.clip(work, -self.clamp, self.clamp, out=work, where=self.velocity)
        self._smoothed += self.alpha * (work - self._smoothed)
        if not self.enabled:
            self._smoothed[self.velocity] = 0.0
        out = self.output
        out[: self.n_decoded] = self._smoothed
        if self._reset_requests != self.position_resets:
            self.position_resets = self._reset_requests
            out[self.n_decoded :] = 0.0
        out[self.n_decoded :] += self._smoothed[self.velocity_index] * self.bin_s
        return out

    def request_position_reset(self, source: str = "") -> None:
        """Zero the integrated position at the next bin (velocity and smoothing go on).

        Called from one thread other than the one that calls :meth:`process` (the engine's command
        thread); the bin that applies it raises :attr:`position_resets`.

        Parameters
        ----------
        source
            What asked for it, kept in :attr:`reset_source` for the event log.
        """
        self.reset_source = source
        self._reset_requests += 1

    def reset(self) -> None:
        """Zero the smoother and the integrated position."""
        self._smoothed[...] = 0.0
        self._last_good[...] = 0.0
        self.output[...] = 0.0
