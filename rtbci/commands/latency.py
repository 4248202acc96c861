"""``rtbci latency FILE --profile P [--backend B] [--seconds N] [--json OUT] [--plot OUT.png]``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "latency", help="replay a Session in real time into the engine over LSL and measure latency"
    )
    parser.add_argument("file", type=Path, help="Session file (.h5) to replay")
    parser.add_argument("--profile", type=Path, required=True, help="rig profile (streams, decoder)")
    parser.add_argument(
        "--backend", choices=["onnxruntime", "torch", "tensorrt"], help="override the profile"
    )
    parser.add_argument(
        "--seconds", type=float, default=60.0, help="seconds of replay to measure (default 60)"
    )
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the full summary JSON here")
    parser.add_argument("--plot", type=Path, metavar="OUT.png", help="write a histogram and a timeline here")
    parser.add_argument(
        "--realtime-priority", type=int, metavar="1-99", help="run the decode thread SCHED_FIFO (needs root)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # The engine, h5py and the plot load only when run, so that `rtbci latency --help` is fast.
    from rtbci.io.store import read_session_info
    from rtbci.latency.harness import LatencyRun, run_latency_test
    from rtbci.latency.plot import plot_latency
    from rtbci.latency.summary import format_summary
    from rtbci.profile import load_profile
    from rtbci.provenance import describe_decoder

    # A bad profile or session file fails here, in one line, rather than in a child process.
    decoder = describe_decoder(load_profile(args.profile))
    read_session_info(args.file)
    print(f"rtbci latency: {decoder}", flush=True)
    summary, records = run_latency_test(
        LatencyRun(
            session_file=args.file,
            profile_file=args.profile,
            seconds=args.seconds,
            backend=args.backend,
            realtime_priority=args.realtime_priority,
        )
    )
    summary["decoder_description"] = decoder
    print(f"decoder: {decoder}")
    print(format_summary(summary))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    if args.plot:
        plot_latency(records, summary, args.plot)
    return 0
