"""The ``rtbci`` command line.

Each subcommand lives in its own module under :mod:`rtbci.commands` and only
parses its arguments and calls into the library. A module there provides
``register(subparsers)``, which adds its parser and sets ``func`` to a function
that takes the parsed arguments and returns an exit code. A module imports its
heavy dependencies (torch, ONNX Runtime, numba, h5py, Qt) inside ``func``, so that
``rtbci X --help`` stays fast; ``rtbci --help`` imports none of rtbci's own subcommand modules.

The packages built on top of rtbci (the calibration tool in ``calibrate/``, the
dashboard in ``apps/``) add their subcommands through the ``rtbci.commands`` entry
point group, each naming its own ``register`` module, so that ``rtbci`` never imports
them: without them installed, their subcommands are simply absent. Such a module also
carries ``SUMMARY``, its line in ``rtbci --help``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from dataclasses import dataclass
from importlib.metadata import entry_points

from rtbci.errors import UserError
from rtbci.lsl import LSL_VERBOSE_ENV

__all__ = ["COMMANDS", "PLUGIN_GROUP", "Command", "all_commands", "main"]

PLUGIN_GROUP = "rtbci.commands"


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
    "task": Command("rtbci.commands.task", "run the cursor task on the decoder's LSL output (closed loop)"),
    "replay": Command("rtbci.commands.replay", "play a Session file as LSL streams (real time, N×, max)"),
    "latency": Command(
        "rtbci.commands.latency", "replay a Session in real time into the engine over LSL and measure latency"
    ),
}


def all_commands() -> dict[str, Command]:
    """rtbci's own subcommands, then those that installed packages add through entry points.

    Returns
    -------
    dict of str to Command
        In the order ``rtbci --help`` lists them. A plugin's module is imported (it must stay
        light: its heavy imports go inside its ``run``) to read its ``SUMMARY``.
    """
    commands = dict(COMMANDS)
    for entry in sorted(entry_points(group=PLUGIN_GROUP), key=lambda entry: entry.name):
        if entry.name not in commands:  # rtbci's own command wins over a plugin of the same name
            commands[entry.name] = Command(entry.value, importlib.import_module(entry.value).SUMMARY)
    return commands


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
    for name, command in (all_commands() if only is None else _find(only)).items():
        importlib.import_module(command.module).register(subparsers)
        subparsers.choices[name].add_argument(
            "--verbose", action="store_true", help="also show liblsl's own log and other diagnostics"
        )
    return parser


def _find(name: str) -> dict[str, Command]:
    """Just the command ``name``, importing no other plugin; empty if there is none."""
    if name in COMMANDS:
        return {name: COMMANDS[name]}
    plugins = entry_points(group=PLUGIN_GROUP, name=name)
    return {entry.name: Command(entry.value, "") for entry in plugins}


def _print_overview(argv: list[str]) -> None:
    """``rtbci --help``, or the usage error for no or an unknown command; exits."""
    parser, subparsers = _top_parser()
    for name, command in all_commands().items():
        subparsers.add_parser(name, help=command.summary, add_help=False)
    parser.parse_args(argv)
    parser.error("give a COMMAND")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code.

    A :class:`~rtbci.errors.UserError` (bad file, bad profile, missing stream)
    prints one clear message on stderr and exits 2 instead of showing a traceback.
    """
    argv = sys.argv[1:] if argv is None else argv
    if not argv or not _find(argv[0]):
        _print_overview(argv)
    args = build_parser(argv[0]).parse_args(argv)
    if args.verbose:
        os.environ[LSL_VERBOSE_ENV] = "1"  # child processes (engine, simulated rig) inherit it
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # inside the try: a reader that left shows here, not at exit
        return code
    except UserError as error:
        print(f"rtbci {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `rtbci info FILE | head`: the reader left; nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit's flush
        return 0


if __name__ == "__main__":
    sys.exit(main())
