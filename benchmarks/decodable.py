"""Decodable: how much velocity a linear decoder can read from each modality of the simulator.

The accuracy goal "distilled LFP >= 0.8 x spike teacher" assumes the LFP carries
most of what the spikes carry. This measures it, without any model of ours:
for held-out sessions of one subject, ridge regression from the features of the
last ``--lags`` bins (LFP band powers, or spike counts) to velocity, fit on
more and more minutes before the scored block and scored on the last
``--scored-minutes``.

The penalty is the best of a grid **on the scored block**: every figure is an
upper bound for a linear decoder with that much data, not a fair score. The
point is the ceiling, which a fair decoder cannot beat.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from tqdm.auto import tqdm

from rtbci.profile import load_profile
from rtbci.signal import Normalizer, featurize
from rtbci.sim import SimConfig, session_id, simulate_session
from rtbci.train.data import SessionBins
from rtbci.train.metrics import r2_per_axis
from rtbci.train.readout import ridge_path, with_history

ALPHAS = (10.0, 100.0, 1000.0, 1e4, 1e5)
MODALITIES = ("lfp", "spikes")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="profiles/demo.toml", help="featurizer settings and subject")
    parser.add_argument("--sessions", type=int, nargs="+", default=[16, 17], help="session indices")
    parser.add_argument(
        "--fit-minutes", type=float, nargs="+", default=[5.0, 20.0, 58.0], help="training data sizes"
    )
    parser.add_argument("--scored-minutes", type=float, default=5.0, help="scored block at the end")
    parser.add_argument("--lags", type=int, nargs="+", default=[1, 5], help="bins of history per input")
    parser.add_argument("--seed", type=int, default=0, help="simulator seed")


def run(args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    profile = load_profile(args.profile)
    subject = int(profile.rig.subject.removeprefix("sim-S"))
    bins_per_minute = round(60.0 / profile.bin_s)
    scored_bins = round(args.scored_minutes * bins_per_minute)
    minutes = max(args.fit_minutes) + args.scored_minutes
    table: dict[str, dict[str, float]] = {}
    jobs = len(args.sessions) * len(MODALITIES) * len(args.lags) * len(args.fit_minutes)
    with tqdm(total=jobs, desc="decodable", unit="fit") as bar:
        for index in args.sessions:
            recording = simulate_session(SimConfig(), subject, index, minutes, seed=args.seed)
            bins = SessionBins.from_binned(featurize(recording, profile, progress=False), 0)
            velocity = bins.kinematics
            scored = slice(len(velocity) - scored_bins, len(velocity))
            row: dict[str, float] = {}
            for modality in MODALITIES:
                flat = bins.inputs(modality).reshape(len(velocity), -1).astype(np.float32)
                flat = Normalizer().fit(flat[: scored.start]).apply(flat)
                for lags in args.lags:
                    features = with_history(flat, lags)
                    for fit_minutes in args.fit_minutes:
                        fit = slice(max(0, scored.start - round(fit_minutes * bins_per_minute)), scored.start)
                        readouts = ridge_path(features[fit], velocity[fit], ALPHAS)
                        scores = [
                            float(np.mean(r2_per_axis(velocity[scored], readout.predict(features[scored]))))
                            for readout in readouts
                        ]
                        row[f"{modality} lags={lags} fit={fit_minutes:g}min"] = max(scores)
                        bar.update(1)
            table[session_id(subject, index)] = row
    keys = next(iter(table.values())).keys()
    mean = {key: float(np.mean([row[key] for row in table.values()])) for key in keys}
    return {
        "r2_upper_bound": mean,
        "per_session": table,
        "sessions": list(table),
        "note": "penalty chosen on the scored block: upper bounds for a linear decoder, not fair scores",
        "wall_minutes": (time.perf_counter() - started) / 60.0,
    }
