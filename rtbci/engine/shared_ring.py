"""The per-bin record ring in shared memory, so that another process follows the decoder live.

The engine process's decode thread writes its records straight into a
:class:`SharedRecordRing` (a :class:`~rtbci.engine.ring.RecordRing` whose array
and counter live in a ``multiprocessing.shared_memory`` segment). A dashboard in
another process attaches a :class:`SharedRecordReader` by the segment's name and
copies out what is new whenever it likes. There is no lock: the writer never
waits for a reader, and a reader never waits for the writer.

The writer fills a slot and then bumps the counter; x86-64 keeps stores in order,
so a reader that sees the counter sees the record. A reader that copies while the
writer laps it detects that from the counter read after the copy and keeps only
the rows that could not have been overwritten.
"""

from __future__ import annotations

from multiprocessing import shared_memory

import numpy as np

from rtbci.engine.ring import RecordRing

__all__ = ["SharedRecordReader", "SharedRecordRing"]

# The counter sits in the first cache line; records start after it.
_HEADER_BYTES = 64


def _views(buffer: memoryview, dtype: np.dtype, capacity: int) -> tuple[np.ndarray, np.ndarray]:
    counter = np.ndarray((1,), dtype=np.int64, buffer=buffer, offset=0)
    records = np.ndarray((capacity,), dtype=dtype, buffer=buffer, offset=_HEADER_BYTES)
    return counter, records


class SharedRecordRing(RecordRing):
    """A :class:`RecordRing` in a new shared-memory segment (the writer's side).

    Parameters
    ----------
    dtype
        Record layout (:func:`rtbci.engine.records.record_dtype`).
    capacity
        Records kept.

    Attributes
    ----------
    name
        The segment's name; pass it to :class:`SharedRecordReader`.
    """

    def __init__(self, dtype: np.dtype, capacity: int) -> None:
        self.dtype = np.dtype(dtype)
        self.capacity = capacity
        self._segment = shared_memory.SharedMemory(
            create=True, size=_HEADER_BYTES + capacity * self.dtype.itemsize
        )
        self.name = self._segment.name
        self._counter, self.records = _views(self._segment.buf, self.dtype, capacity)
        self._counter[0] = 0

    @property
    def written(self) -> int:
        """Records committed so far (kept in the segment, so readers see it)."""
        return int(self._counter[0])

    @written.setter
    def written(self, value: int) -> None:
        self._counter[0] = value

    def close(self, unlink: bool = False) -> None:
        """Detach this process; the reader's side unlinks the segment unless ``unlink`` is set here."""
        self._counter = self.records = None
        self._segment.close()
        if unlink:
            self._segment.unlink()


class SharedRecordReader:
    """Follows a :class:`SharedRecordRing` from another process (the reader's side).

    Parameters
    ----------
    name
        :attr:`SharedRecordRing.name`.
    dtype, capacity
        The ring's layout.

    Attributes
    ----------
    cursor
        Records this reader has taken so far.
    missed
        Records overwritten before this reader got to them.
    """

    def __init__(self, name: str, dtype: np.dtype, capacity: int) -> None:
        self.dtype = np.dtype(dtype)
        self.capacity = capacity
        self._segment = shared_memory.SharedMemory(name=name)
        self._counter, self._records = _views(self._segment.buf, self.dtype, capacity)
        self.cursor = 0
        self.missed = 0

    @property
    def written(self) -> int:
        """Records the writer has committed."""
        return int(self._counter[0])

    def read_new(self, limit: int | None = None) -> np.ndarray:
        """Copies of the records committed since the last call, oldest first.

        Parameters
        ----------
        limit
            Take at most the newest ``limit`` of them (the rest count as missed).
        """
        written = self.written
        start = max(self.cursor, written - self.capacity + 1)
        if limit is not None:
            start = max(start, written - limit)
        if start >= written:
            return self._records[:0].copy()
        rows = self._records[np.arange(start, written) % self.capacity]
        # The writer may have lapped the copy: rows at or below (counter now - capacity) may be torn.
        first_safe = self.written - self.capacity + 1
        if first_safe > start:
            rows = rows[first_safe - start :]
            start = first_safe
        self.missed += start - self.cursor
        self.cursor = written
        return rows

    def close(self, unlink: bool = True) -> None:
        """Detach, and (by default) remove the segment: the reader's process owns its lifetime."""
        self._counter = self._records = None
        self._segment.close()
        if unlink:
            try:
                self._segment.unlink()
            except FileNotFoundError:  # already removed (e.g. by the resource tracker)
                pass
