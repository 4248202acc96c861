"""Numba kernels of the streaming featurizers: the per-sample hot path.

Every kernel takes the samples of a chunk in arrival order, in segments that
fall in one bin, and does the same arithmetic per sample and channel in the
same order whatever the chunking; that is what makes the output of any
chunking equal to a one-shot pass (ARCHITECTURE.md rule 1).

Inner loops run over channels, which are contiguous in a ``(n_samples,
n_channels)`` chunk and in every state array, so LLVM vectorises them. Nothing
allocates, and array views are made once per filter section and segment, never
per sample (a view costs an atomic reference count).

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
CLOCK_OUT_OF_ORDER = 9  # backwards samples since the newest timestamp
N_CLOCK_INT = 10
# Index into the float64 clock array.
CLOCK_LAST_T = 0  # newest timestamp seen
CLOCK_GAP_SECONDS = 1  # time missing in gaps, summed
CLOCK_LAST_GAP_FROM = 2
CLOCK_LAST_GAP_TO = 3
N_CLOCK_FLOAT = 4
# Returned by the push kernels, with nothing changed, when a timestamp is NaN
# or Inf; the caller repairs the timestamps and pushes again.
NON_FINITE_TIMESTAMPS = np.iinfo(np.int64).min
# Index into the int64 layout array, and its modes.
LAYOUT_MODE = 0
LAYOUT_NOTCH = 1
LAYOUT_LMP = 2
LAYOUT_BANDS = 3
LAYOUT_PER_BAND = 4
N_LAYOUT = 5
MODE_COUNTS = 0  # spike counts: sum per bin
MODE_LFP = 1  # LFP: notch, LMP and band power per bin
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
# Filter arithmetic may fuse multiply-adds (FMA) but not reorder: results stay
# the same for any chunking, and within float rounding of scipy's sosfilt.
FILTER_MATH = {"contract"}
# Floor added to band power before the log, in squared signal units (uV^2):
# keeps a flat channel finite.
POWER_FLOOR = 1e-6


@njit(cache=True)
def _bin_of(t, epoch, bin_s):
    return np.int64(np.floor((t - epoch) / bin_s + EDGE_TOLERANCE))


@njit(cache=True)
def bins_needed(timestamps, timing, clock_i):
    """Upper bound on the bins that a chunk with these timestamps can close.

    Returns :data:`NON_FINITE_TIMESTAMPS` if a timestamp is NaN or Inf.
    """
    n = timestamps.shape[0]
    if n == 0:
        return 0
    for j in range(n):
        if not np.isfinite(timestamps[j]):
            return NON_FINITE_TIMESTAMPS
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
            clock_i[CLOCK_OUT_OF_ORDER] += 1
            return
        # Samples stamped out of order since the newest one still fill slots
        # in time: the next in-order step may be that much longer.
        expected = (1 + clock_i[CLOCK_OUT_OF_ORDER]) * period
        step = t - last
        if step > expected + (GAP_FACTOR - 1.0) * period:
            clock_i[CLOCK_GAPS] += 1
            clock_f[CLOCK_GAP_SECONDS] += step - expected
            clock_f[CLOCK_LAST_GAP_FROM] = last
            clock_f[CLOCK_LAST_GAP_TO] = t
        clock_i[CLOCK_OUT_OF_ORDER] = 0
    clock_f[CLOCK_LAST_T] = t


@njit(cache=True, fastmath={"reassoc"})
def _is_clean(chunk):
    """True if every sample of the chunk is finite.

    ``x * 0`` is NaN exactly for NaN and Inf, so one sum finds any of them;
    "reassoc" lets LLVM split the sum into vector lanes (a serial float sum
    costs more than the filters). It must not get "nnan"/"ninf", which would
    let it assume the answer.
    """
    probe = 0.0
    for j in range(chunk.shape[0]):
        for ch in range(chunk.shape[1]):
            probe += chunk[j, ch] * 0.0
    return probe == 0.0


@njit(cache=True)
def _start_sample(t, timing, clock_i, clock_f):
    """Count sample ``t``; return ``(open_bin, sample_bin)``. The caller closes bins up to ``sample_bin``."""
    epoch, bin_s = timing[TIMING_EPOCH], timing[TIMING_BIN_S]
    _observe(t, timing[TIMING_PERIOD], clock_i, clock_f)
    sample_bin = _bin_of(t, epoch, bin_s)
    if not clock_i[CLOCK_STARTED]:
        clock_i[CLOCK_OPEN_BIN] = sample_bin
        clock_i[CLOCK_STARTED] = 1
    open_bin = clock_i[CLOCK_OPEN_BIN]
    if sample_bin < open_bin:
        clock_i[CLOCK_LATE] += 1
    return open_bin, sample_bin


@njit(cache=True)
def _extend_segment(timestamps, j, open_bin, max_len, timing, clock_i, clock_f):
    """Samples ``j..stop-1`` all go into ``open_bin`` with no bin closing between them; returns ``stop``.

    Sample ``j`` is already counted; this counts the rest. The segment ends
    after a sample that covers the open bin's end, before a sample of a later
    bin, or at ``max_len`` samples.
    """
    epoch, bin_s, period = timing[TIMING_EPOCH], timing[TIMING_BIN_S], timing[TIMING_PERIOD]
    n = timestamps.shape[0]
    stop = j + 1
    closes = _bin_of(timestamps[j] + period, epoch, bin_s) > open_bin
    while not closes and stop < n and stop - j < max_len:
        t = timestamps[stop]
        sample_bin = _bin_of(t, epoch, bin_s)
        if sample_bin > open_bin:
            break
        _observe(t, period, clock_i, clock_f)
        if sample_bin < open_bin:
            clock_i[CLOCK_LATE] += 1
        closes = _bin_of(t + period, epoch, bin_s) > open_bin
        stop += 1
    return stop


@njit(cache=True)
def _emit(mode, bin_index, r, acc, held, clock_i, out_index, out_values):
    """Write the open bin to row ``r`` of the output and clear its sums.

    Counts are written as summed. LFP features are means over the bin's
    samples: feature 0 (LMP) as is, the band powers as logs; a bin with no
    sample repeats the last features.
    """
    n = clock_i[CLOCK_ACC_N]
    if n == 0:
        clock_i[CLOCK_EMPTY_BINS] += 1
    if mode == MODE_COUNTS:
        for ch in range(acc.shape[1]):
            out_values[r, ch, 0] = acc[0, ch]
            acc[0, ch] = 0.0
    else:
        if n > 0:
            inv = 1.0 / n
            for ch in range(acc.shape[1]):
                held[0, ch] = acc[0, ch] * inv
                acc[0, ch] = 0.0
            for f in range(1, acc.shape[0]):
                for ch in range(acc.shape[1]):
                    held[f, ch] = np.log(acc[f, ch] * inv + POWER_FLOOR)
                    acc[f, ch] = 0.0
        for ch in range(held.shape[1]):
            for f in range(held.shape[0]):
                out_values[r, ch, f] = held[f, ch]
    out_index[r] = bin_index
    clock_i[CLOCK_ACC_N] = 0
    clock_i[CLOCK_BINS] += 1


@njit(cache=True)
def _take_rows(chunk, start, stop, clean, last_good, block, nan_counts):
    """Copy samples ``start..stop-1`` into ``block``; NaN/Inf takes the channel's last good value."""
    m = stop - start
    if clean:
        for r in range(m):
            for ch in range(block.shape[1]):
                block[r, ch] = chunk[start + r, ch]
    else:
        for r in range(m):
            for ch in range(block.shape[1]):
                value = chunk[start + r, ch]
                if np.isfinite(value):
                    last_good[ch] = value
                else:
                    nan_counts[ch] += 1
                block[r, ch] = last_good[ch]
    for ch in range(block.shape[1]):
        last_good[ch] = block[m - 1, ch]


@njit(cache=True, inline="always")
def _biquad(x, b0, b1, b2, a1, a2, z1, z2, ch):
    """One sample of a second-order section (transposed direct form II) on channel ``ch``."""
    y = b0 * x + z1[ch]
    z1[ch] = b1 * x - a1 * y + z2[ch]
    z2[ch] = b2 * x - a2 * y
    return y


@njit(cache=True, fastmath=FILTER_MATH)
def _section_into(src, dst, m, sos, state, s):
    """Section ``s`` from rows ``0..m-1`` of ``src`` into ``dst``.

    ``src`` and ``dst`` must be different arrays: LLVM checks for overlap at
    run time, and the same array passed twice falls back to scalar code.
    Channels are the inner loop, so it vectorises.
    """
    b0, b1, b2, a1, a2 = sos[s, 0], sos[s, 1], sos[s, 2], sos[s, 4], sos[s, 5]
    z1, z2 = state[s, 0], state[s, 1]
    for r in range(m):
        for ch in range(src.shape[1]):
            dst[r, ch] = _biquad(src[r, ch], b0, b1, b2, a1, a2, z1, z2, ch)


@njit(cache=True, fastmath=FILTER_MATH)
def _sections_in_place(block, m, sos, state, first, stop):
    """Sections ``first..stop-1`` in place on rows ``0..m-1`` of ``block``."""
    for s in range(first, stop):
        b0, b1, b2, a1, a2 = sos[s, 0], sos[s, 1], sos[s, 2], sos[s, 4], sos[s, 5]
        z1, z2 = state[s, 0], state[s, 1]
        for r in range(m):
            for ch in range(block.shape[1]):
                block[r, ch] = _biquad(block[r, ch], b0, b1, b2, a1, a2, z1, z2, ch)


@njit(cache=True, fastmath=FILTER_MATH)
def _section_sum(src, m, sos, state, s, total, square):
    """Section ``s`` on rows ``0..m-1`` of ``src``; its output (or its square) is summed into ``total``."""
    b0, b1, b2, a1, a2 = sos[s, 0], sos[s, 1], sos[s, 2], sos[s, 4], sos[s, 5]
    z1, z2 = state[s, 0], state[s, 1]
    if square:
        for r in range(m):
            for ch in range(src.shape[1]):
                y = _biquad(src[r, ch], b0, b1, b2, a1, a2, z1, z2, ch)
                total[ch] += y * y
    else:
        for r in range(m):
            for ch in range(src.shape[1]):
                total[ch] += _biquad(src[r, ch], b0, b1, b2, a1, a2, z1, z2, ch)


@njit(cache=True)
def _branch(notched, scratch, m, sos, state, first, stop, total, square):
    """Filter notched rows through sections ``first..stop-1``; sum the output (or its square) in ``total``."""
    if stop - first == 1:
        _section_sum(notched, m, sos, state, first, total, square)
        return
    _section_into(notched, scratch, m, sos, state, first)
    _sections_in_place(scratch, m, sos, state, first + 1, stop - 1)
    _section_sum(scratch, m, sos, state, stop - 1, total, square)


@njit(cache=True)
def _add_counts(block, m, total):
    for r in range(m):
        for ch in range(block.shape[1]):
            total[ch] += block[r, ch]


@njit(cache=True)
def _add_lfp(m, layout, sos, state, notched, scratch, acc):
    """Notch the rows in ``scratch``, then add the LMP and each band's power to ``acc``."""
    n_notch, n_lmp, n_bands, per_band = (
        layout[LAYOUT_NOTCH],
        layout[LAYOUT_LMP],
        layout[LAYOUT_BANDS],
        layout[LAYOUT_PER_BAND],
    )
    if n_notch == 0:
        notched[:m] = scratch[:m]
    else:
        _section_into(scratch, notched, m, sos, state, 0)
        _sections_in_place(notched, m, sos, state, 1, n_notch)
    _branch(notched, scratch, m, sos, state, n_notch, n_notch + n_lmp, acc[0], False)
    first = n_notch + n_lmp
    for band in range(n_bands):
        _branch(notched, scratch, m, sos, state, first, first + per_band, acc[1 + band], True)
        first += per_band


@njit(cache=True, nogil=True)
def push(
    chunk,
    timestamps,
    timing,
    layout,
    sos,
    state,
    last_good,
    notched,
    scratch,
    acc,
    held,
    nan_counts,
    clock_i,
    clock_f,
    out_index,
    out_values,
):
    """Add a chunk to the open bins; write the bins it closes to ``out_index``/``out_values``.

    Parameters
    ----------
    chunk, timestamps
        ``(n, C)`` samples, any numeric dtype, and their ``(n,)`` float64 times.
    timing
        ``[epoch, bin_s, 1/rate]``.
    layout
        ``[mode, n_notch, n_lmp, n_bands, sections_per_band]`` (``LAYOUT_*``).
        ``MODE_COUNTS`` sums samples; ``MODE_LFP`` filters them.
    sos, state
        ``(S, 6)`` sections (notches, LMP low-pass, each band's band-pass) and
        their ``(S, 2, C)`` filter state; empty for counts.
    last_good
        ``(C,)`` the last finite sample of each channel.
    notched, scratch
        ``(B, C)`` work blocks; samples go through in segments of at most B
        that fall in one bin.
    acc, held
        ``(F, C)`` sums over the open bin (counts, or LMP and squared band
        outputs), and the last LFP features written.
    nan_counts, clock_i, clock_f
        Counters, updated in place.
    out_index, out_values
        ``(K,)`` and ``(K, C, F)`` room for closed bins.

    Returns
    -------
    int
        The number of bins written; or, with nothing changed, minus the number
        needed if ``out_index`` is too short, or :data:`NON_FINITE_TIMESTAMPS`.
    """
    needed = bins_needed(timestamps, timing, clock_i)
    if needed == NON_FINITE_TIMESTAMPS:
        return needed
    if needed > out_index.shape[0]:
        return -needed
    mode = layout[LAYOUT_MODE]
    epoch, bin_s, period = timing[TIMING_EPOCH], timing[TIMING_BIN_S], timing[TIMING_PERIOD]
    n = chunk.shape[0]
    clean = _is_clean(chunk)
    r = 0
    j = 0
    while j < n:
        open_bin, sample_bin = _start_sample(timestamps[j], timing, clock_i, clock_f)
        while open_bin < sample_bin:
            _emit(mode, open_bin, r, acc, held, clock_i, out_index, out_values)
            r += 1
            open_bin += 1
        stop = _extend_segment(timestamps, j, open_bin, scratch.shape[0], timing, clock_i, clock_f)
        m = stop - j
        _take_rows(chunk, j, stop, clean, last_good, scratch, nan_counts)
        if mode == MODE_COUNTS:
            _add_counts(scratch, m, acc[0])
        else:
            _add_lfp(m, layout, sos, state, notched, scratch, acc)
        clock_i[CLOCK_ACC_N] += m
        clock_i[CLOCK_SAMPLES] += m
        covered = _bin_of(timestamps[stop - 1] + period, epoch, bin_s)
        while open_bin < covered:
            _emit(mode, open_bin, r, acc, held, clock_i, out_index, out_values)
            r += 1
            open_bin += 1
        clock_i[CLOCK_OPEN_BIN] = open_bin
        j = stop
    return r


@njit(cache=True, nogil=True)
def flush(t, timing, layout, acc, held, clock_i, out_index, out_values):
    """Close every bin that ends at or before ``t``; same return convention as :func:`push`."""
    if not clock_i[CLOCK_STARTED]:
        return 0
    open_bin = clock_i[CLOCK_OPEN_BIN]
    stop = _bin_of(t, timing[TIMING_EPOCH], timing[TIMING_BIN_S])
    if stop - open_bin > out_index.shape[0]:
        return -(stop - open_bin)
    r = 0
    while open_bin < stop:
        _emit(layout[LAYOUT_MODE], open_bin, r, acc, held, clock_i, out_index, out_values)
        r += 1
        open_bin += 1
    clock_i[CLOCK_OPEN_BIN] = open_bin
    return r
