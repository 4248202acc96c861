"""An optional LSL stream, taken when it is there: looked for in the background, never waited on.

The engine's recorder and ``rtbci calibrate --record`` take the cursor task's streams (and the
engine's recorder the behavior stream) this way: the task may start before the recording, after
it, or never, and a stream that never comes costs nothing but an empty stream in the file. A
``pylsl.ContinuousResolver`` looks for the stream without blocking; once it appears, an inlet with
clock sync (the engine inputs' clock) is opened and each :meth:`FollowedStream.poll` takes what
came, never waiting for more.
"""

from __future__ import annotations

import time

import numpy as np

from rtbci.lsl import require_pylsl
from rtbci.lsl.resolve import describe, predicate_for
from rtbci.profile import StreamSpec

__all__ = ["FollowedStream"]

# How often the resolver's results are looked at while the stream is not followed.
_LOOK_EVERY_S = 0.25
_MAX_SAMPLES = 4096


class FollowedStream:
    """Follows one optional stream, matched like the profile's (name, type, source_id).

    Parameters
    ----------
    spec
        The stream: identifiers to match and the channel count it must have (``rate`` is not
        checked).
    role
        What it is (``"task"``, ``"task markers"``, ``"behavior"``), for messages.
    text
        True for a string (marker) stream, False for a numeric one.
    max_buflen_s
        Inlet buffer in seconds: how long the reader may fall behind without losing samples.

    Attributes
    ----------
    info
        The full ``pylsl.StreamInfo`` (with its description) once the stream is open, else None.
    problem
        Why a stream that appeared is not taken (wrong channel count or format); None otherwise.
    samples
        Samples taken so far.
    """

    def __init__(self, spec: StreamSpec, role: str, text: bool = False, max_buflen_s: int = 10) -> None:
        self.pylsl = require_pylsl()
        self.spec = spec
        self.role = role
        self.text = text
        self.max_buflen_s = max_buflen_s
        self.resolver = self.pylsl.ContinuousResolver(pred=predicate_for(spec))
        self.inlet = None
        self.info = None
        self.problem: str | None = None
        self.samples = 0
        self._next_look = 0.0

    @property
    def following(self) -> bool:
        """True once the stream is open."""
        return self.inlet is not None

    def look(self) -> bool:
        """Open the stream if the resolver has found it (blocks for milliseconds when it has).

        Returns
        -------
        bool
            Whether the stream is followed now.
        """
        if self.inlet is not None or self.problem is not None:
            return self.inlet is not None
        found = self.resolver.results()
        if not found:
            return False
        info = max(found, key=lambda item: item.created_at())  # a stale outlet and a new one: the new
        is_text = info.channel_format() == self.pylsl.cf_string
        if info.channel_count() != self.spec.channels or is_text != self.text:
            self.problem = (
                f"{self.role} stream ({describe(info)}) is not taken: expected {self.spec.channels} "
                f"{'string' if self.text else 'numeric'} channel(s)"
            )
            return False
        inlet = self.pylsl.StreamInlet(
            info, max_buflen=self.max_buflen_s, recover=True, processing_flags=self.pylsl.proc_clocksync
        )
        inlet.open_stream(timeout=1.0)
        self.info = inlet.info(timeout=1.0)
        self.inlet = inlet
        return True

    def poll(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The samples that came since the last poll (opening the stream once it appears).

        Returns
        -------
        (data, timestamps) or None
            ``(n, channels)`` float64 values (``str`` objects for a text stream) and ``(n,)`` LSL
            times on this machine's clock; None when nothing came.
        """
        if self.inlet is None:
            now = time.monotonic()
            if now < self._next_look:
                return None
            self._next_look = now + _LOOK_EVERY_S
            if not self.look():
                return None
        rows: list = []
        stamps: list = []
        try:
            while True:
                values, times = self.inlet.pull_chunk(timeout=0.0, max_samples=_MAX_SAMPLES)
                rows += values
                stamps += times
                if len(times) < _MAX_SAMPLES:
                    break
        except self.pylsl.util.LostError:  # the source is gone for good: look for a new one
            self.close()
        if not stamps:
            return None
        self.samples += len(stamps)
        data = np.array(rows, dtype=object if self.text else np.float64).reshape(
            len(stamps), self.spec.channels
        )
        return data, np.asarray(stamps, dtype=np.float64)

    def close(self) -> None:
        """Stop following (a later :meth:`poll` looks for the stream again)."""
        if self.inlet is not None:
            self.inlet.close_stream()
        self.inlet = None
