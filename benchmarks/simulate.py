"""Simulator: offline generation speed, and the live LSL source's pacing and drift.

Offline, one session of ``--minutes`` is simulated (96 electrodes by default)
and every one-second block is timed. Live, the rig streams for
``--live-seconds`` over LSL on loopback while a real inlet reads the spikes;
for every chunk it records how late the chunk arrives after its last sample's
timestamp. Reported:

- ``offline.seconds`` and ``offline.realtime_factor``: wall time for the whole
  session and simulated seconds per wall second;
- ``offline.per_block``: p50/p99/p99.9/max time to generate one second of every stream;
- ``live.arrival_lateness``: p50/p99/p99.9/max of (time read − timestamp of the
  chunk's last sample), which includes LSL transport;
- ``live.drift_ms_per_min``: slope of that lateness over the run; pacing
  against the clock keeps it near zero;
- ``live.samples_per_second``: samples read over the LSL time they span (1000 at 1 kHz).
"""

from __future__ import annotations

import argparse
import threading
import time
import tomllib
import uuid
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from rtbci.lsl import require_pylsl
from rtbci.profile import Profile, profile_from_dict
from rtbci.sim import SimConfig, simulate_session
from rtbci.sim.live import LiveRigSource
from rtbci.timing import latency_summary_ms

DEMO_PROFILE = Path(__file__).resolve().parents[1] / "profiles" / "demo.toml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--minutes", type=float, default=10.0, help="offline session length")
    parser.add_argument("--arrays", type=int, default=1, help="96-electrode arrays")
    parser.add_argument("--live-seconds", type=float, default=20.0, help="live streaming time; 0 skips")
    parser.add_argument("--seed", type=int, default=0)


def _offline(args: argparse.Namespace) -> dict:
    config = SimConfig(array_names=tuple(f"array{a}" for a in range(args.arrays)))
    simulate_session(config, 0, 0, 0.05, args.seed)  # compile the numba kernels first
    marks = [time.perf_counter()]

    def mark(samples: int) -> None:
        marks.append(time.perf_counter())
        bar.update(samples)

    with tqdm(
        total=round(args.minutes * 60 * config.rate_hz), unit="s", unit_scale=1 / config.rate_hz
    ) as bar:
        simulate_session(config, 0, 0, args.minutes, args.seed, on_progress=mark)
    wall = marks[-1] - marks[0]
    return {
        "minutes": args.minutes,
        "channels": config.n_channels,
        "seconds": wall,
        "realtime_factor": args.minutes * 60.0 / wall,
        "per_block": latency_summary_ms(np.diff(marks)),
    }


def _private_demo_profile() -> Profile:
    """The demo profile with stream names no other process on this machine uses."""
    data = tomllib.loads(DEMO_PROFILE.read_text(encoding="utf-8"))
    tag = uuid.uuid4().hex[:8]
    for spec in data["streams"].values():
        for key in ("name", "source_id"):
            spec[key] = f"{spec[key]}-bench-{tag}"
    data.pop("model", None)
    return profile_from_dict(data, DEMO_PROFILE)


def _live(args: argparse.Namespace) -> dict:
    pylsl = require_pylsl()
    profile = _private_demo_profile()
    source = LiveRigSource(profile, seed=args.seed)
    stop = threading.Event()
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(stats=source.run(stop)), daemon=True)
    thread.start()
    try:
        found = pylsl.resolve_byprop("name", profile.streams.spikes.name, minimum=1, timeout=10.0)
        if not found:
            raise RuntimeError(f"stream {profile.streams.spikes.name!r} did not appear")
        inlet = pylsl.StreamInlet(found[0], max_buflen=5)
        inlet.open_stream(timeout=5.0)
        lateness, read_at, first_stamp, last_stamp, samples = [], [], None, None, 0
        deadline = time.monotonic() + args.live_seconds
        while time.monotonic() < deadline:
            # One chunk at a time: a larger max_samples makes liblsl wait to fill it.
            _, stamps = inlet.pull_chunk(timeout=0.1, max_samples=source.chunk_samples)
            if not stamps:
                continue
            now = pylsl.local_clock()
            lateness.append(now - stamps[-1])
            read_at.append(now)
            first_stamp = stamps[0] if first_stamp is None else first_stamp
            last_stamp = stamps[-1]
            samples += len(stamps)
    finally:
        stop.set()
        thread.join(timeout=10.0)
    stats = result["stats"]
    slope_s_per_s = np.polyfit(np.asarray(read_at) - read_at[0], lateness, 1)[0]
    return {
        "seconds": args.live_seconds,
        "chunks_read": len(lateness),
        "arrival_lateness": latency_summary_ms(np.asarray(lateness)),
        "drift_ms_per_min": float(slope_s_per_s * 1000.0 * 60.0),
        "samples_per_second": float((samples - 1) / (last_stamp - first_stamp)),
        "source_late_chunks_over_5ms": stats.late_chunks,
        "source_chunks": stats.chunks,
        "source_max_lateness_ms": 1000.0 * stats.max_lateness_s,
    }


def run(args: argparse.Namespace) -> dict:
    report = {"offline": _offline(args)}
    if args.live_seconds > 0:
        report["live"] = _live(args)
    return report
