"""End-to-end latency over real LSL: a simulated session replayed in real time into the engine.

Replay and engine run in separate processes.

Runs the bundled demo decoder (``profiles/demo.toml``; ``--default-size`` for the
default-size architecture with random weights) on ONNX Runtime and reports what
``rtbci latency`` reports, with the two latencies apart: processing (push
minus the read of the chunk that completed the bin: what rtbci controls) and
source (push minus the LSL timestamp of the bin's last input sample: adds the
replay's 10-sample chunking), plus decoder-only latency, late, overdue,
dropped and duplicated bins. Goals over 10 minutes: source p50 <= 1.5 ms,
p99 <= 3 ms, max <= 20 ms, zero dropped or duplicated bins. The machine's
load average is reported with the figures: they are only as quiet as the
machine was. ``rtbci bench conformance`` measures the same against sources
rtbci did not write.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from benchmarks.engine_setup import benchmark_profile, default_artifact, simulated_file
from rtbci.latency.harness import LatencyRun, run_latency_test
from rtbci.latency.plot import plot_latency

# Source latency (the README's historical end-to-end figure) and bin accounting.
GOALS = {"p50_ms": 1.5, "p99_ms": 3.0, "max_ms": 20.0, "dropped": 0, "duplicated": 0}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--default-size",
        dest="demo_model",
        action="store_false",
        help="run the default-size architecture (random weights) instead of the bundled demo decoder",
    )
    parser.add_argument("--seconds", type=float, default=600.0, help="seconds of replay (default 600)")
    parser.add_argument("--file", type=Path, help="Session to replay (default: 2 simulated minutes, looped)")
    parser.add_argument("--plot", type=Path, metavar="OUT.png", help="histogram and timeline")
    parser.add_argument("--record", action="store_true", help="have the engine record while measured")
    parser.add_argument(
        "--realtime-priority", type=int, metavar="1-99", help="run the decode thread SCHED_FIFO (needs root)"
    )


def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="rtbci-bench-latency-") as tmp:
        folder = Path(tmp)
        session_file = args.file or simulated_file(folder, 2.0)
        profile = benchmark_profile(folder, None if args.demo_model else default_artifact(folder))
        run_spec = LatencyRun(
            session_file,
            profile,
            args.seconds,
            realtime_priority=args.realtime_priority,
            record=folder / "recording.h5" if args.record else None,
        )
        summary, records = run_latency_test(run_spec)
    if args.plot:
        plot_latency(records, summary, args.plot)
    summary["goals"] = GOALS
    measured = {**{key: summary["source"][key] for key in ("p50_ms", "p99_ms", "max_ms")}, **summary}
    summary["goals_met"] = {key: measured[key] <= goal for key, goal in GOALS.items()}
    return summary
