"""``rtbci simulate``: write simulated Session files, or stream the simulated rig over LSL.

Files::

    rtbci simulate --out DIR --subjects 2 --sessions 5 --minutes 10 --seed 0

writes ``DIR/sim-S<k>-d<NN>.h5`` for every subject and session. Live::

    rtbci simulate --lsl --profile profiles/demo.toml [--seconds N] [--seed K]

streams spikes, LFP, behaviour and markers as the profile's ``[streams]`` name
them until interrupted (Ctrl-C or SIGTERM). Closed loop::

    rtbci simulate --lsl --closed-loop [--lockstep] --profile profiles/demo.toml

streams spikes and LFP of a simulated participant who watches the task stream of
``rtbci task --profile`` (:mod:`rtbci.sim.closed_loop`); ``--lockstep`` pushes each bin only
after the previous one's task frame came back.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from rtbci.errors import UserError

if TYPE_CHECKING:
    from rtbci.profile import Profile
    from rtbci.sim.closed_loop import ClosedLoopSource
    from rtbci.sim.live import LiveRigSource


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "simulate",
        description=(
            "Write simulated Session files DIR/sim-S<k>-d<NN>.h5 (one per subject and session), "
            "or stream the simulated rig live over LSL with the names of a profile's [streams]."
        ),
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="top seed; everything derives from it (default 0)"
    )
    parser.add_argument(
        "--session",
        type=int,
        default=0,
        metavar="D",
        help="session (day) index: the first one written with --out, the one streamed with --lsl "
        "(default 0). The demo decoder trained on sessions 0-15 of subject 0",
    )
    files = parser.add_argument_group("to files")
    files.add_argument("--out", type=Path, metavar="DIR", help="folder for the Session files")
    files.add_argument("--subjects", type=int, default=1, metavar="S", help="subjects 0..S-1 (default 1)")
    files.add_argument(
        "--sessions", type=int, default=1, metavar="N", help="sessions D..D+N-1 each (default 1)"
    )
    files.add_argument("--minutes", type=float, default=10.0, metavar="M", help="per session (default 10)")
    files.add_argument("--arrays", type=int, default=1, help="96-electrode arrays per subject (default 1)")
    live = parser.add_argument_group("live over LSL")
    live.add_argument("--lsl", action="store_true", help="stream the rig live instead of writing files")
    live.add_argument("--profile", type=Path, help="rig profile whose [streams] name the outlets")
    live.add_argument(
        "--seconds", type=float, help="stop after this much stream time (default: run until ^C)"
    )
    live.add_argument(
        "--from-minute",
        type=float,
        default=0.0,
        metavar="M",
        help="start streaming at minute M of the session; the minutes before are simulated, not sent",
    )
    closed = parser.add_argument_group("closed loop (with --lsl)")
    closed.add_argument(
        "--closed-loop",
        action="store_true",
        help="serve a simulated participant who watches `rtbci task` and intends toward its targets, "
        "instead of a reaching hand (run the engine and `rtbci task --profile P` alongside)",
    )
    closed.add_argument(
        "--lockstep",
        action="store_true",
        help="closed loop: push each bin only after the previous bin's task frame came back "
        "(as fast as the engine and LSL go) instead of in real time",
    )
    parser.set_defaults(func=run)


def _positive(name: str, value: float) -> None:
    if value <= 0:
        raise UserError(f"--{name} must be > 0, got {value}")


def _write_files(args: argparse.Namespace) -> int:
    # The simulator (numba), h5py and tqdm load only when run.
    from tqdm import tqdm

    from rtbci.io.store import write_session
    from rtbci.sim import SimConfig, session_id, simulate_session

    for name in ("subjects", "sessions", "minutes", "arrays"):
        _positive(name, getattr(args, name))
    config = SimConfig(
        array_names=tuple(f"array{a}" for a in range(args.arrays)) if args.arrays > 1 else ("M1-array",)
    )
    samples_per_session = round(args.minutes * 60.0 * config.rate_hz)
    if args.session < 0:
        raise UserError(f"--session must be >= 0, got {args.session}")
    days = range(args.session, args.session + args.sessions)
    jobs = [(subject, session) for subject in range(args.subjects) for session in days]
    args.out.mkdir(parents=True, exist_ok=True)
    written = []
    # Counted in samples, shown in simulated seconds.
    with tqdm(total=len(jobs) * samples_per_session, unit="s", unit_scale=1.0 / config.rate_hz) as bar:
        for subject, session in jobs:
            name = session_id(subject, session)
            bar.set_description(name)
            result = simulate_session(
                config,
                subject,
                session,
                args.minutes,
                args.seed,
                on_progress=bar.update,
            )
            path = args.out / f"{name}.h5"
            write_session(path, result)
            written.append(path)
    print(f"wrote {len(written)} session file(s) of {args.minutes:g} min:", *written, sep="\n  ")
    return 0


def _stream_live(args: argparse.Namespace) -> int:
    from rtbci.profile import load_profile
    from rtbci.sim.live import LiveRigSource

    if args.profile is None:
        raise UserError("--lsl needs --profile PROFILE.toml (e.g. profiles/demo.toml)")
    if args.seconds is not None:
        _positive("seconds", args.seconds)
    profile = load_profile(args.profile)
    if args.closed_loop:
        return _closed_loop(args, profile)
    source = LiveRigSource(profile, seed=args.seed, session=args.session, from_minute=args.from_minute)
    stats = _stream(source, args.seconds)
    print(
        f"stopped after {stats.seconds:.1f} s: {stats.chunks} chunks, {stats.markers} markers, "
        f"{stats.late_chunks} late (> 5 ms), worst {1000 * stats.max_lateness_s:.1f} ms late",
        flush=True,
    )
    return 0


def _stream(source: LiveRigSource | ClosedLoopSource, seconds: float | None):
    """Describe ``source``, then run it until ``seconds`` of stream, Ctrl-C or SIGTERM; its stats."""
    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stop.set())
    print("streaming over LSL:", *source.describe(), sep="\n", flush=True)
    return source.run(stop, seconds=seconds)


def _closed_loop(args: argparse.Namespace, profile: Profile) -> int:
    from rtbci.sim.closed_loop import ClosedLoopSource

    if args.from_minute:
        raise UserError("--from-minute is for the open-loop rig; a closed loop starts when the task does")
    if args.lockstep and profile.engine.late_deadline_ms < 1000.0:
        print(
            f"rtbci simulate: warning: [engine] late_deadline_ms is {profile.engine.late_deadline_ms:g}; "
            "in lockstep the engine decodes a bin with stand-ins if its round trip takes longer "
            "(set it to e.g. 2000 in the profile the engine runs)",
            file=sys.stderr,
        )
    source = ClosedLoopSource(profile, seed=args.seed, session=args.session, lockstep=args.lockstep)
    stats = _stream(source, args.seconds)
    print(
        f"stopped after {stats.stream_seconds:.1f} s of stream in {stats.seconds:.1f} s: {stats.bins} bins, "
        f"{stats.answers} task frames back, {stats.stalls} lockstep stalls",
        flush=True,
    )
    return 0


def run(args: argparse.Namespace) -> int:
    if (args.closed_loop or args.lockstep) and not args.lsl:
        raise UserError("--closed-loop and --lockstep stream live: add --lsl --profile PROFILE")
    if args.lockstep and not args.closed_loop:
        raise UserError("--lockstep paces a closed loop: add --closed-loop")
    if args.lsl:
        return _stream_live(args)
    if args.out is None:
        raise UserError("give --out DIR to write Session files, or --lsl --profile PROFILE to stream live")
    return _write_files(args)
