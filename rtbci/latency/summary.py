"""The latency test's figures from the engine's per-bin records: the summary JSON and its short text.

Two latencies, always apart (see :mod:`rtbci.engine.status`): processing (push minus the
read of the chunk that completed the bin) and source (push minus the LSL timestamp of the
bin's newest input sample). :func:`bin_accounting` counts dropped and duplicated bins.
"""

from __future__ import annotations

import itertools

import numpy as np

from rtbci.engine.records import FLAG_OVERDUE, TIMESTAMP_FIELDS
from rtbci.engine.status import record_latencies
from rtbci.errors import UserError
from rtbci.timing import latency_summary_ms

__all__ = ["bin_accounting", "format_summary", "summarize"]


def bin_accounting(indices: np.ndarray) -> dict[str, int]:
    """Dropped and duplicated bins in a run's decoded bin indices (in decode order).

    A bin is dropped when an index between the first and the last decoded one
    was never decoded, and duplicated when an index was decoded more than once.
    """
    if indices.size == 0:
        return {"dropped": 0, "duplicated": 0}
    unique = np.unique(indices)
    expected = int(indices.max() - indices.min() + 1)
    return {"dropped": expected - unique.size, "duplicated": int(indices.size - unique.size)}


def summarize(records: np.ndarray, first_push: float, last_push: float, realtime: bool = True) -> dict:
    """The latency JSON from the engine's per-bin records.

    In real time (``realtime``), only bins that end while the replay was
    playing count: the engine keeps holding its output after the replay stops,
    and those bins are not data. Faster than real time the timestamps run ahead
    of the clock, every decoded bin counts, and source latency means little
    (it is None when no bin had input).
    """
    if realtime:
        played = records[(records["end_time"] >= first_push) & (records["end_time"] <= last_push)]
    else:
        played = records
    if played.size == 0:
        raise UserError("the engine decoded no bins while the replay played")
    latencies = record_latencies(played)
    accounting = bin_accounting(played["index"])
    stages = {}
    has_input = played["t_last_sample"] > 0
    for earlier, later in itertools.pairwise(TIMESTAMP_FIELDS):
        gaps = played[later][has_input] - played[earlier][has_input]
        stages[f"{earlier}->{later}"] = latency_summary_ms(gaps) if gaps.size else None
    return {
        "bins": int(played.size),
        "processing": latency_summary_ms(latencies.processing),
        "source": latency_summary_ms(latencies.source) if latencies.source.size else None,
        "decoder": latency_summary_ms(latencies.decoder),
        "bins_with_input": int(np.count_nonzero(has_input)),
        "late": int(np.count_nonzero(played["late_mask"])),
        "overdue": int(np.count_nonzero(played["flags"] & FLAG_OVERDUE)),
        "dropped": accounting["dropped"],
        "duplicated": accounting["duplicated"],
        "gap_bins": int(played["gap_bins"].sum()),
        "stages": stages,
    }


def format_summary(summary: dict) -> str:
    """A short human summary of a latency run (at most 15 lines); the words are defined in
    :mod:`rtbci.engine.status`."""
    lines = [f"{summary['bins']} bins decoded ({summary['bins_with_input']} with input)"]
    lines.append(f"{'latency (ms)':<26}{'p50':>8}{'p99':>8}{'p99.9':>8}{'max':>8}")
    for name, label in (
        ("processing", "processing (read->push)"),
        ("source", "source (stamp->push)"),
        ("decoder", "decoder step"),
    ):
        figures = summary[name]
        if figures is None:
            lines.append(f"{label:<26}{'-':>8}{'-':>8}{'-':>8}{'-':>8}")
            continue
        values = "".join(f"{figures[key]:>8.2f}" for key in ("p50_ms", "p99_ms", "p999_ms", "max_ms"))
        lines.append(f"{label:<26}{values}")
    lines.append(
        f"late {summary['late']}  overdue {summary['overdue']}  dropped {summary['dropped']}  "
        f"duplicated {summary['duplicated']}  gap bins {summary['gap_bins']}"
    )
    engine = summary.get("engine")
    if engine:
        lines.extend(
            f"WARNING {health['timestamp_warning']}"
            for health in engine["inputs"].values()
            if health["timestamp_warning"]
        )
    return "\n".join(lines)
