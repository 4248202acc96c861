"""``rtbci demo [--headless] [--seconds N]``: the simulated rig, the bundled demo decoder, and the app.

With a display (``DISPLAY`` or ``WAYLAND_DISPLAY`` set) the dashboard opens; without one, or with
``--headless``, the demo starts the rig and the decoder (10-15 s; 30 s the first time), decodes
for ``--seconds`` and prints bins, latency and R² against the simulated truth. Its first lines and
its summary name the profile and the decoder artifact (:func:`rtbci.provenance.describe_decoder`).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

_HEADLESS_DEFAULT_S = 30.0


# Its line in `rtbci --help`.
SUMMARY = "simulated rig + bundled demo decoder + dashboard (headless without a display)"


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
        help=f"seconds to decode, after start-up (headless default {_HEADLESS_DEFAULT_S:g}); a window "
        "then closes itself",
    )
    parser.add_argument(
        "--backend", choices=["onnxruntime", "torch", "tensorrt"], help="default: the best available"
    )
    parser.add_argument("--seed", type=int, default=0, help="simulation seed (default 0)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # The engine, the simulator and the decoder load only when run.
    from rtbci.demo import (
        DEMO_PROFILE,
        best_backend,
        check_demo_profile,
        private_copy,
        run_headless,
    )
    from rtbci.display import display_problem
    from rtbci.provenance import describe_decoder

    if args.seconds is not None and args.seconds <= 0:
        print(f"rtbci demo: --seconds must be > 0, got {args.seconds}", file=sys.stderr)
        return 2
    headless = args.headless
    problem = None if headless else display_problem()
    if problem is not None:  # e.g. DISPLAY set but no X server behind it: Qt would abort
        print(f"rtbci demo: {problem}: running headless", flush=True)
        headless = True
    source = args.profile or DEMO_PROFILE
    decoder = describe_decoder(check_demo_profile(source))
    print(f"rtbci demo: {decoder}", flush=True)
    # The demo's streams get a unique suffix, so two demos (or a demo and a rig) never cross on the network.
    with tempfile.TemporaryDirectory(prefix="rtbci-demo-") as folder:
        profile = private_copy(source, Path(folder))
        if headless:
            seconds = args.seconds or _HEADLESS_DEFAULT_S
            print(
                "rtbci demo: starting the simulated rig and the decoder (10-15 s; about 30 s the "
                f"first time, while numba compiles), then {seconds:g} s of decoding",
                flush=True,
            )
            summary = run_headless(profile, seconds, args.backend, args.seed)
            print(f"rtbci demo: {seconds:g} s of the simulated rig through the decoder")
            print("\n".join(summary.lines()))
            print(f"decoder             {decoder}")
            return 0
        from apps.decoder.launch import run_demo_window  # Qt is imported here, never by rtbci itself

        code = run_demo_window(profile, args.backend or best_backend(), args.seed, args.seconds)
        print(f"rtbci demo: closed; {decoder}")
        return code
