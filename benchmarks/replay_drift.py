"""Replay timing at speed 1: per-chunk lateness and its drift over a long run (player and a real inlet).

The player schedules every chunk against an absolute target on the LSL clock.
Drift is the median lateness over the last minute minus that over the first
minute; a player that sleeps "one chunk period" after each push accumulates its
overshoot here (MNE-LSL's player was reported to play a 150 s file in 28 s).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import uuid
from pathlib import Path

import numpy as np

from rtbci.io.store import read_session, write_session
from rtbci.lsl import require_pylsl
from rtbci.replay import ReplayOptions, SessionPlayer, outlet_identities
from rtbci.sim import SimConfig, simulate_session
from rtbci.timing import latency_summary_ms


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=600.0, help="wall seconds to replay (default 600)")
    parser.add_argument("--file", type=Path, help="Session to replay (default: 2 simulated minutes, looped)")
    parser.add_argument("--window", type=float, default=60.0, help="seconds averaged at each end for drift")


def _drift_ms(times: np.ndarray, lag: np.ndarray, window_s: float) -> float:
    first = lag[times <= times[0] + window_s]
    last = lag[times >= times[-1] - window_s]
    return float((np.median(last) - np.median(first)) * 1e3)


def run(args: argparse.Namespace) -> dict:
    pylsl = require_pylsl()
    if args.file is None:
        scratch = Path(tempfile.mkdtemp(prefix="rtbci-drift-"))
        args.file = scratch / "sim-2min.h5"
        write_session(args.file, simulate_session(SimConfig(), 0, 0, 2.0, 5))
    session = read_session(args.file, ["lfp"])
    identities = outlet_identities(session, None, prefix=f"drift-{uuid.uuid4().hex[:8]}-")
    player = SessionPlayer(session, identities)
    received: list[tuple[float, float]] = []
    stop = threading.Event()

    def receive() -> None:
        info = pylsl.resolve_byprop("name", identities["lfp"].name, timeout=10.0)[0]
        inlet = pylsl.StreamInlet(info, max_buflen=2, processing_flags=pylsl.proc_clocksync)
        inlet.open_stream(10.0)
        while not stop.is_set():
            _, timestamps = inlet.pull_chunk(timeout=0.2, max_samples=4096, min_samples=1, as_numpy=True)
            if len(timestamps):
                received.append((pylsl.local_clock(), timestamps[-1]))

    receiver = threading.Thread(target=receive, daemon=True)
    receiver.start()
    player.wait_for_consumers(10.0)
    report = player.run(ReplayOptions(speed=1.0, loop=True, seconds=args.seconds))
    stop.set()
    receiver.join(5.0)
    arrivals = np.array(received)
    # Chunks that arrived in two parts (LSL delivers samples one by one) report their last part.
    inlet_lag = arrivals[:, 0] - arrivals[:, 1]
    full = inlet_lag < 0.005
    return {
        "seconds": report.wall_s,
        "media_seconds": report.media_s,
        "loops": report.loops,
        "chunks": report.chunks,
        "player_lateness": latency_summary_ms(report.lateness_s),
        "player_drift_ms": _drift_ms(report.target_times, report.lateness_s, args.window),
        "inlet_lag": latency_summary_ms(inlet_lag[full]),
        "inlet_drift_ms": _drift_ms(arrivals[full, 0], inlet_lag[full], args.window),
        "goal_drift_ms": 1.0,
    }
