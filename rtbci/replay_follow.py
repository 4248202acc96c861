"""Hold a fast replay back to the pace of the decoder that consumes it.

Played as fast as possible, a file outruns any decoder: LSL inlets keep only a
small buffer (the engine's is 2 s, on purpose), so nearly every sample would be
dropped before it was decoded. :class:`OutputFollower` watches the decoder's
output stream instead, whose timestamps are the end times of the bins it has
decoded, and lets the player push a chunk only while that chunk is at most
``lead_s`` of recorded time ahead of the newest output. The replay then runs
exactly as fast as the decoder can go, and every bin is decoded: what a soak
test needs.
"""

from __future__ import annotations

import threading
import time

from rtbci.errors import UserError
from rtbci.lsl import require_pylsl
from rtbci.lsl.resolve import check_stream, resolve_stream
from rtbci.profile import StreamSpec

__all__ = ["OutputFollower", "ReplayStalledError"]

# How long one wait for output blocks before the stop event and the stall timer are checked again.
_POLL_S = 0.05


class ReplayStalledError(UserError):
    """The followed output stopped advancing while the replay was waiting for it."""


class OutputFollower:
    """Blocks a replay until the decoder's output has caught up with what was pushed.

    Use one follower per replay run. The output stream is looked up at the first
    wait, and the first chunk waited for sets the point from which output is
    awaited, so a run may start ahead of the output of an earlier run (its
    timestamps are re-stamped to a new start).

    Parameters
    ----------
    spec
        The decoder's output stream (a profile's ``streams.output``).
    lead_s
        How far, in recorded seconds, pushed data may run ahead of the newest output.
        It must exceed a bin plus a chunk, or no bin could ever complete; well below
        the consumer's inlet buffer, so nothing is dropped.
    stall_s
        Give up when the output has not advanced for this long while waited for.
    resolve_timeout_s
        How long to look for the output stream.
    """

    def __init__(
        self, spec: StreamSpec, lead_s: float = 0.5, stall_s: float = 10.0, resolve_timeout_s: float = 30.0
    ) -> None:
        if not lead_s > 0:
            raise ValueError(f"lead_s must be > 0, got {lead_s}")
        self.spec = spec
        self.lead_s = lead_s
        self.stall_s = stall_s
        self.resolve_timeout_s = resolve_timeout_s
        self.newest_output: float | None = None
        self.waits = 0
        self.waited_s = 0.0
        self.output = None
        self.stream_name = spec.name or spec.source_id or spec.type
        self.output_period_s = lead_s
        self._floor: float | None = None

    def _connect(self) -> None:
        # Connected at the first wait rather than when made: the decoder, and so its output
        # stream, may only start once the replay is playing.
        pylsl = require_pylsl()
        info = resolve_stream(self.spec, "decoder output", self.resolve_timeout_s)
        check_stream(info, self.spec, "decoder output")
        self.stream_name = info.name()
        # One output per bin: its period is how far the last output may trail the last input.
        if info.nominal_srate() > 0:
            self.output_period_s = 1.0 / info.nominal_srate()
        # No clock-sync post-processing: the output's timestamps are compared with the replay's own
        # stamps, unconverted. (Clock sync also held the first samples back for seconds, measured.)
        # The buffer only needs to hold what the decoder outputs between two polls.
        self.output = pylsl.StreamInlet(info, max_buflen=2)
        self.output.open_stream(timeout=self.resolve_timeout_s)

    def finish(self, last_timestamp: float, stop: threading.Event) -> None:
        """After the last push: wait until the decoder has output the last bin it was given.

        That bin ends at most one output period (one bin) before ``last_timestamp``.
        """
        if self._floor is not None:
            self.wait(last_timestamp, stop, self.output_period_s)

    def wait(self, timestamp: float, stop: threading.Event, lead_s: float | None = None) -> None:
        """Return once a chunk whose last sample is at ``timestamp`` may be pushed (or ``stop`` is set).

        ``lead_s`` overrides the follower's lead for this call.

        Raises
        ------
        ReplayStalledError
            If the output does not advance for ``stall_s`` while the chunk waits.
        """
        if self._floor is None:
            self._connect()
            self._floor = timestamp
        lead_s = self.lead_s if lead_s is None else lead_s
        self._drain()
        if self._within_lead(timestamp, lead_s):
            return
        began = time.monotonic()
        last_progress = began
        self.waits += 1
        while not stop.is_set():
            before = self.newest_output
            self._drain(_POLL_S)
            now = time.monotonic()
            if self._within_lead(timestamp, lead_s):
                break
            if self.newest_output != before:
                last_progress = now
            elif now - last_progress > self.stall_s:
                raise ReplayStalledError(
                    f"the decoder output {self.stream_name!r} has not advanced for "
                    f"{self.stall_s:g} s (newest output at {self.newest_output}, replay at {timestamp:.3f}); "
                    "is the decoder still running?"
                )
        self.waited_s += time.monotonic() - began

    def _within_lead(self, timestamp: float, lead_s: float) -> bool:
        reached = self._floor if self.newest_output is None else max(self.newest_output, self._floor)
        return timestamp - reached <= lead_s

    def _drain(self, timeout: float = 0.0) -> None:
        # A chunk pull with a timeout waits for a full buffer; wait for one sample, then take the rest.
        _, timestamp = self.output.pull_sample(timeout=timeout)
        if timestamp is None:
            return
        self.newest_output = timestamp
        _, timestamps = self.output.pull_chunk(timeout=0.0)
        if timestamps:
            self.newest_output = timestamps[-1]

    def close(self) -> None:
        """Close the output inlet."""
        if self.output is not None:
            self.output.close_stream()
