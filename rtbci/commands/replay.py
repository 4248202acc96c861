"""``rtbci replay FILE [--speed 1|N|max] [--loop] [--follow]``: play a Session file as live LSL streams."""

from __future__ import annotations

import argparse
import json

from rtbci.errors import UserError


def parse_speed(text: str) -> float | None:
    """``max`` -> None (as fast as possible); otherwise a positive number."""
    if text == "max":
        return None
    try:
        speed = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--speed must be a number or 'max', got {text!r}") from None
    if not speed > 0:
        raise argparse.ArgumentTypeError(f"--speed must be > 0, got {text!r}")
    return speed


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "replay", description="Play a Session file as LSL streams (real time, N×, or as fast as possible)."
    )
    parser.add_argument("file", help="Session file (.h5)")
    parser.add_argument("--speed", type=parse_speed, default=1.0, help="1 (real time), N, or max")
    parser.add_argument("--loop", action="store_true", help="start again at the end, forever")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")
    parser.add_argument(
        "--profile",
        help="publish spikes/LFP/behavior under this profile's stream names, so `rtbci run` finds them",
    )
    parser.add_argument("--prefix", default="rtbci-replay-", help="name prefix for the other streams")
    parser.add_argument("--report", action="store_true", help="print a JSON timing report at the end")
    parser.add_argument(
        "--follow",
        action="store_true",
        help="never run more than --lead s ahead of the decoder's output stream (the profile's "
        "streams.output): with --speed max, as fast as the decoder decodes; needs --profile",
    )
    parser.add_argument(
        "--lead", type=float, default=0.5, help="seconds of data --follow lets run ahead (default 0.5)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # h5py, numba and liblsl load only when run.
    from rtbci.io.store import read_session
    from rtbci.profile import load_profile
    from rtbci.replay import ReplayOptions, SessionPlayer, outlet_identities
    from rtbci.replay_follow import OutputFollower
    from rtbci.timing import latency_summary_ms

    profile = load_profile(args.profile) if args.profile else None
    session = read_session(args.file)  # a SessionFileError is a UserError
    identities = outlet_identities(session, profile, args.prefix)
    player = SessionPlayer(session, identities)
    for name, identity in identities.items():
        print(f"replay: {name} -> LSL {identity.name!r} ({identity.type}, source_id {identity.source_id})")
    follow = None
    if args.follow:
        if profile is None:
            raise UserError("--follow needs --profile: the profile names the decoder's output stream")
        follow = OutputFollower(profile.streams.output, lead_s=args.lead)
    try:
        report = player.run(
            ReplayOptions(speed=args.speed, loop=args.loop, seconds=args.seconds), follow=follow
        )
    finally:
        if follow is not None:
            follow.close()
    if args.report:
        summary = {
            "chunks": report.chunks,
            "loops": report.loops,
            "wall_s": report.wall_s,
            "media_s": report.media_s,
        }
        if args.speed is not None and report.push_times.size:
            summary["lateness"] = latency_summary_ms(report.lateness_s)
            summary["drift_ms"] = report.drift_s() * 1e3
        print(json.dumps(summary, indent=2))
    return 0
