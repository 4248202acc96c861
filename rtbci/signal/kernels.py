"""Numba kernels of the streaming featurizers: the per-sample hot path.

Every kernel walks a chunk sample by sample, in arrival order, and does the
same arithmetic in the same order whatever the chunking; that is what makes
the output of any chunking equal to a one-shot pass (ARCHITECTURE.md rule 1).

Inner loops run over channels, which are contiguous in a ``(n_samples,
n_channels)`` chunk and in every state array, so LLVM vectorises them.

Bin timing, shared by both featurizers
--------------------------------------
Bin ``i`` covers ``[epoch + i*bin_s, epoch + (i+1)*bin_s)`` on the LSL clock.
A sample stamped ``t`` falls in bin ``floor((t - epoch) / bin_s)`` and covers
``[t, t + 1/rate)``, so a bin closes as soon as a sample covering its end has
arrived (not one chunk later). A sample that falls in a bin already closed
(late, or a timestamp that went backwards) is added to the open bin. A jump
over whole bins emits those bins empty: spike bins with zero counts, LFP bins
holding the last features, and each is counted in the health counters.

Counters live in two small arrays so the kernels can update them in place;
the ``CLOCK_*`` constants index them.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Index into the int64 clock array.
CLOCK_OPEN_BIN = 0  # the bin that samples are being added to
CLOCK_STARTED = 1  # 1 once the first sample has been seen
CLOCK_SAMPLES = 2
CLOCK_BACKWARDS = 3  # timestamps earlier than the newest one seen
CLOCK_LATE = 4  # samples that fell in a bin already closed
CLOCK_GAPS = 5
CLOCK_ACC_N = 6  # samples in the open bin so far
CLOCK_BINS = 7  # bins emitted
CLOCK_EMPTY_BINS = 8  # bins emitted with no sample in them
N_CLOCK_INT = 9
# Index into the float64 clock array.
CLOCK_LAST_T = 0  # newest timestamp seen
CLOCK_GAP_SECONDS = 1  # time missing in gaps, summed
CLOCK_LAST_GAP_FROM = 2
CLOCK_LAST_GAP_TO = 3
N_CLOCK_FLOAT = 4
# Index into the float64 timing array passed to every kernel.
TIMING_EPOCH = 0
TIMING_BIN_S = 1
TIMING_PERIOD = 2
N_TIMING = 3

# A sample stamped a hair before a bin edge by float rounding (t0 + k/rate is
# not exact) belongs to the bin that starts there: 1e-6 of a bin is 20 ns at
# 20 ms, far below any real timestamp jitter.
EDGE_TOLERANCE = 1e-6
# A step between timestamps longer than this many sample periods is a gap
# (so a single dropped sample, a step of 2 periods, counts).
GAP_FACTOR = 1.5
# Floor added to band power before the log, in squared signal units (uV^2):
# keeps a flat channel finite.
POWER_FLOOR = 1e-6


@njit(cache=True)
def _bin_of(t, epoch, bin_s):
    return np.int64(np.floor((t - epoch) / bin_s + EDGE_TOLERANCE))


@njit(cache=True)
def bins_needed(timestamps, timing, clock_i):
    """Upper bound on the bins that a chunk with these timestamps can close."""
    n = timestamps.shape[0]
    if n == 0:
        return 0
    epoch, bin_s, period = timing[TIMING_EPOCH], timing[TIMING_BIN_S], timing[TIMING_PERIOD]
    if clock_i[CLOCK_STARTED]:
        open_bin = clock_i[CLOCK_OPEN_BIN]
    else:
        open_bin = _bin_of(timestamps[0], epoch, bin_s)
    highest = open_bin
    for j in range(n):
        closes = _bin_of(timestamps[j] + period, epoch, bin_s)
        if closes > highest:
            highest = closes
    return highest - open_bin


@njit(cache=True)
def _observe(t, period, clock_i, clock_f):
    """Count a sample's timestamp: a step backwards, or a gap since the newest one."""
    if clock_i[CLOCK_STARTED]:
        last = clock_f[CLOCK_LAST_T]
        if t < last:
            clock_i[CLOCK_BACKWARDS] += 1
            return
        step = t - last
        if step > GAP_FACTOR * period:
            clock_i[CLOCK_GAPS] += 1
            clock_f[CLOCK_GAP_SECONDS] += step - period
            clock_f[CLOCK_LAST_GAP_FROM] = last
            clock_f[CLOCK_LAST_GAP_TO] = t
    clock_f[CLOCK_LAST_T] = t


@njit(cache=True)
def _is_clean(chunk):
    """True if every sample of the chunk is finite (one vectorisable pass)."""
    probe = 0.0
    for j in range(chunk.shape[0]):
        for ch in range(chunk.shape[1]):
            probe += chunk[j, ch] * 0.0
    return probe == 0.0


@njit(cache=True)
def _take_row(chunk, j, clean, row, nan_counts):
    """Copy sample ``j`` into ``row``; a non-finite value keeps the channel's last good value."""
    if clean:
        for ch in range(row.shape[0]):
            row[ch] = chunk[j, ch]
    else:
        for ch in range(row.shape[0]):
            value = chunk[j, ch]
            if np.isfinite(value):
                row[ch] = value
            else:
                nan_counts[ch] += 1


@njit(cache=True)
def _biquad(src, dst, sos, state, s):
    """One second-order section (transposed direct form II) across channels; ``dst`` may be ``src``."""
    b0, b1, b2, a1, a2 = sos[s, 0], sos[s, 1], sos[s, 2], sos[s, 4], sos[s, 5]
    z1 = state[s, 0]
    z2 = state[s, 1]
    for ch in range(src.shape[0]):
        x = src[ch]
        y = b0 * x + z1[ch]
        z1[ch] = b1 * x - a1 * y + z2[ch]
        z2[ch] = b2 * x - a2 * y
        dst[ch] = y


@njit(cache=True)
def _biquad_sum(src, sos, state, s, total, square):
    """A last section whose output is only summed into ``total`` (squared if ``square``)."""
    b0, b1, b2, a1, a2 = sos[s, 0], sos[s, 1], sos[s, 2], sos[s, 4], sos[s, 5]
    z1 = state[s, 0]
    z2 = state[s, 1]
    if square:
        for ch in range(src.shape[0]):
            x = src[ch]
            y = b0 * x + z1[ch]
            z1[ch] = b1 * x - a1 * y + z2[ch]
            z2[ch] = b2 * x - a2 * y
            total[ch] += y * y
    else:
        for ch in range(src.shape[0]):
            x = src[ch]
            y = b0 * x + z1[ch]
            z1[ch] = b1 * x - a1 * y + z2[ch]
            z2[ch] = b2 * x - a2 * y
            total[ch] += y


@njit(cache=True)
def _cascade_sum(src, tmp, sos, state, first, stop, total, square):
    """Run sections ``first..stop-1`` on ``src`` and sum the output into ``total``."""
    for s in range(first, stop - 1):
        _biquad(src, tmp, sos, state, s)
        src = tmp
    _biquad_sum(src, sos, state, stop - 1, total, square)


@njit(cache=True)
def _emit_spikes(bin_index, r, acc, clock_i, out_index, out_values):
    if clock_i[CLOCK_ACC_N] == 0:
        clock_i[CLOCK_EMPTY_BINS] += 1
    for ch in range(acc.shape[0]):
        out_values[r, ch] = acc[ch]
        acc[ch] = 0.0
    out_index[r] = bin_index
    clock_i[CLOCK_ACC_N] = 0
    clock_i[CLOCK_BINS] += 1


@njit(cache=True)
def _emit_lfp(bin_index, r, acc, held, clock_i, out_index, out_values):
    n = clock_i[CLOCK_ACC_N]
    if n > 0:
        inv = 1.0 / n
        for ch in range(acc.shape[1]):
            held[0, ch] = acc[0, ch] * inv
            acc[0, ch] = 0.0
        for f in range(1, acc.shape[0]):
            for ch in range(acc.shape[1]):
                held[f, ch] = np.log(acc[f, ch] * inv + POWER_FLOOR)
                acc[f, ch] = 0.0
    else:
        clock_i[CLOCK_EMPTY_BINS] += 1  # a gap: hold the last features
    for ch in range(held.shape[1]):
        for f in range(held.shape[0]):
            out_values[r, ch, f] = held[f, ch]
    out_index[r] = bin_index
    clock_i[CLOCK_ACC_N] = 0
    clock_i[CLOCK_BINS] += 1


@njit(cache=True)
def _start(t, epoch, bin_s, clock_i):
    if not clock_i[CLOCK_STARTED]:
        clock_i[CLOCK_OPEN_BIN] = _bin_of(t, epoch, bin_s)
        clock_i[CLOCK_STARTED] = 1


@njit(cache=True, nogil=True)
def spike_push(chunk, timestamps, timing, row, acc, nan_counts, clock_i, clock_f, out_index, out_values):
    """Add a chunk of spike counts to the open bins; write closed bins to ``out_*``.

    Returns the number of bins written, or minus the number needed if
    ``out_index`` is too short (nothing is changed then).
    """
    needed = bins_needed(timestamps, timing, clock_i)
    if needed > out_index.shape[0]:
        return -needed
    epoch, bin_s, period = timing[TIMING_EPOCH], timing[TIMING_BIN_S], timing[TIMING_PERIOD]
    clean = _is_clean(chunk)
    r = 0
    for j in range(chunk.shape[0]):
        t = timestamps[j]
        _observe(t, period, clock_i, clock_f)
        _start(t, epoch, bin_s, clock_i)
        open_bin = clock_i[CLOCK_OPEN_BIN]
        sample_bin = _bin_of(t, epoch, bin_s)
        if sample_bin < open_bin:
            clock_i[CLOCK_LATE] += 1
        while open_bin < sample_bin:
            _emit_spikes(open_bin, r, acc, clock_i, out_index, out_values)
            r += 1
            open_bin += 1
        _take_row(chunk, j, clean, row, nan_counts)
        for ch in range(row.shape[0]):
            acc[ch] += row[ch]
        clock_i[CLOCK_ACC_N] += 1
        clock_i[CLOCK_SAMPLES] += 1
        covered = _bin_of(t + period, epoch, bin_s)
        while open_bin < covered:
            _emit_spikes(open_bin, r, acc, clock_i, out_index, out_values)
            r += 1
            open_bin += 1
        clock_i[CLOCK_OPEN_BIN] = open_bin
    return r


@njit(cache=True, nogil=True)
def spike_flush(t, timing, acc, clock_i, out_index, out_values):
    """Close every bin that ends at or before ``t``; same return convention as :func:`spike_push`."""
    if not clock_i[CLOCK_STARTED]:
        return 0
    open_bin = clock_i[CLOCK_OPEN_BIN]
    stop = _bin_of(t, timing[TIMING_EPOCH], timing[TIMING_BIN_S])
    if stop - open_bin > out_index.shape[0]:
        return -(stop - open_bin)
    r = 0
    while open_bin < stop:
        _emit_spikes(open_bin, r, acc, clock_i, out_index, out_values)
        r += 1
        open_bin += 1
    clock_i[CLOCK_OPEN_BIN] = open_bin
    return r


@njit(cache=True, nogil=True)
def lfp_push(
    chunk,
    timestamps,
    timing,
    sos,
    layout,
    state,
    row,
    work,
    tmp,
    acc,
    held,
    nan_counts,
    clock_i,
    clock_f,
    out_index,
    out_values,
):
    """Filter a chunk of LFP, add its features to the open bins, write closed bins to ``out_*``.

    ``layout`` is ``[n_notch, n_lmp, n_bands, sections_per_band]``; ``sos``
    holds the sections in that order and ``state`` their ``(S, 2, C)`` filter
    state. ``acc`` sums, per feature, the LMP and the squared band outputs
    over the open bin. Same return convention as :func:`spike_push`.
    """
    needed = bins_needed(timestamps, timing, clock_i)
    if needed > out_index.shape[0]:
        return -needed
    epoch, bin_s, period = timing[TIMING_EPOCH], timing[TIMING_BIN_S], timing[TIMING_PERIOD]
    n_notch, n_lmp, n_bands, per_band = layout[0], layout[1], layout[2], layout[3]
    clean = _is_clean(chunk)
    r = 0
    for j in range(chunk.shape[0]):
        t = timestamps[j]
        _observe(t, period, clock_i, clock_f)
        _start(t, epoch, bin_s, clock_i)
        open_bin = clock_i[CLOCK_OPEN_BIN]
        sample_bin = _bin_of(t, epoch, bin_s)
        if sample_bin < open_bin:
            clock_i[CLOCK_LATE] += 1
        while open_bin < sample_bin:
            _emit_lfp(open_bin, r, acc, held, clock_i, out_index, out_values)
            r += 1
            open_bin += 1
        _take_row(chunk, j, clean, row, nan_counts)
        if n_notch == 0:
            work[:] = row
        else:
            _biquad(row, work, sos, state, 0)
            for s in range(1, n_notch):
                _biquad(work, work, sos, state, s)
        _cascade_sum(work, tmp, sos, state, n_notch, n_notch + n_lmp, acc[0], False)
        first = n_notch + n_lmp
        for band in range(n_bands):
            _cascade_sum(work, tmp, sos, state, first, first + per_band, acc[1 + band], True)
            first += per_band
        clock_i[CLOCK_ACC_N] += 1
        clock_i[CLOCK_SAMPLES] += 1
        covered = _bin_of(t + period, epoch, bin_s)
        while open_bin < covered:
            _emit_lfp(open_bin, r, acc, held, clock_i, out_index, out_values)
            r += 1
            open_bin += 1
        clock_i[CLOCK_OPEN_BIN] = open_bin
    return r


@njit(cache=True, nogil=True)
def lfp_flush(t, timing, acc, held, clock_i, out_index, out_values):
    """Close every bin that ends at or before ``t``; same return convention as :func:`spike_push`."""
    if not clock_i[CLOCK_STARTED]:
        return 0
    open_bin = clock_i[CLOCK_OPEN_BIN]
    stop = _bin_of(t, timing[TIMING_EPOCH], timing[TIMING_BIN_S])
    if stop - open_bin > out_index.shape[0]:
        return -(stop - open_bin)
    r = 0
    while open_bin < stop:
        _emit_lfp(open_bin, r, acc, held, clock_i, out_index, out_values)
        r += 1
        open_bin += 1
    clock_i[CLOCK_OPEN_BIN] = open_bin
    return r
