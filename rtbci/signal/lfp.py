"""Streaming causal LFP features: notch, local motor potential and log band power per bin."""

from __future__ import annotations

from typing import Literal

import numpy as np

from rtbci.profile import FeatureConfig
from rtbci.signal import kernels
from rtbci.signal.bins import BinnedStream
from rtbci.signal.filters import design_filter_bank

__all__ = ["LfpFeaturizer"]

# Samples filtered per block: a 20 ms bin at 2 kHz fits in one, and two
# (BLOCK_SAMPLES, C) float32 blocks of 256 channels stay in L2.
BLOCK_SAMPLES = 64


class LfpFeaturizer(BinnedStream):
    """Causal per-bin LFP features, chunk by chunk, with filter state carried across chunks.

    Every sample goes through the mains notches; the notched signal then feeds
    a low-pass (its bin mean is the local motor potential, feature 0) and one
    band-pass per band (the log of its mean square over the bin is that band's
    feature). Nothing looks ahead: no ``filtfilt``, no FFT, no statistics of
    the future.

    Parameters
    ----------
    n_channels
        Electrodes per sample.
    rate
        LFP sampling rate in Hz.
    bin_s
        Bin width in seconds.
    features
        Line frequency, LMP cut-off and bands (``FeatureConfig`` of the profile).
    epoch
        LSL time at which bin 0 starts.
    stream
        Stream name for errors and health.
    precision
        Arithmetic of the filters. ``float32`` (default) is about twice as fast
        and matches ``float64`` to well within the features' noise (see
        ``tests/test_signal_lfp.py``).

    Notes
    -----
    Output values are ``(k, C, F)`` float32, un-normalized; the model artifact
    applies the fitted :class:`~rtbci.signal.normalize.Normalizer`. A bin with
    no sample (a gap) repeats the previous bin's features and is counted in
    ``health["empty_bins"]``.
    """

    def __init__(
        self,
        n_channels: int,
        rate: float,
        bin_s: float,
        features: FeatureConfig,
        epoch: float = 0.0,
        stream: str = "lfp",
        precision: Literal["float32", "float64"] = "float32",
    ) -> None:
        self.filter_bank = design_filter_bank(rate, features)
        n_features = len(self.filter_bank.feature_names)
        super().__init__(n_channels, rate, bin_s, epoch, stream, value_shape=(n_channels, n_features))
        dtype = np.dtype(precision)
        bank = self.filter_bank
        self._sos = np.ascontiguousarray(bank.stacked(), dtype=dtype)
        self._layout = np.array(
            [len(bank.notch), len(bank.lmp), bank.bands.shape[0], bank.bands.shape[1]], np.int64
        )
        self._state = np.zeros((bank.n_sections, 2, n_channels), dtype)
        self._last_good = np.zeros(n_channels, dtype)
        self._notched = np.zeros((BLOCK_SAMPLES, n_channels), dtype)
        self._scratch = np.zeros((BLOCK_SAMPLES, n_channels), dtype)
        self._acc = np.zeros((n_features, n_channels), dtype)
        self._held = np.zeros((n_features, n_channels), dtype)

    @property
    def feature_names(self) -> list[str]:
        """Names of the F features: ``["lmp", "8-15Hz", ...]``."""
        return self.filter_bank.feature_names

    def _push_kernel(self, samples: np.ndarray, timestamps: np.ndarray) -> int:
        return kernels.lfp_push(
            samples,
            timestamps,
            self._timing,
            self._sos,
            self._layout,
            self._state,
            self._last_good,
            self._notched,
            self._scratch,
            self._acc,
            self._held,
            self._nan_counts,
            self._clock_i,
            self._clock_f,
            self._out_index,
            self._out_values,
        )

    def _flush_kernel(self, t: float) -> int:
        return kernels.lfp_flush(
            t, self._timing, self._acc, self._held, self._clock_i, self._out_index, self._out_values
        )

    def _reset_state(self) -> None:
        for array in (self._state, self._last_good, self._notched, self._scratch, self._acc, self._held):
            array[...] = 0
