"""The latency test's figure: a histogram and latency over time (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rtbci.engine.status import record_latencies

__all__ = ["plot_latency"]


def plot_latency(records: np.ndarray, summary: dict, path: str | Path) -> Path:
    """Write a PNG: end-to-end latency histogram (log counts) beside latency against time.

    Parameters
    ----------
    records
        Per-bin records of the run (with ``t_last_sample``, ``t_push``, ``t_decode_*``, ``end_time``).
    summary
        The run's summary JSON (for the title and percentile lines).
    path
        Output ``.png``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    played = records[records["t_last_sample"] > 0]
    end_to_end, decoder = record_latencies(played)
    end_to_end_ms, decoder_ms = end_to_end * 1e3, decoder * 1e3
    elapsed = played["end_time"] - played["end_time"][0]
    figure, (histogram, timeline) = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
    edges = np.linspace(0.0, max(float(end_to_end_ms.max()), 1.0) * 1.02, 120)
    histogram.hist(end_to_end_ms, bins=edges, color="tab:blue", label="end to end")
    histogram.hist(decoder_ms, bins=edges, color="tab:orange", alpha=0.7, label="decoder only")
    histogram.set_yscale("log")
    for key, style in (("p50_ms", "-"), ("p99_ms", "--"), ("p999_ms", ":")):
        histogram.axvline(
            summary[key], color="k", linestyle=style, linewidth=1, label=f"{key[:-3]} {summary[key]:.2f} ms"
        )
    histogram.set_xlabel("latency (ms)")
    histogram.set_ylabel("bins")
    histogram.legend()
    timeline.plot(elapsed, end_to_end_ms, ",", color="tab:blue", label="end to end")
    timeline.plot(elapsed, decoder_ms, ",", color="tab:orange", label="decoder only")
    timeline.set_xlabel("time (s)")
    timeline.set_ylabel("latency (ms)")
    timeline.legend(markerscale=20)
    figure.suptitle(
        f"{summary['bins']} bins: p50 {summary['p50_ms']:.2f} ms, p99 {summary['p99_ms']:.2f} ms, "
        f"max {summary['max_ms']:.2f} ms; late {summary['late']}, dropped {summary['dropped']}, "
        f"duplicated {summary['duplicated']}"
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
