"""Latency summaries in the form every benchmark and report uses."""

from __future__ import annotations

import numpy as np

__all__ = ["latency_summary_ms"]


def latency_summary_ms(seconds: np.ndarray) -> dict[str, float]:
    """Percentiles of a latency sample, in milliseconds.

    Parameters
    ----------
    seconds
        Latencies in seconds.

    Returns
    -------
    dict
        ``n``, ``p50_ms``, ``p99_ms``, ``p999_ms``, ``max_ms`` and ``mean_ms``.
        Never only a mean: tails are what closed-loop control feels.

    Raises
    ------
    ValueError
        If the sample is empty.
    """
    values = np.asarray(seconds, dtype=np.float64) * 1e3
    if values.size == 0:
        raise ValueError("no latency samples to summarise")
    p50, p99, p999 = np.percentile(values, [50.0, 99.0, 99.9])
    return {
        "n": int(values.size),
        "p50_ms": float(p50),
        "p99_ms": float(p99),
        "p999_ms": float(p999),
        "max_ms": float(values.max()),
        "mean_ms": float(values.mean()),
    }
