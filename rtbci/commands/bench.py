"""``rtbci bench NAME [--json OUT]``: run a benchmark from ``benchmarks/`` and print JSON."""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

from rtbci.errors import UserError

# Benchmark name -> module in the checkout's ``benchmarks`` folder.
BENCHMARKS: dict[str, str] = {
    "accuracy": "benchmarks.accuracy",
    "features": "benchmarks.features",
    "runtime": "benchmarks.runtime",
    "replay_drift": "benchmarks.replay_drift",
    "latency_e2e": "benchmarks.latency_e2e",
    "soak": "benchmarks.soak",
    "ingest": "benchmarks.ingest",
    "gui": "benchmarks.gui",
    "calibration": "benchmarks.calibration",
    "conformance": "benchmarks.conformance",
    "decodable": "benchmarks.decodable",
    "simulate": "benchmarks.simulate",
    "realism": "benchmarks.realism",
    "closed_loop": "benchmarks.closed_loop",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="run a benchmark and print its JSON",
        description="Run a benchmark from benchmarks/ and print its JSON. "
        "`rtbci bench NAME --help` lists the options of one benchmark.",
    )
    parser.add_argument("benchmark", choices=sorted(BENCHMARKS), metavar="NAME", help=", ".join(BENCHMARKS))
    parser.add_argument("options", nargs=argparse.REMAINDER, help="the benchmark's own options")
    parser.set_defaults(func=run)


def _benchmark_parser(name: str, module: ModuleType) -> argparse.ArgumentParser:
    # Built only for the benchmark that runs, so that one benchmark's imports
    # (torch, Qt, ...) never slow down or break the rest of the CLI.
    parser = argparse.ArgumentParser(prog=f"rtbci bench {name}", description=module.__doc__)
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the JSON here")
    module.add_arguments(parser)
    return parser


def _checkout() -> Path:
    """The source checkout holding ``benchmarks/``, put on ``sys.path``.

    The benchmarks are not installed with rtbci: they run from a clone, beside the
    ``rtbci`` package that an editable install (``make``) points at.
    """
    root = Path(__file__).resolve().parents[2]
    if not (root / "benchmarks" / "__init__.py").is_file():
        raise UserError(
            f"no benchmarks/ folder beside the rtbci package in {root}: the benchmarks run from a "
            "clone of the repository, with rtbci installed from it (`make install`)"
        )
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return root


def run(args: argparse.Namespace) -> int:
    _checkout()
    module = importlib.import_module(BENCHMARKS[args.benchmark])
    options = _benchmark_parser(args.benchmark, module).parse_args(args.options)
    result = module.run(options)
    result.setdefault("benchmark", args.benchmark)
    result.setdefault(
        "environment",
        {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "machine": platform.machine(),
            "argv": sys.argv[1:],
        },
    )
    text = json.dumps(result, indent=2)
    print(text)
    if options.json:
        options.json.parent.mkdir(parents=True, exist_ok=True)
        options.json.write_text(text + "\n", encoding="utf-8")
    return 0
