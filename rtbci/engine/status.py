"""The one-line live status of a running engine, and latency figures from its per-bin records.

The words it uses (processing and source latency, late, overdue, gap, outage) are defined once, in
:data:`rtbci.glossary.DEFINITIONS`, for the status line, recordings, benchmarks, the dashboard, the
README and ``rtbci run --help``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["RecordLatencies", "format_status", "record_latencies"]


class RecordLatencies(NamedTuple):
    """Latencies (seconds) of per-bin records; the words are defined in :mod:`rtbci.glossary`."""

    source: np.ndarray
    processing: np.ndarray
    decoder: np.ndarray


def record_latencies(records: np.ndarray) -> RecordLatencies:
    """Source, processing and decoder-only latency (seconds) of per-bin records.

    Source latency is push time minus the LSL timestamp of the bin's last input
    sample; bins decoded without any input sample (every input late) have none
    and are left out of it. Processing latency is push time minus the read time
    of the chunk that completed the bin (for a late bin, the time its deadline
    was seen). Decoder-only is decode end minus decode start.
    """
    has_input = records["t_last_sample"] > 0
    return RecordLatencies(
        source=records["t_push"][has_input] - records["t_last_sample"][has_input],
        processing=records["t_push"] - records["t_read"],
        decoder=records["t_decode_end"] - records["t_decode_start"],
    )


def _ms(values: np.ndarray, q: float) -> str:
    return f"{np.percentile(values, q) * 1e3:.2f}" if values.size else "-"


def _input_state(role: str, health: dict) -> str:
    text = f"{role}:{health['state']}"
    for key in ("nan_total", "reconnects", "outages"):
        if health[key]:
            text += f"({key.removesuffix('_total')} {health[key]})"
    return text


def format_status(snapshot: dict, recent: np.ndarray) -> str:
    """One line: bins and rate, processing and source latency, late/overdue, gaps, input states.

    A timestamp warning (a source stamping ahead of its arrival, or far behind
    it) is appended, naming the stream.

    Parameters
    ----------
    snapshot
        :meth:`rtbci.engine.Engine.snapshot`.
    recent
        The newest per-bin records (a few seconds' worth).
    """
    latencies = record_latencies(recent)
    inputs = " ".join(_input_state(role, health) for role, health in snapshot["inputs"].items())
    warnings = [
        health["timestamp_warning"] for health in snapshot["inputs"].values() if health["timestamp_warning"]
    ]
    line = (
        f"bins {snapshot['bins']} ({snapshot['bins_per_s']:.1f}/s) | "
        f"processing p50 {_ms(latencies.processing, 50)} p99 {_ms(latencies.processing, 99)} ms | "
        f"source p50 {_ms(latencies.source, 50)} p99 {_ms(latencies.source, 99)} ms | "
        f"late {snapshot['late']} overdue {snapshot['overdue']} | "
        f"gaps {snapshot['gaps']} | {inputs}"
    )
    if snapshot["waiting_for"]:
        line += f" | waiting for the first samples of: {', '.join(snapshot['waiting_for'])}"
    return line + "".join(f" | WARNING {warning}" for warning in warnings)
