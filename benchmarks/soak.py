"""Soak: an hour of simulated data replayed as fast as possible through the engine; its memory must stay flat.

Replay and engine run in separate processes over real LSL, as in ``rtbci latency``.
The engine process samples its own RSS every second. At ``--speed max`` the replay
follows the engine's output stream (:class:`rtbci.replay_follow.OutputFollower`):
it runs as fast as the engine decodes, so every bin of the hour is decoded and
the JSON reports the throughput. A finite ``--speed`` is a fixed pace instead.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.engine_setup import benchmark_profile, default_artifact, simulated_file
from rtbci.commands.replay import parse_speed
from rtbci.latency.harness import LatencyRun, run_latency_test


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--default-size",
        dest="demo_model",
        action="store_false",
        help="run the default-size architecture (random weights) instead of the bundled demo decoder",
    )
    parser.add_argument("--hours", type=float, default=1.0, help="hours of recorded data to play (default 1)")
    parser.add_argument(
        "--speed", type=parse_speed, default=None, help="replay speed: N or max (default max)"
    )
    parser.add_argument("--file", type=Path, help="Session to loop (default: 5 simulated minutes)")


def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="rtbci-bench-soak-") as tmp:
        folder = Path(tmp)
        session_file = args.file or simulated_file(folder, 5.0)
        profile = benchmark_profile(folder, None if args.demo_model else default_artifact(folder))
        run_spec = LatencyRun(
            session_file, profile, args.hours * 3600.0, speed=args.speed, seconds_are_media=True
        )
        began = time.monotonic()
        summary, records = run_latency_test(run_spec)
        wall_s = time.monotonic() - began
    push_times = records["t_push"]
    decode_span_s = float(push_times[-1] - push_times[0])
    rss = summary["engine_rss_mb"]
    expected_bins = round(args.hours * 3600.0 / 0.02)
    return {
        "hours_of_data": args.hours,
        "speed": summary["speed"],
        "rss_start_mb": rss["start"],
        "rss_end_mb": rss["end"],
        "rss_max_mb": rss["max"],
        "rss_growth_mb": rss["end"] - rss["start"],
        "rss_series_mb": rss["series"],
        "bins_decoded": summary["bins"],
        "bins_with_input": summary["bins_with_input"],
        "bins_in_data": expected_bins,
        "bins_undecoded_at_end": summary["bins_undecoded_at_end"],
        # Wall time of the whole test (process start-up and model loading included), and the rate
        # at which bins were decoded, first push to last.
        "wall_s": wall_s,
        "decode_span_s": decode_span_s,
        "bins_per_second_decoded": (len(push_times) - 1) / decode_span_s if decode_span_s > 0 else None,
        "late": summary["late"],
        "overdue": summary["overdue"],
        "dropped": summary["dropped"],
        "duplicated": summary["duplicated"],
        "gap_bins": summary["gap_bins"],
        "input_gaps": {role: health["gaps"] for role, health in summary["engine"]["inputs"].items()},
        "decoder": summary["decoder"],
        "replay": summary["replay"],
        "engine": summary["engine"],
        "load_average_before": summary["load_average_before"],
        "load_average_after": summary["load_average_after"],
    }
