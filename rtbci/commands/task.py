"""``rtbci task --profile P``: the cursor task on the decoder's LSL output.

::

    rtbci task --profile profiles/demo.toml [--trials N] [--seconds S] [--assist A] [--gain G] [--targets T]

reads the decoded velocity from the profile's ``[streams.output]``, runs the ``[task]`` trials on
it, publishes the task stream and its markers over LSL, and prints the block's metrics as JSON when
it stops (Ctrl-C, SIGTERM, ``--trials`` or ``--seconds``).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from rtbci.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "task",
        description=(
            "Run the cursor task of a profile's [task] on the decoder's LSL output: integrate the "
            "decoded velocity into a cursor, run centre-out or random-target trials, publish the task "
            "stream (cursor, target, trial state and id) and its trial events over LSL, and print the "
            "metrics (success rate, time to target, path efficiency, Fitts bits/s) as JSON at the end."
        ),
    )
    parser.add_argument("--profile", type=Path, required=True, help="rig profile ([streams.output], [task])")
    parser.add_argument("--trials", type=int, metavar="N", help="stop after N finished trials")
    parser.add_argument("--seconds", type=float, help="stop after this many seconds (default: until ^C)")
    parser.add_argument("--assist", type=float, metavar="A", help="override [task] assist (0..1)")
    parser.add_argument(
        "--gain", type=float, metavar="G", help="override [task] gain (cursor velocity = G x decoded)"
    )
    parser.add_argument("--targets", choices=["center_out", "random"], help="override [task] targets")
    parser.add_argument(
        "--wait",
        type=float,
        default=60.0,
        metavar="S",
        help="how long to wait for the decoder's output stream (default 60 s; start the engine any time)",
    )
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the metrics to this file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # pylsl and numpy load only when run, so that `rtbci task --help` stays fast.
    import tomllib

    from rtbci.profile import ProfileError, load_profile, profile_from_dict
    from rtbci.task.metrics import summarize
    from rtbci.task.publisher import TaskPublisher

    for name in ("trials", "seconds", "wait"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            raise UserError(f"--{name} must be > 0, got {value}")
    profile = load_profile(args.profile)
    given = (("assist", args.assist), ("gain", args.gain), ("targets", args.targets))
    overrides = {key: value for key, value in given if value is not None}
    if overrides:
        data = tomllib.loads(args.profile.read_text(encoding="utf-8"))
        data["task"] = {**data.get("task", {}), **overrides}
        try:
            profile = profile_from_dict(data, args.profile)
        except ProfileError as error:
            raise UserError(f"{error} (from the command line)") from None
    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stop.set())
    with TaskPublisher(profile) as publisher:
        print("rtbci task:", *publisher.describe(), sep="\n", file=sys.stderr, flush=True)
        result = publisher.run(stop, seconds=args.seconds, trials=args.trials, wait_s=args.wait)
    report = {"profile": str(profile.path), "bins": result.bins, "seconds": result.seconds}
    if result.results:
        report.update(summarize(result.results).as_dict())
    else:
        report["trials"] = 0
    text = json.dumps(report, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n", encoding="utf-8")
    return 0
