"""``rtbci info FILE [--json]``: summarise a Session file."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("info", description="Summarise a Session (.h5) file.")
    parser.add_argument("file", help="Session file")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rtbci.io.summary import format_summary, summarize_session  # h5py loads only when run

    summary = summarize_session(args.file)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0
