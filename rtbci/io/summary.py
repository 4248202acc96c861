"""A short, JSON-able description of a Session file (for ``rtbci info``)."""

from __future__ import annotations

from pathlib import Path

from rtbci.io.store import read_session_info

__all__ = ["format_summary", "summarize_session"]


def summarize_session(path: str | Path) -> dict:
    """Describe a Session file: metadata and, per stream, its shape and timing.

    Reads only metadata and first/last timestamps, so it is quick on long recordings.

    Parameters
    ----------
    path
        The ``.h5`` file.

    Returns
    -------
    dict
        ``file``, ``meta`` and ``streams`` (a list of dicts with ``name``,
        ``kind``, ``channels``, ``samples``, ``rate``, ``measured_rate``,
        ``start``, ``duration_s``, ``units``, ``dtype``, ``chunks``).
    """
    meta, infos = read_session_info(path)
    streams = []
    for info in infos:
        duration = info.last_timestamp - info.first_timestamp if info.n_samples else 0.0
        measured = (info.n_samples - 1) / duration if duration > 0 else 0.0
        streams.append(
            {
                "name": info.name,
                "kind": str(info.kind),
                "channels": info.n_channels,
                "samples": info.n_samples,
                "rate": info.rate,
                "measured_rate": round(measured, 3),
                "start": info.first_timestamp,
                "duration_s": round(duration, 6),
                "units": info.units,
                "dtype": info.dtype,
                "chunks": info.n_chunks,
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
