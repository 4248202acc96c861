"""Reproducible benchmarks, run through ``rtbci bench NAME``.

Each module provides ``add_arguments(parser)`` for its own options and
``run(args) -> dict``; the dict is printed as JSON and optionally written to
``--json OUT`` so that a script can compare runs.
"""
