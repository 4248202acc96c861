"""The simulated rig as live LSL streams: spikes, LFP, behaviour and markers in real time.

Samples are paced against the LSL clock (``local_clock``, monotonic): sample
``i`` belongs to time ``t0 + i / rate`` and each chunk is pushed when its last
sample is due, so the stream never drifts however long it runs. A background
thread generates one-second blocks ahead so that generation never delays a push.
"""

from __future__ import annotations

import dataclasses
import queue
import re
import threading
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from rtbci.errors import UserError
from rtbci.lsl import require_pylsl
from rtbci.lsl.info import make_marker_info, make_stream_info
from rtbci.profile import Profile, StreamSpec
from rtbci.sim.config import ELECTRODES_PER_ARRAY, SimConfig
from rtbci.sim.rig import BEHAVIOR_LABELS, RigSimulator, SimBlock
from rtbci.sim.session import channel_labels, session_id

__all__ = ["LiveRigSource", "LiveStats", "SimProfileError", "config_for_profile", "markers_stream_name"]

# A push later than this after its due time counts as late in the statistics.
_LATE_S = 0.005


class SimProfileError(UserError):
    """A profile that the simulated rig cannot serve."""


def markers_stream_name(profile: Profile) -> str:
    """Name of the markers stream: the spikes stream's name with ``spikes`` replaced by ``markers``.

    ``rtbci-sim-spikes`` gives ``rtbci-sim-markers``; a name without that
    suffix gets ``-markers`` appended.
    """
    name = profile.streams.spikes.name or profile.rig.name
    return name.removesuffix("spikes") + "markers" if name.endswith("spikes") else f"{name}-markers"


def _subject_index(profile: Profile) -> int:
    match = re.fullmatch(r"sim-S(\d+)", profile.rig.subject)
    if match is None:
        raise SimProfileError(
            f"{profile.path}: field 'rig.subject' is {profile.rig.subject!r}; the simulated rig "
            "serves subjects named sim-S<k> (e.g. 'sim-S0')"
        )
    return int(match.group(1))


def _check_stream(profile: Profile, field: str, spec: StreamSpec, channels: int, rate: float) -> None:
    if spec.channels != channels:
        raise SimProfileError(
            f"{profile.path}: field 'streams.{field}.channels' is {spec.channels}; "
            f"the simulated rig sends {channels}"
        )
    if spec.rate != rate:
        raise SimProfileError(
            f"{profile.path}: field 'streams.{field}.rate' is {spec.rate}; the simulated rig sends {rate} Hz"
        )


def config_for_profile(profile: Profile, base: SimConfig | None = None) -> SimConfig:
    """A :class:`SimConfig` whose arrays match the profile's channel count.

    Raises
    ------
    SimProfileError
        If channel counts or rates do not fit the simulator.
    """
    base = base or SimConfig()
    n_channels = profile.streams.spikes.channels
    if n_channels % ELECTRODES_PER_ARRAY:
        raise SimProfileError(
            f"{profile.path}: field 'streams.spikes.channels' is {n_channels}; the simulated rig has "
            f"{ELECTRODES_PER_ARRAY} electrodes per array, so it must be a multiple of {ELECTRODES_PER_ARRAY}"
        )
    n_arrays = n_channels // ELECTRODES_PER_ARRAY
    names = [r.name for r in profile.regions if r.count == ELECTRODES_PER_ARRAY]
    array_names = tuple(names) if len(names) == n_arrays else tuple(f"array{a}" for a in range(n_arrays))
    config = dataclasses.replace(base, array_names=array_names)
    _check_stream(profile, "spikes", profile.streams.spikes, n_channels, config.rate_hz)
    _check_stream(profile, "lfp", profile.streams.lfp, n_channels, config.rate_hz)
    if profile.streams.behavior is not None:
        _check_stream(profile, "behavior", profile.streams.behavior, len(BEHAVIOR_LABELS), config.rate_hz)
    return config


@dataclass
class LiveStats:
    """What a live run did.

    Attributes
    ----------
    chunks, samples, markers
        Pushed per continuous stream (chunks, samples) and markers in all.
    late_chunks
        Chunks pushed more than 5 ms after they were due.
    max_lateness_s
        Worst push delay after the due time.
    seconds
        Stream time covered.
    """

    chunks: int = 0
    samples: int = 0
    markers: int = 0
    late_chunks: int = 0
    max_lateness_s: float = 0.0
    seconds: float = 0.0


@dataclass(frozen=True)
class _OutletSpec:
    field: str
    spec: StreamSpec
    labels: list[str]
    units: list[str]
    channel_format: str


class LiveRigSource:
    """Streams one simulated session over LSL as the profile describes it.

    Parameters
    ----------
    profile
        The rig profile; ``[streams]`` gives names, types, source ids, channel
        counts and rates; ``rig.subject`` must be ``sim-S<k>``.
    seed
        Top seed of the simulation.
    session
        Session (day) index of the subject.
    config
        Simulator settings; the arrays are set from the profile.
    chunk_samples
        Samples per pushed chunk (10 = every 10 ms at 1 kHz).
    from_minute
        Where in the session streaming starts. The minutes before it are simulated
        (every filter and the task carry on exactly as in a file of the session) but
        not sent, so a decoder trained on a session's first minutes can be shown
        minutes it never saw. The outlets appear once the first block to send is ready.
    """

    def __init__(
        self,
        profile: Profile,
        seed: int = 0,
        session: int = 0,
        config: SimConfig | None = None,
        chunk_samples: int = 10,
        from_minute: float = 0.0,
    ) -> None:
        if from_minute < 0:
            raise SimProfileError(f"--from-minute must be >= 0, got {from_minute:g}")
        self.profile = profile
        self.subject = _subject_index(profile)
        self.session = session
        self.seed = seed
        self.config = config_for_profile(profile, config)
        self.chunk_samples = chunk_samples
        self.first_sample = round(from_minute * 60.0 * self.config.rate_hz)
        n_channels = self.config.n_channels
        streams = profile.streams
        regions = self.config.channel_regions()
        self._regions = {"spikes": regions, "lfp": regions}
        labels = channel_labels(n_channels)
        self._outlet_specs = [
            _OutletSpec("spikes", streams.spikes, labels, ["count"] * n_channels, "int16"),
            _OutletSpec("lfp", streams.lfp, labels, ["microvolts"] * n_channels, "float32"),
        ]
        if streams.behavior is not None:
            units = ["m", "m", "m/s", "m/s", "m", "m"]
            self._outlet_specs.append(
                _OutletSpec("behavior", streams.behavior, list(BEHAVIOR_LABELS), units, "float32")
            )
        self.markers_name = markers_stream_name(profile)

    def describe(self) -> list[str]:
        """One line per stream that :meth:`run` will serve."""
        rate = self.config.rate_hz
        chunk_ms = 1000.0 * self.chunk_samples / rate
        start = f", from minute {self.first_sample / rate / 60.0:g}" if self.first_sample else ""
        lines = [
            f"simulated rig {session_id(self.subject, self.session)} (seed {self.seed}{start}), "
            f"{self.config.n_channels} electrodes, "
            f"chunks of {self.chunk_samples} samples every {chunk_ms:g} ms"
        ]
        for spec in self._outlet_specs:
            lines.append(
                f"  {spec.field:8s} name={spec.spec.name!r} type={spec.spec.type!r} "
                f"source_id={spec.spec.source_id!r} channels={len(spec.labels)} rate={rate:g} Hz "
                f"format={spec.channel_format}"
            )
        lines.append(f"  markers  name={self.markers_name!r} type='Markers' irregular, string")
        return lines

    def _make_outlets(self, pylsl: ModuleType) -> tuple[dict[str, object], object]:
        session = session_id(self.subject, self.session)
        description = {
            "manufacturer": "rtbci simulator",
            "subject": f"sim-S{self.subject}",
            "session_id": session,
            "seed": str(self.seed),
        }
        outlets = {}
        for spec in self._outlet_specs:
            info = make_stream_info(
                spec.spec.name or f"rtbci-sim-{spec.field}",
                spec.spec.type,
                spec.spec.source_id or f"rtbci-sim-{spec.field}-{session}",
                spec.labels,
                spec.units,
                self.config.rate_hz,
                spec.channel_format,
                description=description,
                channel_fields={
                    "type": [spec.field] * len(spec.labels),
                    "region": self._regions.get(spec.field, [""] * len(spec.labels)),
                },
            )
            outlets[spec.field] = pylsl.StreamOutlet(info, chunk_size=self.chunk_samples)
        marker_info = make_marker_info(
            self.markers_name, f"{self.markers_name}-{session}", {"manufacturer": "rtbci simulator"}
        )
        return outlets, pylsl.StreamOutlet(marker_info)

    def _produce(self, blocks: queue.Queue, stop: threading.Event) -> None:
        simulator = RigSimulator(self.config, self.subject, self.session, self.seed)
        while not stop.is_set():
            block = simulator.next_block()
            if block.start_sample + len(block) <= self.first_sample:
                continue
            while not stop.is_set():
                try:
                    blocks.put(block, timeout=0.1)
                    break
                except queue.Full:
                    continue

    @staticmethod
    def _next_block(
        blocks: queue.Queue, stop: threading.Event, producer: threading.Thread
    ) -> SimBlock | None:
        """The next generated block; None once ``stop`` is set."""
        while not stop.is_set():
            try:
                return blocks.get(timeout=0.1)
            except queue.Empty:
                if not producer.is_alive():
                    raise RuntimeError("the simulator thread stopped unexpectedly") from None
        return None

    def run(self, stop: threading.Event, seconds: float | None = None) -> LiveStats:
        """Stream until ``stop`` is set or ``seconds`` of data have been sent.

        Parameters
        ----------
        stop
            Set it (e.g. from a signal handler or another thread) to end cleanly.
        seconds
            Stream time to send; ``None`` runs until ``stop``.

        Returns
        -------
        LiveStats
        """
        pylsl = require_pylsl()
        fs = self.config.rate_hz
        blocks: queue.Queue[SimBlock] = queue.Queue(maxsize=2)
        producer_stop = threading.Event()
        producer = threading.Thread(target=self._produce, args=(blocks, producer_stop), daemon=True)
        producer.start()
        stats = LiveStats()
        outlets, marker_outlet = {}, None
        try:
            block = self._next_block(blocks, stop, producer)
            outlets, marker_outlet = self._make_outlets(pylsl)
            # Session sample s is stamped t0 + s / fs: the first one sent is stamped now.
            t0 = pylsl.local_clock() - self.first_sample / fs
            sent = self.first_sample
            total = None if seconds is None else self.first_sample + round(seconds * fs)
            while block is not None and not stop.is_set() and (total is None or sent < total):
                offset = sent - block.start_sample
                if offset >= len(block):
                    block = self._next_block(blocks, stop, producer)
                    continue
                n = min(self.chunk_samples, len(block) - offset)
                if total is not None:
                    n = min(n, total - sent)
                last_time = t0 + (sent + n - 1) / fs
                # Wait on the event, not sleep: a stop request ends the wait at once.
                if stop.wait(max(0.0, last_time - pylsl.local_clock())):
                    break
                lateness = pylsl.local_clock() - last_time
                parts = {"spikes": block.spikes, "lfp": block.lfp, "behavior": block.behavior}
                for name, outlet in outlets.items():
                    chunk = parts[name][offset : offset + n]
                    if name == "spikes":
                        chunk = chunk.astype(np.int16)
                    outlet.push_chunk(np.ascontiguousarray(chunk), last_time)
                for sample, text in block.markers:
                    if sent <= sample < sent + n:
                        marker_outlet.push_sample([text], t0 + sample / fs)
                        stats.markers += 1
                sent += n
                stats.chunks += 1
                stats.max_lateness_s = max(stats.max_lateness_s, lateness)
                stats.late_chunks += int(lateness > _LATE_S)
            stats.samples = sent - self.first_sample
            stats.seconds = stats.samples / fs
        finally:
            producer_stop.set()
            producer.join(timeout=5.0)
            del outlets, marker_outlet
        return stats
