"""The bin clock: lines up the bins of every input by bin index and decides when a bin is decoded.

Bins are numbered on the LSL clock (bin ``i`` covers ``[epoch + i·w, epoch + (i+1)·w)``),
so inputs line up by index, and after a reconnection the bins fall back into
place by themselves.

Bin ``n`` is decoded

- as soon as every input has delivered bin ``n`` (the normal case);
- or, once the inputs' clock passes the bin's deadline, with whatever inputs
  are there; a missing input's values are held from its last bin or zeroed, per
  the profile's policy, and the bin is marked *late* for that input.

An input that sends chunks of ``D`` seconds delivers a bin up to ``D`` after
the bin ends, however fast everything else is. So the deadline is
``end(n) + D_k + deadline`` for the slowest missing input ``k``, with ``D_k``
that input's chunk allowance (the longest chunk it sent recently): *late*
means an input had not delivered by when its own chunking says it should
have, never that it chunks coarsely.

Nothing is dropped or repeated silently: an input's bin that arrives after its
bin was decoded is counted as stale; bins that no input ever delivered (the
timestamps jumped forward) are counted as a gap; a consistent jump back is
counted as a clock reset.

A clock reset is told from a backlog by each input's own bin numbers: after a
reset every input's bins go back against the bins it sent before. A source
that stalled and then sends what it held (its bins carry on from its last one)
is only behind the decoder's clock, which moved on while it was silent: those
bins are stale, dropped and counted, so that no bin time is decoded twice and
the output's stamps never go back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rtbci.memory import prefaulted_zeros

__all__ = ["AlignedBin", "BinAligner", "InputBins"]

# An input whose newest bin lies this many bins behind the bin clock has had its clock reset.
_RESET_BINS = 50
# A missing bin overdue by more than this is not late but skipped by a jump of the inputs' clock.
_MAX_CATCH_UP_S = 1.0


class InputBins:
    """The bins one input has delivered and that are not decoded yet, in a preallocated ring.

    Parameters
    ----------
    shape
        Shape of one bin's values, e.g. ``(C,)`` or ``(C, F)``.
    capacity
        Bins kept; when the decoder falls this far behind, the oldest are
        dropped and counted in ``overflow``.
    """

    def __init__(self, shape: tuple[int, ...], capacity: int) -> None:
        self.capacity = capacity
        self.values = prefaulted_zeros((capacity, *shape), np.float32)
        self.index = prefaulted_zeros(capacity, np.int64)
        self.t_last = prefaulted_zeros(capacity, np.float64)
        self.t_read = prefaulted_zeros(capacity, np.float64)
        self.held = np.zeros(shape, dtype=np.float32)
        self.zeros = np.zeros(shape, dtype=np.float32)
        self.head = 0  # total bins consumed
        self.tail = 0  # total bins stored
        self.stale = 0
        self.overflow = 0
        self.received = 0
        # Highest bin number this input has sent since its clock last went back, and whether it has
        # gone back far (a reset of its clock) since the aligner last re-anchored.
        self.highest: int | None = None
        self.went_back = False
        # Seconds after a bin's end that this input may take to deliver it (its chunk span).
        self.allowance_s = 0.0

    def add(self, index: int, values: np.ndarray, t_last: float, t_read: float) -> None:
        """Store one bin."""
        if self.highest is not None and index < self.highest - _RESET_BINS:
            self.went_back = True
            self.highest = index
        elif self.highest is None or index > self.highest:
            self.highest = index
        if self.tail - self.head == self.capacity:
            self.head += 1
            self.overflow += 1
        slot = self.tail % self.capacity
        self.values[slot] = values
        self.index[slot] = index
        self.t_last[slot] = t_last
        self.t_read[slot] = t_read
        self.tail += 1
        self.received += 1

    def first_index(self) -> int | None:
        """Index of the oldest stored bin, or None."""
        return int(self.index[self.head % self.capacity]) if self.tail > self.head else None

    def newest_index(self) -> int | None:
        """Index of the newest stored bin, or None."""
        return int(self.index[(self.tail - 1) % self.capacity]) if self.tail > self.head else None

    def drop_before(self, index: int) -> None:
        """Discard stored bins before ``index``: they came after their bin was decoded.

        Not when the input's clock went back (its bins went back against its earlier
        ones) and even its newest stored bin is far behind ``index``: the aligner
        re-anchors on those bins once every input has been reset.
        """
        newest = self.newest_index()
        if newest is None or (self.went_back and newest < index - _RESET_BINS):
            return
        while self.tail > self.head and self.index[self.head % self.capacity] < index:
            self.head += 1
            self.stale += 1

    def take(self) -> int:
        """Consume the oldest bin; returns its ring slot, valid until the ring wraps."""
        slot = self.head % self.capacity
        self.held[...] = self.values[slot]
        self.head += 1
        return slot

    def clear(self) -> None:
        """Forget stored bins (not counted: used when the whole clock is re-anchored)."""
        self.head = self.tail


@dataclass
class AlignedBin:
    """One bin ready to decode.

    Attributes
    ----------
    index, end_time
        Bin number and its end on the LSL clock.
    values
        Per input, that input's values for the bin (a view; valid until the next bin).
    late_mask
        Bit ``k`` set when input ``k`` was missing at the deadline and stood in for.
    t_last_sample, t_read
        Newest timestamp of the bin's input samples, and when the chunk that completed it was read.
    gap_bins
        Bins skipped just before this one because no input delivered them.
    clock_reset
        The bin clock was re-anchored backwards just before this bin.
    """

    index: int
    end_time: float
    values: list[np.ndarray]
    late_mask: int
    t_last_sample: float
    t_read: float
    gap_bins: int
    clock_reset: bool


class BinAligner:
    """Decides which bin is decoded next and when; see the module docstring.

    Parameters
    ----------
    shapes
        Per input, the shape of one bin's values.
    bin_s, epoch
        Bin width and bin-0 start on the LSL clock.
    deadline_s
        How long after a bin's end to wait for a late input.
    policy
        ``"hold"`` or ``"zeros"``: what stands in for a late input.
    capacity
        Bins buffered per input.
    """

    def __init__(
        self,
        shapes: list[tuple[int, ...]],
        bin_s: float,
        epoch: float,
        deadline_s: float,
        policy: str,
        capacity: int = 256,
    ) -> None:
        if policy not in ("hold", "zeros"):
            raise ValueError(f"late policy must be 'hold' or 'zeros', got {policy!r}")
        self.inputs = [InputBins(shape, capacity) for shape in shapes]
        self.bin_s = bin_s
        self.epoch = epoch
        self.deadline_s = deadline_s
        self.hold = policy == "hold"
        self.next_index: int | None = None
        self.late_bins = 0
        self.late_by_input = [0] * len(shapes)
        self.gap_bins = 0
        self.clock_resets = 0
        self._values: list[np.ndarray] = [inputs.zeros for inputs in self.inputs]
        self._pending_gap = 0
        self._pending_reset = False

    def end_time(self, index: int) -> float:
        """End of bin ``index`` on the LSL clock."""
        return self.epoch + (index + 1) * self.bin_s

    def next_deadline(self) -> float | None:
        """LSL time at which the next bin is decoded whatever is missing; None before the first bin."""
        if self.next_index is None:
            return None
        return self.deadline(self.next_index)

    def deadline(self, index: int) -> float:
        """When bin ``index`` is decoded whatever is missing: its end, plus the chunk allowance of
        the slowest input that has not delivered it, plus the late deadline."""
        allowance = 0.0
        for inputs in self.inputs:
            newest = inputs.newest_index()
            if (newest is None or newest < index) and inputs.allowance_s > allowance:
                allowance = inputs.allowance_s
        return self.end_time(index) + allowance + self.deadline_s

    def waiting_for(self) -> int | None:
        """An input that has not delivered the next bin yet (to block on), or None."""
        if self.next_index is None:
            for k, inputs in enumerate(self.inputs):
                if inputs.first_index() is None:
                    return k
            return None
        for k, inputs in enumerate(self.inputs):
            newest = inputs.newest_index()
            if newest is None or newest < self.next_index:
                return k
        return None

    def pop(self, now: float) -> AlignedBin | None:
        """The next bin to decode at LSL time ``now``, or None if it is neither complete nor due."""
        if self.next_index is None and not self._start():
            return None
        self._follow_jumps()
        n = self.next_index
        for inputs in self.inputs:
            inputs.drop_before(n)
        firsts = [inputs.first_index() for inputs in self.inputs]
        complete = all(first == n for first in firsts)
        if not complete:
            overdue_s = now - self.deadline(n)
            if overdue_s < 0:
                return None
            if overdue_s > _MAX_CATCH_UP_S and n not in firsts:
                # Deadlines are on the inputs' clock, which advances with real time while they are
                # silent; a bin this far overdue that no input delivered means that clock jumped.
                # Resume at the bin due now. (A bin some input delivered is data: it is decoded,
                # late, however far the decoder fell behind.)
                skipped = int(overdue_s // self.bin_s)
                self.gap_bins += skipped
                self._pending_gap += skipped
                n = self.next_index = n + skipped
                for inputs in self.inputs:
                    inputs.drop_before(n)
                firsts = [inputs.first_index() for inputs in self.inputs]
        late_mask = 0
        t_last = 0.0
        t_read = 0.0
        for k, (inputs, first) in enumerate(zip(self.inputs, firsts, strict=True)):
            if first == n:
                slot = inputs.take()
                self._values[k] = inputs.values[slot]
                t_last = max(t_last, inputs.t_last[slot])
                t_read = max(t_read, inputs.t_read[slot])
            else:
                late_mask |= 1 << k
                self.late_by_input[k] += 1
                self._values[k] = inputs.held if self.hold else inputs.zeros
        if late_mask:
            self.late_bins += 1
        aligned = AlignedBin(
            index=n,
            end_time=self.end_time(n),
            values=self._values,
            late_mask=late_mask,
            t_last_sample=t_last,
            t_read=t_read,
            gap_bins=self._pending_gap,
            clock_reset=self._pending_reset,
        )
        self._pending_gap = 0
        self._pending_reset = False
        self.next_index = n + 1
        return aligned

    def _start(self) -> bool:
        """Start the clock at the first bin that every input has delivered."""
        firsts = [inputs.first_index() for inputs in self.inputs]
        if any(first is None for first in firsts):
            return False
        self.next_index = max(firsts)
        return True

    def _follow_jumps(self) -> None:
        """Re-anchor the clock when every input jumped forward past it, or back far behind it."""
        n = self.next_index
        firsts = [inputs.first_index() for inputs in self.inputs]
        if any(first is None for first in firsts):
            return
        if min(firsts) > n:
            # No input has bins n .. min-1: the streams' timestamps jumped forward together.
            skipped = min(firsts) - n
            self.gap_bins += skipped
            self._pending_gap += skipped
            self.next_index = min(firsts)
            return
        newest = [inputs.newest_index() for inputs in self.inputs]
        if max(newest) < n - _RESET_BINS and all(inputs.went_back for inputs in self.inputs):
            # Every input went back and now delivers bins far in the clock's past: their clock was reset.
            self.clock_resets += 1
            self._pending_reset = True
            self.next_index = max(firsts)
            for inputs in self.inputs:
                inputs.went_back = False
