"""LSL sources that rtbci did not write: plain pylsl outlets coded the ordinary way, and MNE-LSL's player.

A lab's acquisition software pushes whatever chunk size it uses and stamps
samples its own way. These sources do the same, with nothing from rtbci: a
plain ``pylsl.StreamOutlet`` fed in real time (as a vendor's LSL app is
written), and ``mne_lsl.player.PlayerLSL`` playing a FIF file (a player no
one here wrote). The conformance tests and ``rtbci bench conformance`` run
the engine against them.

Stampings of a plain outlet:

- ``sample``: each sample carries its own acquisition time (``t0 + k/rate``);
- ``chunk``: one timestamp per chunk, the newest sample's acquisition time
  (liblsl back-dates the others by the nominal rate);
- ``push``: no timestamp at all, so liblsl stamps the chunk when it is pushed.

PlayerLSL stamps each chunk's newest sample one chunk ahead of the push
(its documented convention), so its stamps run ahead of the clock.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pylsl

__all__ = ["STAMPINGS", "OutsideStream", "PlayerSource", "PylslSource", "SourceProcess", "make_samples"]

STAMPINGS = ("sample", "chunk", "push")


@dataclass(frozen=True)
class OutsideStream:
    """One stream of an outside source.

    Attributes
    ----------
    name, type, source_id
        How the stream is announced (a profile resolves it by these).
    channels, rate
        Channel count and nominal rate (Hz).
    chunk
        Samples per pushed chunk.
    stamping
        One of :data:`STAMPINGS` (plain pylsl outlets only).
    delay_s
        Extra time between a chunk's last sample and its push (a slower acquisition path).
    counts
        Integer spike counts (int16) instead of float32 voltages.
    """

    name: str
    type: str
    source_id: str
    channels: int
    rate: float
    chunk: int
    stamping: str = "sample"
    delay_s: float = 0.0
    counts: bool = False


def make_samples(stream: OutsideStream, seconds: float, seed: int) -> np.ndarray:
    """Samples for a stream: Poisson spike counts, or a noisy LFP-like voltage with a 20 Hz rhythm."""
    rng = np.random.default_rng(seed)
    n = round(seconds * stream.rate)
    if stream.counts:
        return rng.poisson(0.03, (n, stream.channels)).astype(np.int16)
    t = np.arange(n) / stream.rate
    rhythm = 40.0 * np.sin(2 * np.pi * 20.0 * t)[:, None]
    drift = np.cumsum(rng.standard_normal((n, stream.channels)), axis=0) * 0.5
    return (rhythm + drift + 10.0 * rng.standard_normal((n, stream.channels))).astype(np.float32)


class PylslSource(threading.Thread):
    """A plain pylsl outlet pushing recorded-in-advance samples in real time, chunk by chunk.

    The outlet is announced when the object is made; pushing starts with
    :meth:`start_at`. Sample ``k`` is acquired at ``t0 + k/rate``; a chunk is
    pushed once its newest sample is acquired (plus ``stream.delay_s``).

    Parameters
    ----------
    stream
        What to announce and how to chunk and stamp.
    samples
        ``(n, channels)`` samples to push.
    """

    def __init__(self, stream: OutsideStream, samples: np.ndarray) -> None:
        super().__init__(name=f"pylsl-source-{stream.name}", daemon=True)
        if stream.stamping not in STAMPINGS:
            raise ValueError(f"stamping must be one of {STAMPINGS}, got {stream.stamping!r}")
        self.stream = stream
        self.samples = samples
        self.t0 = 0.0
        info = pylsl.StreamInfo(
            stream.name,
            stream.type,
            stream.channels,
            stream.rate,
            "int16" if stream.counts else "float32",
            stream.source_id,
        )
        self.outlet = pylsl.StreamOutlet(info)
        self.stop_requested = threading.Event()
        self.pushed = 0

    def start_at(self, t0: float) -> PylslSource:
        """Start pushing; sample 0 is acquired at LSL time ``t0`` (sources that share it acquire together)."""
        self.t0 = t0
        self.start()
        return self

    def run(self) -> None:
        stream, period = self.stream, 1.0 / self.stream.rate
        for start in range(0, len(self.samples), stream.chunk):
            if self.stop_requested.is_set():
                break
            chunk = self.samples[start : start + stream.chunk]
            stamps = self.t0 + (start + np.arange(len(chunk))) * period
            wait = stamps[-1] + stream.delay_s - pylsl.local_clock()
            if wait > 0:
                time.sleep(wait)
            if stream.stamping == "sample":
                self.outlet.push_chunk(chunk, stamps.tolist())
            elif stream.stamping == "chunk":
                self.outlet.push_chunk(chunk, float(stamps[-1]))
            else:
                self.outlet.push_chunk(chunk)
            self.pushed += len(chunk)

    def close(self) -> None:
        """Stop pushing and take the outlet down."""
        self.stop_requested.set()
        self.join(10.0)
        del self.outlet


class PlayerSource:
    """MNE-LSL's ``PlayerLSL`` playing samples written to a FIF file (a player rtbci did not write).

    It plays the samples once. (Looping is avoided on purpose: mne-lsl 1.14's
    player steps its timestamps back by the file's length each time it loops.)

    Parameters
    ----------
    stream
        Name, source_id, rate and chunk size of the player (its stream type is MNE's channel type).
    samples
        ``(n, channels)`` samples; the player sends them as float64.
    """

    def __init__(self, stream: OutsideStream, samples: np.ndarray) -> None:
        import mne
        from mne_lsl.player import PlayerLSL

        self.stream = stream
        self._folder = tempfile.TemporaryDirectory(prefix="rtbci-player-")
        info = mne.create_info([f"ch{i:03d}" for i in range(stream.channels)], stream.rate, "misc")
        raw = mne.io.RawArray(samples.T.astype(np.float64), info, verbose="error")
        path = Path(self._folder.name) / f"{stream.name}_raw.fif"
        raw.save(path, verbose="error")
        self.player = PlayerLSL(
            path, chunk_size=stream.chunk, n_repeat=1, name=stream.name, source_id=stream.source_id
        )

    def start_at(self, t0: float) -> PlayerSource:
        """Start streaming now (the player keeps its own clock; ``t0`` is not used)."""
        self.player.start()
        return self

    def close(self) -> None:
        """Stop streaming (if the file has not ended yet) and remove the file."""
        if self.player.running:
            self.player.stop()
        self._folder.cleanup()


def _serve(
    kind: str,
    streams: list[OutsideStream],
    seconds: float,
    seed: int,
    priority: int | None,
    ready,
    start_at,
    stop,
) -> None:
    if priority is not None:
        # A rig's acquisition runs on hardware of its own; with the engine at real-time priority, the
        # source gets the same, so that both only compete with the rest of the machine.
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    make = PlayerSource if kind == "player" else PylslSource
    sources = [make(stream, make_samples(stream, seconds, seed + k)) for k, stream in enumerate(streams)]
    ready.set()
    t0 = start_at.get()
    for source in sources:
        source.start_at(t0)
    stop.wait()
    for source in sources:
        source.close()


class SourceProcess:
    """Outside sources pushing from a process of their own, as a rig's acquisition software does.

    In the process that runs the engine, a source thread would share its
    interpreter lock and be slowed by it; a rig never is.

    Parameters
    ----------
    kind
        ``"pylsl"`` (plain outlets) or ``"player"`` (MNE-LSL's PlayerLSL).
    streams
        The streams to serve, all from this one process.
    seconds, seed
        How much data, and its seed (stream ``k`` uses ``seed + k``).
    realtime_priority
        SCHED_FIFO priority of the source process (needs root); None keeps the default policy.
    """

    def __init__(
        self,
        kind: str,
        streams: list[OutsideStream],
        seconds: float,
        seed: int,
        realtime_priority: int | None = None,
    ) -> None:
        context = mp.get_context("spawn")
        self._ready, self._stop = context.Event(), context.Event()
        self._start_at = context.Queue()
        self.process = context.Process(
            target=_serve,
            args=(kind, streams, seconds, seed, realtime_priority, self._ready, self._start_at, self._stop),
            daemon=True,
        )
        self.process.start()
        # Plain outlets are announced once the child is ready; the player announces when it starts.
        if not self._ready.wait(60.0):
            self.close()
            raise RuntimeError("the outside source process did not start")

    def start_at(self, t0: float) -> SourceProcess:
        """Start pushing, sample 0 acquired at LSL time ``t0`` (the player starts at once)."""
        self._start_at.put(t0)
        return self

    def close(self) -> None:
        """Stop the sources and end the process."""
        self._stop.set()
        self.process.join(10.0)
        if self.process.is_alive():
            self.process.terminate()
