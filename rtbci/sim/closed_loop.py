"""The simulated participant in closed loop over LSL: spikes and LFP from what it sees of the task.

:class:`ClosedLoopSource` serves the profile's spike and LFP streams, as the open-loop rig does
(:mod:`rtbci.sim.live`), but its neurons encode the intention of a
:class:`~rtbci.sim.participant.SimulatedParticipant` who watches the task stream that
``rtbci task`` publishes (:func:`rtbci.task.publisher.task_stream_spec`). The loop is::

    ClosedLoopSource --spikes, LFP--> engine --decoded velocity--> rtbci task --task stream--+
          ^                                                                                  |
          +----------------------------------------------------------------------------------+

Two paces:

- real time: bin ``k`` is pushed when its last sample is due on the LSL clock, with whatever task
  frame has come back by then;
- lockstep: bin ``k`` is pushed only once the task frame that answers bin ``k - 1`` has come back,
  so the loop runs through the real engine and LSL as fast as they go. A bin whose answer does not
  come within ``answer_timeout_s`` is counted as a stall, and the loop goes on. The engine decodes a
  bin whose data is late with stand-ins once its inputs' clock passes the bin's deadline, and that
  clock runs on while the source waits for the round trip: a lockstep profile needs an
  ``[engine] late_deadline_ms`` longer than the slowest round trip (e.g. 2000).

Samples are stamped on a nominal grid, ``t0 + i / rate``, in both paces.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass

import numpy as np

from rtbci.errors import UserError
from rtbci.lsl import require_pylsl
from rtbci.lsl.info import make_stream_info
from rtbci.lsl.inlet import LslInput
from rtbci.lsl.resolve import resolve_stream
from rtbci.profile import Profile
from rtbci.sim.config import SimConfig
from rtbci.sim.live import config_for_profile
from rtbci.sim.participant import IntentionRig, ParticipantConfig, SimulatedParticipant
from rtbci.sim.session import channel_labels, session_id
from rtbci.task.publisher import task_stream_spec
from rtbci.task.stream import frame_from_sample

__all__ = ["ClosedLoopSource", "ClosedLoopStats"]

# How long the source waits for the task stream to appear at start.
_TASK_RESOLVE_S = 30.0


@dataclass
class ClosedLoopStats:
    """What a closed-loop run did.

    Attributes
    ----------
    bins
        Bins pushed.
    answers
        Task frames received.
    stalls
        Lockstep bins pushed without the previous bin's answer (it did not come in time).
    seconds
        Wall-clock time of the run.
    stream_seconds
        Stream time pushed.
    """

    bins: int = 0
    answers: int = 0
    stalls: int = 0
    seconds: float = 0.0
    stream_seconds: float = 0.0


def _subject(profile: Profile) -> int:
    match = re.fullmatch(r"sim-S(\d+)", profile.rig.subject)
    if match is None:
        raise UserError(
            f"{profile.path}: field 'rig.subject' is {profile.rig.subject!r}; the simulated participant "
            "is one of the simulated subjects, sim-S<k> (e.g. 'sim-S0')"
        )
    return int(match.group(1))


class ClosedLoopSource:
    """The profile's spike and LFP streams, from a simulated participant who watches the task.

    Parameters
    ----------
    profile
        The rig profile (``rig.subject`` ``sim-S<k>``; ``[streams]`` spikes and LFP as the
        simulated rig serves them); the task stream is :func:`~rtbci.task.publisher.task_stream_spec`.
    seed, session
        As for the open-loop rig: the same units, tuning and channels.
    participant
        The participant's control policy.
    lockstep
        Push each bin only after the previous one's task frame came back.
    answer_timeout_s
        Lockstep only: how long to wait for an answer before pushing the next bin anyway.
    config
        Simulator settings; the arrays are set from the profile.
    """

    def __init__(
        self,
        profile: Profile,
        seed: int = 0,
        session: int = 0,
        participant: ParticipantConfig | None = None,
        lockstep: bool = False,
        answer_timeout_s: float = 1.0,
        config: SimConfig | None = None,
    ) -> None:
        self.profile = profile
        self.subject = _subject(profile)
        self.session = session
        self.seed = seed
        self.lockstep = lockstep
        self.answer_timeout_s = answer_timeout_s
        self.config = config_for_profile(profile, config)
        self.participant_config = participant or ParticipantConfig()
        self.bin_samples = round(profile.bin_s * self.config.rate_hz)

    def describe(self) -> list[str]:
        """One line per stream served or read."""
        streams = self.profile.streams
        task = task_stream_spec(self.profile)
        pace = "lockstep (each bin after the last one's answer)" if self.lockstep else "real time"
        return [
            f"simulated participant {session_id(self.subject, self.session)} (seed {self.seed}) in closed "
            f"loop, {pace}; feedback delay {self.participant_config.feedback_delay_ms:g} ms",
            f"  spikes   name={streams.spikes.name!r} channels={self.config.n_channels}",
            f"  lfp      name={streams.lfp.name!r} channels={self.config.n_channels}",
            f"  watches  name={task.name!r} (rtbci task --profile {self.profile.path})",
        ]

    def _outlets(self, pylsl):
        labels = channel_labels(self.config.n_channels)
        regions = self.config.channel_regions()
        outlets = []
        for role, spec, unit, channel_format in (
            ("spikes", self.profile.streams.spikes, "count", "int16"),
            ("lfp", self.profile.streams.lfp, "microvolts", "float32"),
        ):
            info = make_stream_info(
                spec.name or f"rtbci-sim-{role}",
                spec.type,
                spec.source_id or f"rtbci-sim-{role}-{session_id(self.subject, self.session)}",
                labels,
                unit,
                self.config.rate_hz,
                channel_format,
                description={
                    "manufacturer": "rtbci simulator (closed loop)",
                    "subject": f"sim-S{self.subject}",
                    "session_id": session_id(self.subject, self.session),
                    "seed": str(self.seed),
                },
                channel_fields={"type": [role] * len(labels), "region": regions},
            )
            outlets.append(pylsl.StreamOutlet(info, chunk_size=self.bin_samples))
        return outlets

    def run(self, stop: threading.Event, seconds: float | None = None) -> ClosedLoopStats:
        """Serve until ``stop`` is set or ``seconds`` of stream time have been pushed.

        Parameters
        ----------
        stop
            Set it to end cleanly.
        seconds
            Stream time to push; ``None`` runs until ``stop``.

        Returns
        -------
        ClosedLoopStats

        Raises
        ------
        rtbci.lsl.resolve.StreamMissingError
            If the task stream does not appear within 30 s.
        """
        pylsl = require_pylsl()
        fs, n = self.config.rate_hz, self.bin_samples
        rig = IntentionRig(self.config, self.subject, self.session, self.seed, n)
        participant = SimulatedParticipant(self.participant_config, self.profile.bin_s)
        spike_outlet, lfp_outlet = self._outlets(pylsl)
        task_spec = task_stream_spec(self.profile)
        task = LslInput(
            task_spec,
            "task",
            resolve_stream(task_spec, "task", _TASK_RESOLVE_S),
            self.profile.engine.max_buflen_s,
            self.profile.engine.resolve_timeout_s,
        )
        frame = frame_from_sample(np.zeros(len(task.data[0])))
        stats = ClosedLoopStats()
        total = None if seconds is None else round(seconds * fs / n)
        stamps = np.arange(n) / fs
        started = time.monotonic()
        try:
            # Nothing is pushed before the decoder reads both streams: lost bins would stall a lockstep.
            while not stop.is_set() and not (
                spike_outlet.wait_for_consumers(0.1) and lfp_outlet.wait_for_consumers(0.1)
            ):
                continue
            t0 = pylsl.local_clock()
            while not stop.is_set() and (total is None or stats.bins < total):
                if self.lockstep and stats.bins:
                    got = task.pull(timeout=self.answer_timeout_s)
                    stats.stalls += int(got == 0)
                else:
                    got = task.pull()
                if got:
                    stats.answers += got
                    frame = frame_from_sample(task.data[got - 1])
                neural = rig.next_bin(participant.step(frame))
                first = t0 + neural.start_sample / fs
                if not self.lockstep and stop.wait(max(0.0, first + (n - 1) / fs - pylsl.local_clock())):
                    break
                times = first + stamps
                spike_outlet.push_chunk(neural.spikes.astype(np.int16), times)
                lfp_outlet.push_chunk(neural.lfp, times)
                stats.bins += 1
        finally:
            task.close()
            stats.seconds = time.monotonic() - started
            stats.stream_seconds = stats.bins * n / fs
        return stats
