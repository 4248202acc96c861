"""Causal filters that keep their state across blocks, so a signal generated in pieces is one signal."""

from __future__ import annotations

import numpy as np
from scipy import signal

__all__ = ["StatefulFilter", "ar1_unit_variance", "one_pole_smoother", "unit_variance_scale"]


class StatefulFilter:
    """A second-order-sections filter along axis 0 whose state carries over between calls.

    Parameters
    ----------
    sos
        Second-order sections, as ``scipy.signal`` designs them.
    n_columns
        Number of independent columns filtered.
    """

    def __init__(self, sos: np.ndarray, n_columns: int) -> None:
        self.sos = np.asarray(sos, dtype=np.float64)
        self.state = np.zeros((self.sos.shape[0], 2, n_columns))

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """Filter the next ``(n, n_columns)`` samples."""
        out, self.state = signal.sosfilt(self.sos, values, axis=0, zi=self.state)
        return out


def one_pole_smoother(tau_s: float, rate_hz: float, n_columns: int) -> StatefulFilter:
    """Exponential smoother with time constant ``tau_s`` and unit gain at DC."""
    decay = np.exp(-1.0 / (tau_s * rate_hz))
    return StatefulFilter(signal.tf2sos([1.0 - decay], [1.0, -decay]), n_columns)


def ar1_unit_variance(
    tau_s: float, rate_hz: float, n_columns: int, rng: np.random.Generator
) -> StatefulFilter:
    """Filter that turns unit white noise into unit-variance AR(1) noise with time constant ``tau_s``.

    It starts in the stationary distribution (a random draw from ``rng``), not at zero.
    """
    decay = np.exp(-1.0 / (tau_s * rate_hz))
    ar1 = StatefulFilter(signal.tf2sos([np.sqrt(1.0 - decay**2)], [1.0, -decay]), n_columns)
    # For one first-order section the state is decay times the previous output.
    ar1.state[0, 0] = decay * rng.standard_normal(n_columns)
    return ar1


def unit_variance_scale(sos: np.ndarray, rate_hz: float) -> float:
    """Factor that makes the filter's response to unit white noise unit-variance."""
    impulse = np.zeros(round(20 * rate_hz))
    impulse[0] = 1.0
    return float(1.0 / np.sqrt(np.sum(signal.sosfilt(sos, impulse) ** 2)))
