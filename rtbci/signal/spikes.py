"""Streaming spike binning: counts per channel per bin, aligned to an epoch on the LSL clock."""

from __future__ import annotations

import numpy as np

from rtbci.signal import kernels
from rtbci.signal.bins import BinnedStream, KernelSetup

__all__ = ["SpikeBinner"]


class SpikeBinner(BinnedStream):
    """Sum spike counts into bins, chunk by chunk.

    Parameters
    ----------
    n_channels
        Electrodes per sample.
    rate
        Input sampling rate in Hz (for example 1000 for 1 ms count samples).
    bin_s
        Bin width in seconds.
    epoch
        LSL time at which bin 0 starts.
    stream
        Stream name for errors and health.

    Notes
    -----
    Each output bin is the raw count sum (float32, not clamped). A bin with no
    sample (a gap) is emitted with zero counts and counted in
    ``health["empty_bins"]``; see :mod:`rtbci.signal.kernels` for the timing rules.
    """

    def __init__(
        self, n_channels: int, rate: float, bin_s: float, epoch: float = 0.0, stream: str = "spikes"
    ) -> None:
        setup = KernelSetup(mode=kernels.MODE_COUNTS, n_sums=1, dtype=np.dtype(np.float32))
        super().__init__(n_channels, rate, bin_s, epoch, stream, value_shape=(n_channels,), setup=setup)
