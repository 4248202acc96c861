"""The one-line live status of a running engine, and latency figures from its per-bin records."""

from __future__ import annotations

import numpy as np

__all__ = ["format_status", "record_latencies"]


def record_latencies(records: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """End-to-end and decoder-only latency (seconds) of per-bin records.

    End to end is push time minus the LSL timestamp of the bin's last input
    sample; decoder-only is decode end minus decode start. Bins decoded without
    any input sample (every input late) have no end-to-end latency and are left out.
    """
    has_input = records["t_last_sample"] > 0
    end_to_end = records["t_push"][has_input] - records["t_last_sample"][has_input]
    decoder = records["t_decode_end"] - records["t_decode_start"]
    return end_to_end, decoder


def _ms(values: np.ndarray, q: float) -> str:
    return f"{np.percentile(values, q) * 1e3:.2f}" if values.size else "-"


def format_status(snapshot: dict, recent: np.ndarray) -> str:
    """One line: bins and rate, latency p50/p99 over the recent bins, late bins, gaps, input states.

    Parameters
    ----------
    snapshot
        :meth:`rtbci.engine.Engine.snapshot`.
    recent
        The newest per-bin records (a few seconds' worth).
    """
    end_to_end, decoder = record_latencies(recent)
    inputs = " ".join(
        f"{role}:{health['state']}"
        + (f"(nan {health['nan_total']})" if health["nan_total"] else "")
        + (f"(reconnects {health['reconnects']})" if health["reconnects"] else "")
        for role, health in snapshot["inputs"].items()
    )
    return (
        f"bins {snapshot['bins']} ({snapshot['bins_per_s']:.1f}/s) | "
        f"e2e p50 {_ms(end_to_end, 50)} p99 {_ms(end_to_end, 99)} ms | "
        f"decode p50 {_ms(decoder, 50)} ms | "
        f"late {snapshot['late']} overdue {snapshot['overdue']} | "
        f"gaps {snapshot['gaps']} | {inputs}"
    )
