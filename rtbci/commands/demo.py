"""``rtbci demo [--headless] [--seconds N]``: the simulated rig, the bundled demo decoder, and the app.

With a display (``DISPLAY`` or ``WAYLAND_DISPLAY`` set) the dashboard opens; without one, or with
``--headless``, the demo decodes for ``--seconds`` and prints bins, latency and R² against the
simulated truth.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

_HEADLESS_DEFAULT_S = 30.0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--profile",
        type=Path,
        help="simulated-rig profile (default: profiles/demo.toml, the bundled decoder)",
    )
    parser.add_argument("--headless", action="store_true", help="no window: decode, then print a summary")
    parser.add_argument(
        "--seconds",
        type=float,
        help=f"seconds to decode (headless default {_HEADLESS_DEFAULT_S:g}); a window then closes itself",
    )
    parser.add_argument(
        "--backend", choices=["onnxruntime", "torch", "tensorrt"], help="default: the best available"
    )
    parser.add_argument("--seed", type=int, default=0, help="simulation seed (default 0)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # The engine, the simulator and the decoder load only when run.
    from rtbci.demo import DEMO_PROFILE, best_backend, display_problem, private_copy, run_headless

    if args.seconds is not None and args.seconds <= 0:
        print(f"rtbci demo: --seconds must be > 0, got {args.seconds}", file=sys.stderr)
        return 2
    headless = args.headless
    problem = None if headless else display_problem()
    if problem is not None:  # e.g. DISPLAY set but no X server behind it: Qt would abort
        print(f"rtbci demo: {problem}: running headless", flush=True)
        headless = True
    # The demo's streams get a unique suffix, so two demos (or a demo and a rig) never cross on the network.
    with tempfile.TemporaryDirectory(prefix="rtbci-demo-") as folder:
        profile = private_copy(args.profile or DEMO_PROFILE, Path(folder))
        if headless:
            seconds = args.seconds or _HEADLESS_DEFAULT_S
            summary = run_headless(profile, seconds, args.backend, args.seed)
            print(f"rtbci demo: {seconds:g} s of the simulated rig through the decoder")
            print("\n".join(summary.lines()))
            return 0
        from apps.decoder.launch import run_demo_window  # Qt is imported here, never by rtbci itself

        return run_demo_window(profile, args.backend or best_backend(), args.seed, args.seconds)
