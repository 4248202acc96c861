"""The words a user reads about latency and lost bins, defined once.

The engine's status line, its recordings, the latency test, the benchmarks, the dashboard, the
README and ``rtbci run --help`` all use these words with these meanings. This module imports
nothing heavy, so that ``rtbci run --help`` can print them at once.
"""

from __future__ import annotations

import textwrap

__all__ = ["DEFINITIONS", "definitions_text"]

DEFINITIONS: dict[str, str] = {
    "processing latency": (
        "push time minus the time the chunk that completed the bin was read. What rtbci controls; "
        "never negative."
    ),
    "source latency": (
        "push time minus the LSL timestamp of the bin's last input sample. It adds how the source "
        "chunks and stamps its samples."
    ),
    "late": (
        "an input had not delivered the bin by its deadline (the bin's end, plus that input's chunk "
        "allowance, plus [engine] late_deadline_ms); the bin was decoded with that input stood in for."
    ),
    "overdue": (
        "every input had delivered the bin, but decoding started more than [engine] late_deadline_ms "
        "after the completing chunk was read: the engine was behind."
    ),
    "gap": "bins that no input delivered (the inputs' timestamps jumped forward).",
    "outage": (
        "an input silent for longer than a bin plus its chunk allowance plus the deadline; counted, "
        "timed and written to the recording."
    ),
}


def definitions_text(width: int = 79) -> str:
    """:data:`DEFINITIONS` as an indented list, one entry per word, wrapped to ``width`` columns.

    Parameters
    ----------
    width
        Columns to wrap at.

    Returns
    -------
    str
        Lines such as ``  late: an input had not delivered ...``, continuations indented further.
    """
    return "\n".join(
        textwrap.fill(f"{word}: {meaning}", width, initial_indent="  ", subsequent_indent="    ")
        for word, meaning in DEFINITIONS.items()
    )
