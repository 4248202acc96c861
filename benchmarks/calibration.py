"""Calibration: Stage A on 2 minutes of a new session against a decoder trained from scratch on 20 minutes.

On simulated sessions of the demo subject that the profile's decoder never saw
(their session ids are not in its session table, so they were used neither in
pretraining nor in distillation), for each session:

- the last ``--heldout-seconds`` are the held-out block every score is taken on;
- ``stage_a``: ``rtbci calibrate`` (the real pipeline: Session file in, artifact out)
  on the 2 minutes before the held-out block plus the held-out block, which is then
  exactly the last 20% that calibration holds out;
- ``stage_b``: the same with ``--full``;
- ``scratch_20min``: a decoder of the same architecture, randomly initialised, trained
  with the same supervised loop on the 20 minutes before the held-out block.

Goals on a 2-core machine: Stage A fit <= 10 s and R² >= 0.9 x scratch; Stage B fit <= 120 s.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from calibrate import CalibrationConfig, run_calibration
from calibrate.previous import load_previous
from calibrate.scoring import CALIBRATED, PREVIOUS, RIDGE_RAW
from calibrate.split import CalibrationSplitConfig, split_calibration_block
from rtbci.io.session import Session, Stream
from rtbci.io.store import write_session
from rtbci.metrics import r2_per_axis
from rtbci.models.decoder import Decoder
from rtbci.models.encoder import Encoder
from rtbci.models.heads import RidgeHead
from rtbci.profile import load_profile
from rtbci.signal import featurize
from rtbci.sim import SimConfig, session_id, simulate_session
from rtbci.timing import latency_summary_ms
from rtbci.train.data import SessionBins
from rtbci.train.encoders import fit_lfp_normalization
from rtbci.train.finetune import FinetuneConfig
from rtbci.train.session_fit import block_latents
from rtbci.train.stage_b import STAGE_B_FINETUNE, StageBConfig, run_stage_b

DEMO_PROFILE = "profiles/demo.toml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default=DEMO_PROFILE, help="profile whose [model] is the base decoder")
    parser.add_argument("--sessions", type=int, default=2, help="held-out sessions of the subject")
    parser.add_argument("--calibration-minutes", type=float, default=2.0, help="Stage A/B training data")
    parser.add_argument("--scratch-minutes", type=float, default=20.0, help="from-scratch training data")
    parser.add_argument("--heldout-seconds", type=float, default=30.0, help="scored block at the end")
    parser.add_argument("--scratch-max-seconds", type=float, default=600.0, help="from-scratch time cap")
    parser.add_argument("--seed", type=int, default=0, help="simulator seed of the held-out sessions")


def _unseen_sessions(subject: int, known: list[str], count: int) -> list[int]:
    unseen = [k for k in range(100) if session_id(subject, k) not in known]
    return unseen[:count]


def _tail(session: Session, seconds: float) -> Session:
    """The last ``seconds`` of every continuous stream (markers cut at the same time)."""
    end = max(float(stream.timestamps[-1]) for stream in session.streams.values() if stream.n_samples)
    kept = Session(session.meta)
    for stream in session.streams.values():
        inside = stream.timestamps > end - seconds
        kept.add(
            Stream(
                stream.name,
                stream.kind,
                stream.data[inside],
                stream.timestamps[inside],
                stream.rate,
                stream.channel_labels,
                stream.units,
            )
        )
    return kept


def _scratch(previous, binned, heldout_ends: np.ndarray, bin_s: float, args: argparse.Namespace) -> dict:
    """The base model's architecture, trained from random weights on the bins before the held-out block.

    ``heldout_ends`` are the bin end times Stage A was scored on; the same bins are scored here.
    """
    heldout_bins = len(heldout_ends)
    if not np.allclose(binned.bin_ends[-heldout_bins:], heldout_ends, atol=1e-6):
        raise RuntimeError("the scratch decoder's held-out bins are not the ones Stage A was scored on")
    config = dataclasses.replace(previous.checkpoint.encoder_config, n_sessions=1, n_subjects=0)
    torch.manual_seed(args.seed)
    encoder = Encoder(config).eval()
    split = split_calibration_block(
        len(binned), config.window_bins, CalibrationSplitConfig(heldout_fraction=heldout_bins / len(binned))
    )
    bins = SessionBins.from_binned(binned, 0)
    if config.modality == "lfp":
        normalizer = fit_lfp_normalization([bins.block(split.train)])
        encoder.set_normalization(normalizer.mean, normalizer.std)
    head = RidgeHead(config.d_model, bins.kinematics.shape[1]).fit(
        block_latents(encoder, bins, split.fit), bins.kinematics[split.fit.as_slice()], 10.0
    )
    # Stage B's loop from random weights: one rate for every layer, more steps and patience.
    scratch = FinetuneConfig(
        window_stride=10,
        loop=dataclasses.replace(
            STAGE_B_FINETUNE.loop,
            steps=4000,
            batch_size=32,
            lr=1e-3,
            eval_every=100,
            patience=5,
            max_seconds=args.scratch_max_seconds,
            seed=args.seed,
        ),
    )
    fitted = run_stage_b(
        Decoder(encoder, head), bins, split, [], StageBConfig(scratch), desc="scratch (20 min)"
    )
    with torch.no_grad():
        predicted = fitted.decoder.head(torch.from_numpy(fitted.latents[split.heldout.as_slice()])).numpy()
    r2 = r2_per_axis(bins.kinematics[split.heldout.as_slice()], predicted)
    return {
        "r2": float(np.mean(r2)),
        "r2_per_axis": [float(v) for v in r2],
        "seconds": fitted.seconds,
        "steps": fitted.history[-1][0],
        "training_minutes": split.train.n_bins * bin_s / 60.0,
    }


def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(2)
    started = time.perf_counter()
    profile_path = Path(args.profile)
    profile = load_profile(profile_path)
    previous = load_previous(profile)
    subject = int(profile.rig.subject.removeprefix("sim-S"))
    sessions = _unseen_sessions(subject, previous.checkpoint.session_ids, args.sessions)
    block_seconds = args.calibration_minutes * 60.0 + args.heldout_seconds
    # The held-out block is the last 20% of the calibration block, as rtbci calibrate holds out.
    if abs(args.heldout_seconds / block_seconds - 0.2) > 1e-9:
        raise SystemExit(
            "--heldout-seconds must be a quarter of --calibration-minutes (the last 20% is held out)"
        )
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="rtbci-bench-calibration-") as scratch_dir:
        folder = Path(scratch_dir)
        # A profile copy in the scratch folder: the benchmark must not write new versions of the real one.
        bench_profile = folder / profile_path.name
        bench_profile.write_text(
            profile_path.read_text(encoding="utf-8").replace(
                f'artifact = "{profile.model.artifact}"', f'artifact = "{previous.artifact_dir}"'
            ),
            encoding="utf-8",
        )
        if load_profile(bench_profile).artifact_dir() != previous.artifact_dir:
            raise SystemExit(f"could not point a copy of {profile_path} at {previous.artifact_dir}")
        for index in sessions:
            minutes = args.scratch_minutes + args.heldout_seconds / 60.0
            recording = simulate_session(SimConfig(), subject, index, minutes, seed=args.seed)
            block_file = folder / f"block-{index}.h5"
            write_session(block_file, _tail(recording, block_seconds))
            row: dict = {}
            for stage, full in (("stage_a", False), ("stage_b", True)):
                begun = time.perf_counter()
                result = run_calibration(
                    bench_profile,
                    session_file=block_file,
                    config=CalibrationConfig(full=full, artifact_root=folder / "models"),
                )
                row[stage] = {
                    "r2": result.heldout_r2,
                    "r2_per_axis": [float(v) for v in result.scores.r2(CALIBRATED)],
                    "fit_seconds": result.stage_b_seconds if full else result.stage_a_seconds,
                    "fit_cpu_seconds": result.fitted.cpu_seconds,
                    "end_to_end_seconds": time.perf_counter() - begun,
                    "heldout_bins": result.split.heldout.n_bins,
                    "switched_off_channels": result.switched_off_channels,
                }
                row["ridge_raw_r2"] = result.scores.mean_r2(RIDGE_RAW)
                row["previous_r2"] = result.scores.mean_r2(PREVIOUS)
                heldout_ends = result.scores.bin_ends
            binned = featurize(recording, profile, progress=False)
            row["scratch_20min"] = _scratch(previous, binned, heldout_ends, profile.bin_s, args)
            rows[session_id(subject, index)] = row

    def mean(path: tuple[str, ...]) -> float:
        values = []
        for row in rows.values():
            value = row
            for key in path:
                value = value[key]
            values.append(value)
        return float(np.mean(values))

    stage_a_seconds = [row["stage_a"]["fit_seconds"] for row in rows.values()]
    stage_b_seconds = [row["stage_b"]["fit_seconds"] for row in rows.values()]
    r2_a, r2_scratch = mean(("stage_a", "r2")), mean(("scratch_20min", "r2"))
    return {
        "r2_stage_a": r2_a,
        "r2_stage_b": mean(("stage_b", "r2")),
        "r2_scratch_20min": r2_scratch,
        "r2_ridge_raw": mean(("ridge_raw_r2",)),
        "r2_previous_unchanged": mean(("previous_r2",)),
        # The slowest session counts for the time goals; every figure is per session below.
        "stage_a_seconds": float(max(stage_a_seconds)),
        "stage_b_seconds": float(max(stage_b_seconds)),
        "stage_a_fit_seconds_summary": latency_summary_ms(np.asarray(stage_a_seconds)),
        "stage_b_fit_seconds_summary": latency_summary_ms(np.asarray(stage_b_seconds)),
        "per_session": rows,
        "heldout_sessions": list(rows),
        "base_model": {
            "artifact": str(previous.artifact_dir),
            "sessions": previous.checkpoint.session_ids,
            "encoder": previous.checkpoint.encoder_config.to_dict(),
        },
        "goals": {
            "stage_a_seconds_le_10": max(stage_a_seconds) <= 10.0,
            "stage_a_over_scratch": r2_a / r2_scratch if r2_scratch > 0 else None,
            "stage_a_ge_0.9_scratch": r2_scratch > 0 and r2_a >= 0.9 * r2_scratch,
            "stage_b_seconds_le_120": max(stage_b_seconds) <= 120.0,
        },
        "wall_minutes": (time.perf_counter() - started) / 60.0,
    }
