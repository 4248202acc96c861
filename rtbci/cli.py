"""The ``rtbci`` command line.

Each subcommand lives in its own module under :mod:`rtbci.commands` and only
parses its arguments and calls into the library. A module there provides
``register(subparsers)``, which adds its parser and sets ``func`` to a function
that takes the parsed arguments and returns an exit code. A module imports its
heavy dependencies (torch, ONNX Runtime, numba, h5py, Qt) inside ``func``, so that
``rtbci X --help`` stays fast; ``rtbci --help`` imports no subcommand module at all.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from dataclasses import dataclass

from rtbci.errors import UserError
from rtbci.lsl import LSL_VERBOSE_ENV

__all__ = ["COMMANDS", "Command", "main"]


@dataclass(frozen=True)
class Command:
    """One subcommand.

    Attributes
    ----------
    module
        The module under :mod:`rtbci.commands` that registers it.
    summary
        Its line in ``rtbci --help``.
    """

    module: str
    summary: str


# In the order `rtbci --help` lists them.
COMMANDS: dict[str, Command] = {
    "check": Command("rtbci.commands.check", "check that liblsl, ONNX Runtime and torch load"),
    "info": Command("rtbci.commands.info", "summarise a Session (.h5) file"),
    "import": Command(
        "rtbci.commands.importer", "convert .nwb, .xdf or Blackrock .nev/.nsX to a Session (.h5) file"
    ),
    "simulate": Command(
        "rtbci.commands.simulate",
        "simulate reaching sessions (spikes, LFP, behaviour) to files or live over LSL",
    ),
    "train": Command("rtbci.commands.train", "train the spike teacher, LFP student and behavior head"),
    "export": Command(
        "rtbci.commands.export",
        "export a decoder checkpoint as decoder.onnx + manifest.json (streaming step)",
    ),
    "bench": Command("rtbci.commands.bench", "run a benchmark and print its JSON"),
    "run": Command("rtbci.commands.run", "run the decoder on the profile's LSL streams (headless)"),
    "replay": Command("rtbci.commands.replay", "play a Session file as LSL streams (real time, N×, max)"),
    "latency": Command(
        "rtbci.commands.latency", "replay a Session in real time into the engine over LSL and measure latency"
    ),
    "app": Command("rtbci.commands.app", "open the decoder dashboard (PySide6) for a rig profile"),
    "demo": Command(
        "rtbci.commands.demo", "simulated rig + bundled demo decoder + dashboard (headless without a display)"
    ),
    "calibrate": Command(
        "rtbci.commands.calibrate",
        "fit the decoder to a new session in seconds, score it on held-out data, update the profile",
    ),
}


def _top_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    parser = argparse.ArgumentParser(
        prog="rtbci", description="Real-time closed-loop BCI decoder over Lab Streaming Layer."
    )
    return parser, parser.add_subparsers(dest="command", required=True, metavar="COMMAND")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser with every subcommand, or with just ``only`` (importing only its module).

    Every subcommand gets ``--verbose``: liblsl's own log (and other diagnostics) on stderr.
    """
    parser, subparsers = _top_parser()
    for name, command in COMMANDS.items():
        if only is None or name == only:
            importlib.import_module(command.module).register(subparsers)
            subparsers.choices[name].add_argument(
                "--verbose", action="store_true", help="also show liblsl's own log and other diagnostics"
            )
    return parser


def _print_overview(argv: list[str]) -> None:
    """``rtbci --help``, or the usage error for no or an unknown command; exits."""
    parser, subparsers = _top_parser()
    for name, command in COMMANDS.items():
        subparsers.add_parser(name, help=command.summary, add_help=False)
    parser.parse_args(argv)
    parser.error("give a COMMAND")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code.

    A :class:`~rtbci.errors.UserError` (bad file, bad profile, missing stream)
    prints one clear message on stderr and exits 2 instead of showing a traceback.
    """
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        _print_overview(argv)
    args = build_parser(argv[0]).parse_args(argv)
    if args.verbose:
        os.environ[LSL_VERBOSE_ENV] = "1"  # child processes (engine, simulated rig) inherit it
    try:
        return int(args.func(args) or 0)
    except UserError as error:
        print(f"rtbci {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
