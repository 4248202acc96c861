"""``rtbci bench NAME [--json OUT]``: run a benchmark from ``benchmarks/`` and print JSON."""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

# Benchmark name -> module in the top-level ``benchmarks`` package.
BENCHMARKS: dict[str, str] = {
    "accuracy": "benchmarks.accuracy",
    "features": "benchmarks.features",
    "runtime": "benchmarks.runtime",
    "replay_drift": "benchmarks.replay_drift",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="run a benchmark and print its JSON")
    names = parser.add_subparsers(dest="benchmark", required=True, metavar="NAME")
    for name, module_name in BENCHMARKS.items():
        module = importlib.import_module(module_name)
        sub = names.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        sub.add_argument("--json", type=Path, metavar="OUT", help="also write the JSON here")
        module.add_arguments(sub)
        sub.set_defaults(func=run, bench_module=module_name)


def run(args: argparse.Namespace) -> int:
    result = importlib.import_module(args.bench_module).run(args)
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
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n", encoding="utf-8")
    return 0
