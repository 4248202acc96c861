"""A short, JSON-able description of a Session file (for ``rtbci info``)."""

from __future__ import annotations

from pathlib import Path

from rtbci.io.store import read_session

__all__ = ["format_summary", "summarize_session"]


def summarize_session(path: str | Path) -> dict:
    """Describe a Session file: metadata and, per stream, its shape and timing.

    Parameters
    ----------
    path
        The ``.h5`` file.

    Returns
    -------
    dict
        ``file``, ``meta`` and ``streams`` (a list of dicts with ``name``,
        ``kind``, ``channels``, ``samples``, ``rate``, ``measured_rate``,
        ``start``, ``duration_s``, ``units``, ``dtype``).
    """
    session = read_session(path)
    meta = session.meta
    streams = []
    for stream in session.streams.values():
        measured = (stream.n_samples - 1) / stream.duration if stream.duration > 0 else 0.0
        streams.append(
            {
                "name": stream.name,
                "kind": str(stream.kind),
                "channels": stream.n_channels,
                "samples": stream.n_samples,
                "rate": stream.rate,
                "measured_rate": round(measured, 3),
                "start": float(stream.timestamps[0]) if stream.n_samples else None,
                "duration_s": round(stream.duration, 6),
                "units": stream.units,
                "dtype": str(stream.data.dtype),
                "chunks": None if stream.chunk_sizes is None else len(stream.chunk_sizes),
            }
        )
    regions = sorted({name for name in meta.channel_regions if name})
    return {
        "file": str(Path(path)),
        "meta": {
            "subject": meta.subject,
            "session_id": meta.session_id,
            "task": meta.task,
            "date": meta.date,
            "regions": regions,
            "provenance": meta.provenance,
        },
        "streams": streams,
        "duration_s": round(max((s["duration_s"] for s in streams), default=0.0), 6),
    }


def format_summary(summary: dict) -> str:
    """Render :func:`summarize_session` output as aligned text."""
    meta = summary["meta"]
    lines = [
        summary["file"],
        f"  subject {meta['subject']}  session {meta['session_id']}  task {meta['task'] or '-'}"
        f"  date {meta['date'] or '-'}",
        f"  duration {summary['duration_s']:.3f} s, regions: {', '.join(meta['regions']) or '-'}",
    ]
    for key, value in meta["provenance"].items():
        lines.append(f"  {key}: {value}")
    header = f"  {'stream':<24}{'kind':<12}{'ch':>5}{'samples':>11}{'rate':>9}{'measured':>10}  units"
    lines.append(header)
    for stream in summary["streams"]:
        lines.append(
            f"  {stream['name']:<24}{stream['kind']:<12}{stream['channels']:>5}{stream['samples']:>11}"
            f"{stream['rate']:>9.1f}{stream['measured_rate']:>10.1f}  {stream['units']}"
        )
    return "\n".join(lines)
