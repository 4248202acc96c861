"""Finished bins, and the chunk handling shared by both streaming featurizers.

:class:`BinnedStream` checks each chunk, keeps the bin clock and health
counters, and hands the per-sample work to a numba kernel in
:mod:`rtbci.signal.kernels`; :class:`~rtbci.signal.spikes.SpikeBinner` and
:class:`~rtbci.signal.lfp.LfpFeaturizer` only say which kernel and what state.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from rtbci.errors import UserError
from rtbci.signal import kernels

__all__ = ["BinnedStream", "Bins", "ChannelCountError", "ChunkShapeError", "KernelSetup"]

# Samples per work block of the kernel: a 20 ms bin at 2 kHz fits in one, and
# two (BLOCK_SAMPLES, C) float32 blocks of 256 channels stay in L2.
BLOCK_SAMPLES = 64


class ChunkShapeError(UserError):
    """A chunk is not ``(n_samples, n_channels)`` with one timestamp per sample."""


class ChannelCountError(ChunkShapeError):
    """A chunk has a different channel count from the one the stream was set up with."""


@dataclass
class Bins:
    """Finished bins, in order.

    Attributes
    ----------
    index
        ``(k,)`` int64 bin number since the epoch: bin ``i`` covers
        ``[epoch + i*bin_s, epoch + (i+1)*bin_s)``.
    end_times
        ``(k,)`` float64 LSL time of each bin's end.
    values
        ``(k, C)`` float32 spike counts, or ``(k, C, F)`` float32 LFP features.
    """

    index: np.ndarray
    end_times: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return int(self.index.shape[0])

    @staticmethod
    def concatenate(parts: list[Bins], value_shape: tuple[int, ...]) -> Bins:
        """Join bins from successive calls into one :class:`Bins`.

        Parameters
        ----------
        parts
            Bins in order.
        value_shape
            Shape of one bin's values, used when ``parts`` is empty.
        """
        if not parts:
            return Bins(
                np.zeros(0, np.int64), np.zeros(0, np.float64), np.zeros((0, *value_shape), np.float32)
            )
        return Bins(
            np.concatenate([part.index for part in parts]),
            np.concatenate([part.end_times for part in parts]),
            np.concatenate([part.values for part in parts]),
        )


@dataclass(frozen=True)
class KernelSetup:
    """What a featurizer asks of the shared kernel (:func:`rtbci.signal.kernels.push`).

    Attributes
    ----------
    mode
        ``kernels.MODE_COUNTS`` or ``kernels.MODE_LFP``.
    n_sums
        Sums kept per channel over the open bin (F).
    dtype
        Arithmetic of sums and filters.
    sos
        ``(S, 6)`` filter sections, in kernel order; none for counts.
    sections
        ``(n_notch, n_lmp, n_bands, sections_per_band)``.
    """

    mode: int
    n_sums: int
    dtype: np.dtype
    sos: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 6)))
    sections: tuple[int, int, int, int] = (0, 0, 0, 0)


class BinnedStream:
    """Chunk checks, bin clock, kernel state, output buffers and health of a featurizer.

    Parameters
    ----------
    n_channels
        Channels every chunk must have.
    rate
        Nominal sampling rate in Hz (a sample stamped ``t`` covers ``[t, t + 1/rate)``).
    bin_s
        Bin width in seconds.
    epoch
        LSL time at which bin 0 starts.
    stream
        Stream name used in error messages and health.
    value_shape
        Shape of one bin's values: ``(C,)`` or ``(C, F)``.
    setup
        Mode, filters and arithmetic of the kernel.
    """

    def __init__(
        self,
        n_channels: int,
        rate: float,
        bin_s: float,
        epoch: float,
        stream: str,
        value_shape: tuple[int, ...],
        setup: KernelSetup,
    ) -> None:
        if n_channels <= 0:
            raise ValueError(f"stream {stream!r}: n_channels must be positive, got {n_channels}")
        if not rate > 0:
            raise ValueError(f"stream {stream!r}: rate must be positive, got {rate}")
        if not bin_s > 0:
            raise ValueError(f"stream {stream!r}: bin_s must be positive, got {bin_s}")
        self.n_channels = int(n_channels)
        self.rate = float(rate)
        self.bin_s = float(bin_s)
        self.epoch = float(epoch)
        self.stream = stream
        self.value_shape = value_shape
        self._timing = np.zeros(kernels.N_TIMING, np.float64)
        self._timing[kernels.TIMING_EPOCH] = self.epoch
        self._timing[kernels.TIMING_BIN_S] = self.bin_s
        self._timing[kernels.TIMING_PERIOD] = 1.0 / self.rate
        self._clock_i = np.zeros(kernels.N_CLOCK_INT, np.int64)
        self._clock_f = np.zeros(kernels.N_CLOCK_FLOAT, np.float64)
        self._nan_counts = np.zeros(self.n_channels, np.int64)
        self._bad_timestamps = 0
        self._no_bins = Bins.concatenate([], value_shape)
        dtype = np.dtype(setup.dtype)
        n = self.n_channels
        self._layout = np.array([setup.mode, *setup.sections], np.int64)
        self._sos = np.ascontiguousarray(setup.sos, dtype=dtype)
        self._state = np.zeros((len(setup.sos), 2, n), dtype)
        self._last_good = np.zeros(n, dtype)
        self._notched = np.zeros((BLOCK_SAMPLES if setup.mode == kernels.MODE_LFP else 0, n), dtype)
        self._scratch = np.zeros((BLOCK_SAMPLES, n), dtype)
        self._acc = np.zeros((setup.n_sums, n), dtype)
        self._held = np.zeros((setup.n_sums, n), dtype)
        self._n_outputs = setup.n_sums
        # Room for a few bins per chunk; grown (rarely, after a gap) when a chunk needs more.
        self._allocate_output(4)

    # -- public API -----------------------------------------------------------------
    def push(self, samples: np.ndarray, timestamps: np.ndarray) -> Bins:
        """Add a chunk; return the bins it closed.

        Parameters
        ----------
        samples
            ``(n, n_channels)``, any numeric dtype, any ``n`` (0 and 1 included).
        timestamps
            ``(n,)`` LSL times of the samples, in seconds.

        Returns
        -------
        Bins
            The bins closed by this chunk (often none or one), as fresh arrays.

        Raises
        ------
        ChannelCountError
            If the chunk's channel count is not ``n_channels``.
        ChunkShapeError
            If the chunk is not 2-D or the timestamps do not match it.
        """
        samples, timestamps = self._checked(samples, timestamps)
        while True:
            written = self._push_kernel(samples, timestamps)
            if written >= 0:
                return self._take(written)
            if written == kernels.NON_FINITE_TIMESTAMPS:
                timestamps = self._repaired_timestamps(timestamps)
            else:
                self._allocate_output(-written)

    def flush_until(self, t: float) -> Bins:
        """Close every bin that ends at or before ``t``, even with no later sample.

        The engine calls this at a bin's deadline when a stream is late. A bin
        closed here that had no sample is counted in ``health["empty_bins"]``;
        samples that arrive for it later go into the open bin and are counted
        as ``late_samples``.

        Raises
        ------
        ValueError
            If ``t`` is NaN or infinite.
        """
        t = float(t)
        if not math.isfinite(t):
            raise ValueError(f"stream {self.stream!r}: flush_until needs a finite time, got {t}")
        while True:
            written = self._flush_kernel(t)
            if written >= 0:
                return self._take(written)
            self._allocate_output(-written)

    def set_epoch(self, epoch: float) -> None:
        """Move the bin grid (before the first real sample) and forget all state.

        The engine builds its featurizers before any sample has arrived and
        places the grid on the first one (:func:`rtbci.signal.grid.grid_epoch`).
        """
        self.epoch = float(epoch)
        self._timing[kernels.TIMING_EPOCH] = self.epoch
        self.reset()

    def reset(self) -> None:
        """Forget all state and counters, as if newly made."""
        self._clock_i[:] = 0
        self._clock_f[:] = 0.0
        self._nan_counts[:] = 0
        self._bad_timestamps = 0
        for array in (self._state, self._last_good, self._notched, self._scratch, self._acc, self._held):
            array[...] = 0

    @property
    def health(self) -> dict:
        """Counters of bad input since the last reset.

        Returns
        -------
        dict
            ``stream``; ``samples``; ``nan_counts`` (per channel, NaN/Inf
            samples replaced by the last good value); ``nan_total``;
            ``backwards_timestamps``; ``late_samples`` (landed in an already
            closed bin, added to the open one); ``bad_timestamps`` (NaN/Inf
            timestamps, replaced); ``gaps`` and ``gap_seconds``;
            ``last_gap`` (``(from, to)`` or None); ``bins`` emitted and
            ``empty_bins`` among them.
        """
        clock_i, clock_f = self._clock_i, self._clock_f
        last_gap = None
        if clock_i[kernels.CLOCK_GAPS]:
            last_gap = (
                float(clock_f[kernels.CLOCK_LAST_GAP_FROM]),
                float(clock_f[kernels.CLOCK_LAST_GAP_TO]),
            )
        return {
            "stream": self.stream,
            "samples": int(clock_i[kernels.CLOCK_SAMPLES]),
            "nan_counts": self._nan_counts.copy(),
            "nan_total": int(self._nan_counts.sum()),
            "backwards_timestamps": int(clock_i[kernels.CLOCK_BACKWARDS]),
            "late_samples": int(clock_i[kernels.CLOCK_LATE]),
            "bad_timestamps": self._bad_timestamps,
            "gaps": int(clock_i[kernels.CLOCK_GAPS]),
            "gap_seconds": float(clock_f[kernels.CLOCK_GAP_SECONDS]),
            "last_gap": last_gap,
            "bins": int(clock_i[kernels.CLOCK_BINS]),
            "empty_bins": int(clock_i[kernels.CLOCK_EMPTY_BINS]),
        }

    # -- helpers ----------------------------------------------------------------------
    def _push_kernel(self, samples: np.ndarray, timestamps: np.ndarray) -> int:
        return kernels.push(
            samples,
            timestamps,
            self._timing,
            self._layout,
            self._sos,
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
        return kernels.flush(
            t,
            self._timing,
            self._layout,
            self._acc,
            self._held,
            self._clock_i,
            self._out_index,
            self._out_values,
        )

    def _allocate_output(self, n_bins: int) -> None:
        self._out_index = np.zeros(n_bins, np.int64)
        self._out_values = np.zeros((n_bins, self.n_channels, self._n_outputs), np.float32)

    def _take(self, written: int) -> Bins:
        if written == 0:
            return self._no_bins  # most chunks close no bin; its arrays are empty, so sharing is safe
        index = self._out_index[:written].copy()
        return Bins(
            index=index,
            end_times=self.epoch + (index + 1) * self.bin_s,
            values=self._out_values[:written].reshape(written, *self.value_shape).copy(),
        )

    def _checked(self, samples: np.ndarray, timestamps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        samples = np.asarray(samples)
        timestamps = np.asarray(timestamps, dtype=np.float64)
        if samples.ndim != 2:
            if samples.size == 0 and timestamps.size == 0:  # an empty pull from LSL
                return np.zeros((0, self.n_channels), np.float32), np.zeros(0, np.float64)
            raise ChunkShapeError(
                f"stream {self.stream!r}: a chunk must be 2-D (samples, channels), got shape {samples.shape}"
            )
        if samples.shape[1] != self.n_channels:
            raise ChannelCountError(
                f"stream {self.stream!r}: expected {self.n_channels} channels, "
                f"received {samples.shape[1]} (chunk shape {samples.shape})"
            )
        if timestamps.shape != (samples.shape[0],):
            raise ChunkShapeError(
                f"stream {self.stream!r}: {samples.shape[0]} samples but timestamps of shape "
                f"{timestamps.shape}"
            )
        if samples.dtype.kind not in "biuf":
            raise ChunkShapeError(
                f"stream {self.stream!r}: samples must be numeric, got dtype {samples.dtype}"
            )
        return np.ascontiguousarray(samples), np.ascontiguousarray(timestamps)

    def _repaired_timestamps(self, timestamps: np.ndarray) -> np.ndarray:
        """Replace NaN/Inf timestamps by the previous one plus a sample period."""
        repaired = timestamps.copy()
        period = 1.0 / self.rate
        previous = self._clock_f[kernels.CLOCK_LAST_T] if self._clock_i[kernels.CLOCK_STARTED] else None
        bad = ~np.isfinite(repaired)
        if previous is None:
            good = np.flatnonzero(~bad)
            if good.size == 0:
                raise ChunkShapeError(f"stream {self.stream!r}: a first chunk with no finite timestamp")
            # Leading bad stamps are back-filled from the first good one.
            previous = repaired[good[0]] - (good[0] + 1) * period
        for j in range(repaired.shape[0]):
            if bad[j]:
                repaired[j] = previous + period
            previous = repaired[j]
        self._bad_timestamps += int(bad.sum())
        return repaired
