"""A fixed-size, time-ordered window of the newest samples, always readable as one contiguous slice."""

from __future__ import annotations

import numpy as np

__all__ = ["RollingBuffer"]


class RollingBuffer:
    """The newest ``capacity`` rows of a stream, oldest first, in preallocated float64 arrays.

    Rows are appended at the end of a buffer twice the window's size; only when
    that end is reached is the newest window moved to the front (one copy per
    ``capacity`` rows). So :attr:`times` and :attr:`values` are plain views, ready
    to plot or interpolate, with no per-read copy and no ``np.roll``.

    Parameters
    ----------
    capacity
        Rows kept.
    n_columns
        Values per row.
    """

    def __init__(self, capacity: int, n_columns: int) -> None:
        self.capacity = capacity
        self._times = np.zeros(2 * capacity, dtype=np.float64)
        self._values = np.zeros((2 * capacity, n_columns), dtype=np.float64)
        self._end = 0
        self.appended = 0

    def append(self, times: np.ndarray, values: np.ndarray) -> None:
        """Add rows (``times`` ``(n,)``, ``values`` ``(n, n_columns)``); only the newest ``capacity`` stay."""
        n = len(times)
        if n > self.capacity:
            times, values = times[-self.capacity :], values[-self.capacity :]
            self.appended += n - self.capacity
            n = self.capacity
        if self._end + n > len(self._times):
            kept = self.capacity - n
            self._times[:kept] = self._times[self._end - kept : self._end]
            self._values[:kept] = self._values[self._end - kept : self._end]
            self._end = kept
        self._times[self._end : self._end + n] = times
        self._values[self._end : self._end + n] = values
        self._end += n
        self.appended += n

    @property
    def _start(self) -> int:
        return max(0, self._end - self.capacity)

    @property
    def times(self) -> np.ndarray:
        """Times of the kept rows, oldest first (a view)."""
        return self._times[self._start : self._end]

    @property
    def values(self) -> np.ndarray:
        """The kept rows, ``(n, n_columns)`` (a view)."""
        return self._values[self._start : self._end]

    def __len__(self) -> int:
        return self._end - self._start

    def clear(self) -> None:
        """Forget every row."""
        self._end = 0
        self.appended = 0
