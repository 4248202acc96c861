"""The latency test's figure: a histogram and latency over time (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rtbci.engine.status import record_latencies

__all__ = ["plot_latency"]


def plot_latency(records: np.ndarray, summary: dict, path: str | Path) -> Path:
    """Write a PNG: processing and source latency histograms (log counts) beside latency against time.

    Parameters
    ----------
    records
        Per-bin records of the run (with ``t_last_sample``, ``t_read``, ``t_push``, ``t_decode_*``,
        ``end_time``).
    summary
        The run's summary JSON (:func:`rtbci.latency.summary.summarize`), for the title and percentile lines.
    path
        Output ``.png``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    played = records[records["t_last_sample"] > 0]
    latencies = record_latencies(played)
    series = {
        "processing (read->push)": (latencies.processing * 1e3, "tab:blue"),
        "source (stamp->push)": (latencies.source * 1e3, "tab:green"),
        "decoder step": (latencies.decoder * 1e3, "tab:orange"),
    }
    elapsed = played["end_time"] - played["end_time"][0]
    figure, (histogram, timeline) = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
    everything = np.concatenate([values for values, _ in series.values()])
    edges = np.linspace(min(float(everything.min()), 0.0), max(float(everything.max()), 1.0) * 1.02, 150)
    for label, (values, color) in series.items():
        histogram.hist(values, bins=edges, color=color, alpha=0.6, label=label)
        timeline.plot(elapsed, values, ",", color=color, label=label)
    histogram.set_yscale("log")
    processing = summary["processing"]
    for key, style in (("p50_ms", "-"), ("p99_ms", "--"), ("p999_ms", ":")):
        histogram.axvline(
            processing[key],
            color="k",
            linestyle=style,
            linewidth=1,
            label=f"processing {key[:-3]} {processing[key]:.2f} ms",
        )
    histogram.set_xlabel("latency (ms)")
    histogram.set_ylabel("bins")
    histogram.legend(fontsize=8)
    timeline.set_xlabel("time (s)")
    timeline.set_ylabel("latency (ms)")
    timeline.legend(markerscale=20, fontsize=8)
    source = summary["source"]
    source_text = "-" if source is None else f"p50 {source['p50_ms']:.2f}, p99 {source['p99_ms']:.2f} ms"
    figure.suptitle(
        f"{summary['bins']} bins: processing p50 {processing['p50_ms']:.2f}, p99 {processing['p99_ms']:.2f}, "
        f"max {processing['max_ms']:.2f} ms; source {source_text}; late {summary['late']}, "
        f"overdue {summary['overdue']}, dropped {summary['dropped']}, duplicated {summary['duplicated']}"
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
