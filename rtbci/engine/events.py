"""Engine events (outages, timestamp warnings, safety stops): written by one thread, read by others."""

from __future__ import annotations

from collections import deque

__all__ = ["EventLog"]


class EventLog:
    """The newest engine events, as (LSL time, text), with a running count for readers' cursors.

    One thread writes (the decode thread, or the thread that owns the engine);
    any thread reads. Appending to a deque and copying it are single C calls
    under the GIL, so a reader never sees a half-written event.

    Parameters
    ----------
    capacity
        Events kept; a reader that falls further behind is told how many it missed.
    """

    def __init__(self, capacity: int = 1000) -> None:
        self._events: deque[tuple[float, str]] = deque(maxlen=capacity)
        self.logged = 0

    def add(self, t: float, text: str) -> None:
        """Log an event at LSL time ``t``."""
        self._events.append((float(t), text))
        self.logged += 1

    def since(self, cursor: int) -> tuple[list[tuple[float, str]], int, int]:
        """Events logged after ``cursor``.

        Returns
        -------
        events, cursor, missed
            The new events in order, the cursor for the next call, and how many
            were logged but already dropped from the log.
        """
        kept = self._events.copy()
        logged = self.logged
        new = logged - cursor
        if new <= 0:
            return [], logged, 0
        missed = max(0, new - len(kept))
        return list(kept)[len(kept) - (new - missed) :], logged, missed

    def last(self, n: int) -> list[tuple[float, str]]:
        """The newest ``n`` events."""
        return list(self._events.copy())[-n:]
