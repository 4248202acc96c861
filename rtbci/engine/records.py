"""The per-bin record every decoded bin publishes: outputs plus its BRAND-style timestamps.

One record per decoded bin, in decode order, as a row of a numpy structured
array (so it is preallocated and copied as one block). Latency is traced end to
end: ``t_push - t_last_sample`` is the input-to-output latency of the bin, and
``t_decode_end - t_decode_start`` the decoder's share of it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["FLAG_CLOCK_RESET", "FLAG_OVERDUE", "TIMESTAMP_FIELDS", "record_dtype"]

# LSL-clock timestamps carried by every bin, in the order they happen.
TIMESTAMP_FIELDS = ("t_last_sample", "t_read", "t_decode_start", "t_decode_end", "t_push")

# Bits of the ``flags`` field.
FLAG_OVERDUE = 1  # the decode started after the bin's deadline (the engine was behind)
FLAG_CLOCK_RESET = 2  # the bin clock was re-anchored backwards just before this bin


def record_dtype(
    n_outputs: int, feature_shape: tuple[int, ...], spike_shape: tuple[int, ...] | None = None
) -> np.dtype:
    """Layout of one bin's record.

    Fields: ``seq`` (decode counter, +1 per bin), ``index`` (bin number on the
    LSL clock), ``end_time``, the five :data:`TIMESTAMP_FIELDS`, ``late_mask``
    (bit k: input k was missing at the deadline and stood in for), ``gap_bins``
    (bins no input delivered, skipped just before this one), ``flags``
    (:data:`FLAG_OVERDUE`, :data:`FLAG_CLOCK_RESET`), ``output`` (the pushed
    sample) and ``features`` (what the decoder saw). With ``spike_shape``, also
    ``spikes``: the bin's spike counts, for a decoder that reads another input
    (a dashboard's rate map).

    Parameters
    ----------
    n_outputs
        Channels of the output stream.
    feature_shape
        Shape of one bin's decoder input.
    spike_shape
        Shape of one bin's spike counts, or ``None`` for no ``spikes`` field.
    """
    spikes = [] if spike_shape is None else [("spikes", np.float32, spike_shape)]
    return np.dtype(
        [
            ("seq", np.int64),
            ("index", np.int64),
            ("end_time", np.float64),
            *[(name, np.float64) for name in TIMESTAMP_FIELDS],
            ("late_mask", np.uint8),
            ("flags", np.uint8),
            ("gap_bins", np.int32),
            ("output", np.float32, (n_outputs,)),
            ("features", np.float32, feature_shape),
            *spikes,
        ]
    )
