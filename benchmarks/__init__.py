"""Reproducible benchmarks, run through ``rtbci bench NAME``.

Each module provides ``add_arguments(parser)`` for its own options and
``run(args) -> dict``; the dict is printed as JSON and optionally written to
``--json OUT`` so that a script can compare runs.
"""

import argparse

from rtbci.sim.config import SIM_PRESETS


def add_preset_argument(parser: argparse.ArgumentParser) -> None:
    """``--preset NAME``: the simulator settings to simulate with (:func:`rtbci.sim.config.sim_preset`)."""
    parser.add_argument(
        "--preset",
        default="default",
        choices=SIM_PRESETS,
        help="simulator preset: 'default' (today's), or 'v1' (before issue 31) to reproduce older figures",
    )
