"""``rtbci import FILE --out FILE.h5``: convert an NWB, XDF or Blackrock (neo) recording to a Session file."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "import",
        description="Convert a recording (.nwb, .xdf, Blackrock .nev/.nsX or another format neo reads) "
        "to a Session file; an unsupported file is answered with the list of suffixes read.",
    )
    parser.add_argument("file", type=Path, help="recording to convert")
    parser.add_argument("--out", type=Path, required=True, metavar="FILE.h5", help="Session file to write")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument(
        "--keep-units", action="store_true", help="one spike count channel per unit, not per electrode"
    )
    parser.add_argument(
        "--spike-rate", type=float, default=1000.0, metavar="HZ", help="rate of the spike count stream"
    )
    parser.add_argument("--no-spike-events", action="store_true", help="do not keep each spike's exact time")
    parser.add_argument("--subject", help="subject to record (default: from the file)")
    parser.add_argument("--session-id", help="session id to record (default: from the file)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or summary")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # The readers (h5py, pynwb, pyxdf, neo) load only when run.
    from rtbci.io.importers import ImportOptions, SessionImportError, import_session
    from rtbci.io.store import write_session
    from rtbci.io.summary import format_summary, summarize_session

    if args.out.exists() and not args.overwrite:
        raise SessionImportError(f"{args.out}: already exists (pass --overwrite to replace it)")
    if args.spike_rate <= 0:
        raise SessionImportError(f"--spike-rate must be positive, got {args.spike_rate}")
    options = ImportOptions(
        spike_rate=args.spike_rate,
        keep_units=args.keep_units,
        spike_events=not args.no_spike_events,
        subject=args.subject,
        session_id=args.session_id,
        progress=not args.quiet,
    )
    session = import_session(args.file, options)
    write_session(args.out, session, progress=not args.quiet)
    if not args.quiet:
        print(format_summary(summarize_session(args.out)))
    return 0
