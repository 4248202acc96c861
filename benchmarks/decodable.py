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

A nonlinear decoder could read more than a linear one. So each modality also
trains the student's own architecture, supervised end to end (ridge head, then
:func:`rtbci.train.finetune.head_then_finetune`) on each fit block of the
session itself, and scores it fairly on the scored block: how the
architecture's R² grows with labelled data from the very session. A distilled
student read out on a short calibration block is not expected to beat the
largest block.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from tqdm.auto import tqdm

from benchmarks import add_preset_argument
from rtbci.metrics import r2_per_axis
from rtbci.profile import Profile, load_profile
from rtbci.signal import Normalizer, featurize
from rtbci.sim import session_id, simulate_session
from rtbci.sim.config import sim_preset
from rtbci.train.data import SessionBins
from rtbci.train.ddp import init_distributed
from rtbci.train.encoders import SIZES, fit_lfp_normalization, new_encoder
from rtbci.train.finetune import FinetuneConfig, head_then_finetune
from rtbci.train.head import score_decoder
from rtbci.train.loop import LoopConfig
from rtbci.train.readout import ridge_path, with_history
from rtbci.train.splits import BinBlock

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
    parser.add_argument(
        "--transformer-steps",
        type=int,
        default=3000,
        help="supervised steps of each transformer row (0: no transformer rows)",
    )
    parser.add_argument("--transformer-size", default="small", choices=sorted(SIZES), help="its encoder size")
    parser.add_argument("--seed", type=int, default=0, help="simulator and training seed")
    add_preset_argument(parser)


def _supervised_transformer(
    bins: SessionBins, modality: str, fit: slice, scored: slice, profile: Profile, args: argparse.Namespace
) -> float:
    """Fair R² on ``scored`` of the encoder trained end to end on ``fit`` (its last 10%: validation)."""
    val_bins = (fit.stop - fit.start) // 10
    train = bins.block(BinBlock(fit.start, fit.stop - val_bins))
    val = bins.block(BinBlock(fit.stop - val_bins, fit.stop))
    torch.manual_seed(args.seed)
    encoder = new_encoder(profile, modality, bins.lfp.shape[-1], 1, SIZES[args.transformer_size])
    if modality == "lfp":
        normalizer = fit_lfp_normalization([train])
        encoder.set_normalization(normalizer.mean, normalizer.std)
    loop = LoopConfig.in_memory(args.transformer_steps, FinetuneConfig().loop.lr, 16, args.seed)
    decoder = head_then_finetune(
        encoder,
        [train],
        [val],
        FinetuneConfig(loop=loop),
        init_distributed("cpu"),
        desc=f"{modality} transformer",
    )
    return float(np.mean(score_decoder(decoder, [bins.block(BinBlock(scored.start, scored.stop))])))


def _block_before(stop: int, n_bins: int) -> slice:
    """The ``n_bins`` bins before ``stop`` (fewer if the session starts later)."""
    return slice(max(0, stop - n_bins), stop)


def run(args: argparse.Namespace) -> dict:
    # One thread: on a shared 2-core machine, spinning OpenMP threads slow training down.
    torch.set_num_threads(1)
    started = time.perf_counter()
    profile = load_profile(args.profile)
    subject = int(profile.rig.subject.removeprefix("sim-S"))
    bins_per_minute = round(60.0 / profile.bin_s)
    scored_bins = round(args.scored_minutes * bins_per_minute)
    minutes = max(args.fit_minutes) + args.scored_minutes
    table: dict[str, dict[str, float]] = {}
    transformer_fits = args.fit_minutes if args.transformer_steps > 0 else []
    fits_per_modality = len(args.lags) * len(args.fit_minutes) + len(transformer_fits)
    jobs = len(args.sessions) * len(MODALITIES) * fits_per_modality
    with tqdm(total=jobs, desc="decodable", unit="fit") as bar:
        for index in args.sessions:
            recording = simulate_session(sim_preset(args.preset), subject, index, minutes, seed=args.seed)
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
                        fit = _block_before(scored.start, round(fit_minutes * bins_per_minute))
                        readouts = ridge_path(features[fit], velocity[fit], ALPHAS)
                        scores = [
                            float(np.mean(r2_per_axis(velocity[scored], readout.predict(features[scored]))))
                            for readout in readouts
                        ]
                        row[f"{modality} lags={lags} fit={fit_minutes:g}min"] = max(scores)
                        bar.update(1)
                for fit_minutes in transformer_fits:
                    fit = _block_before(scored.start, round(fit_minutes * bins_per_minute))
                    transformer = _supervised_transformer(bins, modality, fit, scored, profile, args)
                    row[f"{modality} transformer fit={fit_minutes:g}min (fair)"] = transformer
                    bar.update(1)
            table[session_id(subject, index)] = row
    keys = next(iter(table.values())).keys()
    mean = {key: float(np.mean([row[key] for row in table.values()])) for key in keys}
    return {
        "r2_upper_bound": mean,
        "per_session": table,
        "sessions": list(table),
        "preset": args.preset,
        "note": (
            "lags rows: penalty chosen on the scored block, upper bounds for a linear decoder, not fair; "
            "transformer rows: the encoder architecture trained end to end on the fit block, scored fairly"
        ),
        "wall_minutes": (time.perf_counter() - started) / 60.0,
    }
