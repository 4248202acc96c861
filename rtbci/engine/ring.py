"""Preallocated single-producer rings that hand data from the decode thread to slower readers.

The decode thread writes; readers (the recorder, a dashboard feed) poll. The
writer never waits and never allocates: a chunk is copied into place with at
most two slice assignments, where MNE-LSL's buffer shifts the whole array
(``np.roll``) on every pull. A reader that falls more than a ring behind loses
the oldest entries, and that loss is counted, never silent.

Under CPython's GIL the writer's counter update happens after its copies, so a
reader that sees the new counter sees the data.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from rtbci.memory import prefaulted_zeros

__all__ = ["ChunkRing", "RecordRing"]


class ChunkRing:
    """Raw sample chunks, kept with their original chunk boundaries.

    Parameters
    ----------
    capacity
        Samples the ring holds.
    n_channels
        Channels per sample.
    dtype
        Sample type.
    max_chunks
        Chunk boundaries the ring holds.

    Attributes
    ----------
    overflow_chunks, overflow_samples
        Chunks the writer could not store because the reader was a full ring behind.
    """

    def __init__(self, capacity: int, n_channels: int, dtype: np.dtype, max_chunks: int = 4096) -> None:
        self.capacity = capacity
        self.max_chunks = max_chunks
        self.data = prefaulted_zeros((capacity, n_channels), dtype)
        self.timestamps = prefaulted_zeros(capacity, np.float64)
        self.sizes = prefaulted_zeros(max_chunks, np.int64)
        self.written_samples = 0
        self.written_chunks = 0
        self.read_samples = 0
        self.read_chunks = 0
        self.overflow_chunks = 0
        self.overflow_samples = 0

    def write(self, data: np.ndarray, timestamps: np.ndarray) -> bool:
        """Store one chunk; ``False`` (and counted) when the reader is too far behind."""
        n = timestamps.shape[0]
        if n == 0:
            return True
        full_samples = self.written_samples - self.read_samples + n > self.capacity
        if full_samples or self.written_chunks - self.read_chunks >= self.max_chunks:
            self.overflow_chunks += 1
            self.overflow_samples += n
            return False
        position = self.written_samples % self.capacity
        first = min(n, self.capacity - position)
        self.data[position : position + first] = data[:first]
        self.timestamps[position : position + first] = timestamps[:first]
        if first < n:
            self.data[: n - first] = data[first:]
            self.timestamps[: n - first] = timestamps[first:]
        self.sizes[self.written_chunks % self.max_chunks] = n
        self.written_chunks += 1
        self.written_samples += n
        return True

    def read(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (and release) every chunk written before this call, oldest first, as copies.

        Chunks the writer adds meanwhile wait for the next call, so a reader slower than the
        writer still gets back to its other work.
        """
        end = self.written_chunks
        while self.read_chunks < end:
            n = int(self.sizes[self.read_chunks % self.max_chunks])
            position = self.read_samples % self.capacity
            if position + n <= self.capacity:
                rows = slice(position, position + n)
                chunk = (self.data[rows].copy(), self.timestamps[rows].copy())
            else:
                wrapped = np.arange(position, position + n) % self.capacity
                chunk = (self.data[wrapped], self.timestamps[wrapped])
            self.read_chunks += 1
            self.read_samples += n
            yield chunk


class RecordRing:
    """Fixed-size records (a numpy structured dtype) that any number of readers follow.

    Each reader keeps its own cursor, the count of records it has seen, so
    readers do not disturb each other or the writer.

    Parameters
    ----------
    dtype
        Record layout.
    capacity
        Records kept.
    """

    def __init__(self, dtype: np.dtype, capacity: int) -> None:
        self.records = prefaulted_zeros(capacity, dtype)
        self.capacity = capacity
        self.written = 0

    def slot(self) -> np.void:
        """The record to fill next; call :meth:`commit` when it is complete."""
        return self.records[self.written % self.capacity]

    def commit(self) -> None:
        """Publish the record filled through :meth:`slot`."""
        self.written += 1

    def read_since(self, cursor: int) -> tuple[np.ndarray, int, int]:
        """Copies of the records written since ``cursor``.

        Parameters
        ----------
        cursor
            The count of records this reader had seen (0 at first).

        Returns
        -------
        records, new_cursor, missed
            ``missed`` counts records that were overwritten before this reader got to them.
        """
        written = self.written
        missed = max(0, written - cursor - self.capacity)
        start = cursor + missed
        if start >= written:
            return self.records[:0].copy(), written, missed
        rows = np.arange(start, written) % self.capacity
        return self.records[rows], written, missed

    def last(self, n: int) -> np.ndarray:
        """Copies of the newest ``n`` records (fewer if fewer were written)."""
        n = min(n, self.written, self.capacity)
        rows = np.arange(self.written - n, self.written) % self.capacity
        return self.records[rows]
