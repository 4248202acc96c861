"""The ``rtbci`` command line.

Each subcommand lives in its own module under :mod:`rtbci.commands` and only
parses its arguments and calls into the library. A module there provides
``register(subparsers)``, which adds its parser and sets ``func`` to a function
that takes the parsed arguments and returns an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from rtbci.errors import UserError

__all__ = ["main"]

# One line per subcommand module, in the order `rtbci --help` lists them.
COMMAND_MODULES = [
    "rtbci.commands.check",
    "rtbci.commands.info",
    "rtbci.commands.importer",
    "rtbci.commands.simulate",
    "rtbci.commands.train",
    "rtbci.commands.export",
    "rtbci.commands.bench",
    "rtbci.commands.run",
    "rtbci.commands.replay",
    "rtbci.commands.latency",
    "rtbci.commands.app",
    "rtbci.commands.demo",
    "rtbci.commands.calibrate",
]


def build_parser() -> argparse.ArgumentParser:
    """The parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="rtbci", description="Real-time closed-loop BCI decoder over Lab Streaming Layer."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code.

    A :class:`~rtbci.errors.UserError` (bad file, bad profile, missing stream)
    prints one clear message and exits 2 instead of showing a traceback.
    """
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as error:
        print(f"rtbci {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
