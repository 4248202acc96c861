"""Design of the causal LFP filter bank with scipy.signal (second-order sections).

The streaming kernels in :mod:`rtbci.signal.kernels` run these sections; the
design lives here so that the scipy reference tests and the benchmark baseline
use exactly the same coefficients.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from rtbci.profile import FeatureConfig

__all__ = ["LfpFilterBank", "design_filter_bank"]

# Quality factor of each mains notch: a 2 Hz wide stop band at 60 Hz.
NOTCH_Q = 30.0
# Butterworth orders. Order 2 low-pass and order-2 band-pass prototypes (two
# sections each band) keep the cascade short enough for the per-sample budget.
LMP_ORDER = 2
BAND_ORDER = 2


@dataclass(frozen=True)
class LfpFilterBank:
    """Second-order sections of every LFP filter, float64, scipy layout ``[b0 b1 b2 a0 a1 a2]``.

    Attributes
    ----------
    rate
        Sampling rate the filters are designed for, in Hz.
    notch
        ``(n_notch, 6)``: the mains notches, applied first to every sample.
    lmp
        ``(n_lmp, 6)``: the low-pass of the local motor potential, after the notches.
    bands
        ``(n_bands, sections_per_band, 6)``: one band-pass per band, after the notches.
    band_edges
        The ``(low, high)`` edges in Hz of the bands that fit below Nyquist.
    """

    rate: float
    notch: np.ndarray
    lmp: np.ndarray
    bands: np.ndarray
    band_edges: tuple[tuple[float, float], ...]

    @property
    def feature_names(self) -> list[str]:
        """``["lmp", "8-15Hz", ...]``: the LMP, then one log band power per band."""
        return ["lmp"] + [f"{low:g}-{high:g}Hz" for low, high in self.band_edges]

    @property
    def n_sections(self) -> int:
        """Biquads per sample and channel."""
        return len(self.notch) + len(self.lmp) + self.bands.shape[0] * self.bands.shape[1]

    def stacked(self) -> np.ndarray:
        """All sections in processing order: notches, LMP low-pass, then each band's sections."""
        return np.concatenate([self.notch, self.lmp, self.bands.reshape(-1, 6)], axis=0)


def design_filter_bank(rate: float, features: FeatureConfig) -> LfpFilterBank:
    """Design the notch, LMP and band-pass filters for one LFP sampling rate.

    Parameters
    ----------
    rate
        LFP sampling rate in Hz.
    features
        Line frequency and harmonics, LMP cut-off and bands.

    Returns
    -------
    LfpFilterBank

    Raises
    ------
    ValueError
        If the LMP cut-off is not below Nyquist.

    Notes
    -----
    Notches are placed at ``k * line_hz`` for ``k = 1 .. 1 + line_harmonics``,
    skipping those at or above Nyquist. Bands whose upper edge is at or above
    Nyquist are dropped (the profile documents this).
    """
    nyquist = rate / 2.0
    if not features.lmp_cutoff_hz < nyquist:
        raise ValueError(f"lmp_cutoff_hz {features.lmp_cutoff_hz} must be below Nyquist ({nyquist} Hz)")
    notches = []
    for multiple in range(1, features.line_harmonics + 2):
        frequency = multiple * features.line_hz
        if frequency >= nyquist:
            break
        b, a = signal.iirnotch(frequency, NOTCH_Q, fs=rate)
        notches.append(signal.tf2sos(b, a))
    notch = np.concatenate(notches, axis=0) if notches else np.zeros((0, 6))
    lmp = signal.butter(LMP_ORDER, features.lmp_cutoff_hz, btype="lowpass", fs=rate, output="sos")
    edges = tuple((float(low), float(high)) for low, high in features.bands_hz if high < nyquist)
    bands = [signal.butter(BAND_ORDER, edge, btype="bandpass", fs=rate, output="sos") for edge in edges]
    sections_per_band = BAND_ORDER  # a band-pass of order N has N sections
    band_array = np.stack(bands) if bands else np.zeros((0, sections_per_band, 6))
    return LfpFilterBank(
        rate=float(rate),
        notch=np.ascontiguousarray(notch, dtype=np.float64),
        lmp=np.ascontiguousarray(lmp, dtype=np.float64),
        bands=np.ascontiguousarray(band_array, dtype=np.float64),
        band_edges=edges,
    )
