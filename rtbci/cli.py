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

# Subcommand name -> its module, in the order `rtbci --help` lists them.
COMMANDS: dict[str, str] = {
    "check": "rtbci.commands.check",
    "info": "rtbci.commands.info",
    "import": "rtbci.commands.importer",
    "simulate": "rtbci.commands.simulate",
    "train": "rtbci.commands.train",
    "export": "rtbci.commands.export",
    "bench": "rtbci.commands.bench",
    "run": "rtbci.commands.run",
    "replay": "rtbci.commands.replay",
    "latency": "rtbci.commands.latency",
    "app": "rtbci.commands.app",
    "demo": "rtbci.commands.demo",
    "calibrate": "rtbci.commands.calibrate",
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser with every subcommand, or with just ``only``.

    Building one subcommand imports only its module: ``rtbci simulate`` need
    not load torch, and ``rtbci run`` need not load the trainer.
    """
    parser = argparse.ArgumentParser(
        prog="rtbci", description="Real-time closed-loop BCI decoder over Lab Streaming Layer."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        if only is None or name == only:
            importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code.

    A :class:`~rtbci.errors.UserError` (bad file, bad profile, missing stream)
    prints one clear message and exits 2 instead of showing a traceback.
    """
    argv = sys.argv[1:] if argv is None else argv
    command = argv[0] if argv and argv[0] in COMMANDS else None
    args = build_parser(command).parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as error:
        print(f"rtbci {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
