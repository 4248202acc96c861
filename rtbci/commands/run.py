"""``rtbci run --profile P [--backend B] [--seconds N] [--record FILE]``: the headless decoder."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rtbci.glossary import definitions_text

_STATUS_EVERY_S = 0.5

EPILOG = f"""\
The status line and the JSON report at the end use these words:
{definitions_text()}
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the decoder on the profile's LSL streams (headless)",
        description="Run the decoder on the profile's LSL streams, with a live one-line status on\n"
        "stderr and a JSON report on stdout when it stops. Its first and last lines name\n"
        "the profile and the decoder artifact.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--profile", type=Path, required=True, help="rig profile (streams, decoder)")
    parser.add_argument(
        "--backend", choices=["onnxruntime", "torch", "tensorrt"], help="override the profile"
    )
    parser.add_argument("--seconds", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    parser.add_argument(
        "--record", type=Path, metavar="FILE.h5", help="record inputs, features, outputs, timing"
    )
    parser.add_argument(
        "--realtime-priority", type=int, metavar="1-99", help="run the decode thread SCHED_FIFO (needs root)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # The engine (numba, h5py, ONNX Runtime) loads only when run, so that `rtbci run --help` is fast.
    from rtbci.engine import Engine, EngineOptions
    from rtbci.engine.status import format_status
    from rtbci.profile import load_profile
    from rtbci.provenance import describe_decoder

    profile = load_profile(args.profile)
    decoder = describe_decoder(profile)
    print(f"rtbci run: {decoder}", file=sys.stderr, flush=True)
    engine = Engine.from_profile(
        profile,
        EngineOptions(backend=args.backend, record=args.record, realtime_priority=args.realtime_priority),
    )
    engine.start()
    print(f"rtbci run: decoding {profile.rig.name} with {engine.backend.info()}", file=sys.stderr)
    started = time.monotonic()
    try:
        while args.seconds is None or time.monotonic() - started < args.seconds:
            time.sleep(_STATUS_EVERY_S)
            engine.check_alive()
            line = format_status(engine.snapshot(), engine.recent())
            print(f"\r{line}\033[K", end="", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        print(file=sys.stderr)
        report = engine.stop()
    print(json.dumps({"decoder_description": decoder, **report}, indent=2, default=str))
    print(f"rtbci run: stopped; {decoder}", file=sys.stderr)
    return 0
