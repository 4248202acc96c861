"""Arrays for hot paths: memory mapped up front, so that the first write does not fault on a decode thread."""

from __future__ import annotations

import numpy as np

__all__ = ["prefaulted_zeros"]


def prefaulted_zeros(shape: int | tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """Zeros whose memory is really mapped now.

    ``np.zeros`` gets lazily mapped pages from the OS; the first write to each
    page then faults, and on a decode thread that fault is latency. Writing the
    zeros once here pays it up front (and makes the memory show in RSS from the
    start, so a soak sees a flat line).
    """
    array = np.empty(shape, dtype=dtype)
    array.fill(0)
    return array
