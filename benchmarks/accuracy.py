"""Accuracy: velocity R² of distilled LFP decoders and baselines on held-out simulated sessions.

Several simulated sessions of two subjects train a spike teacher (MAE, and the
masked-latent objective), a multi-session LFP MAE and distilled LFP students.
Held-out sessions of the same subjects, never used for pretraining or
distillation, are then decoded with only a linear readout refit on an early
calibration block and scored on a later block. Rows:

- ``ridge_lfp``: ridge on the normalised LFP features of the last bins;
- ``lfp_single``: LFP transformer (MAE) trained on the held-out session's own calibration block;
- ``lfp_multi``: LFP transformer (MAE) trained on all training sessions, no distillation;
- ``distilled_lfp``: LFP student distilled from the MAE spike teacher;
- ``spike_teacher``: the MAE spike teacher itself, reading spikes;
- ``spike_untrained``: the teacher's architecture with random weights, the control that tells what
  pretraining added;
- ``distilled_lfp_latent_objective``: LFP student of a teacher pretrained by masked latent reconstruction;
- ``distilled_lfp_finetuned``: the distilled student after supervised fine-tuning (encoder + head, MSE on
  velocity) on the training sessions;
- ``lfp_supervised``: the same fine-tuning from a random initialisation, the control that tells
  whether distillation helps the fine-tuned decoder.

Every encoder row is read the same way: a ridge readout of the mean of each bin's
token latents (``r2``, the structure of the exported decoder), and of their
concatenation (``r2_concat_readout``).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import time
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from rtbci.models.encoder import Encoder
from rtbci.profile import Profile, load_profile
from rtbci.signal import BinnedSession, Normalizer, featurize
from rtbci.sim import SimConfig, simulate_session
from rtbci.train.data import SessionBins, SessionTable
from rtbci.train.ddp import init_distributed
from rtbci.train.distill import DistillConfig, distill
from rtbci.train.encoders import SIZES, fit_lfp_normalization, new_encoder
from rtbci.train.finetune import FinetuneConfig, finetune
from rtbci.train.head import HeadConfig, fit_head
from rtbci.train.heldout import add_unseen_session, calibrate_and_score, encoder_score
from rtbci.train.loop import LoopConfig, LoopResult
from rtbci.train.pipeline import split_sessions
from rtbci.train.pretrain import PretrainConfig, pretrain
from rtbci.train.splits import BinBlock, SplitConfig

DEMO_PROFILE = "profiles/demo.toml"
ALPHAS = (1.0, 10.0, 100.0, 1000.0, 10000.0)


@dataclass(frozen=True)
class AccuracyPlan:
    """What the benchmark simulates and how long it trains.

    Attributes
    ----------
    subjects
        Simulated subjects.
    train_sessions
        Sessions ``0 .. n-1`` of each subject train the models.
    heldout_sessions
        The next sessions of each subject are held out.
    train_minutes, heldout_minutes
        Length of each simulated session.
    size
        Encoder size preset (:data:`rtbci.train.encoders.SIZES`).
    steps
        Optimiser steps of each multi-session stage.
    single_steps
        Optimiser steps of the single-session LFP baseline.
    batch_size
        Windows per step.
    calibration_fraction
        Share of each held-out session used to calibrate the readout; the
        test block follows after a gap of one encoder window.
    ridge_history_bins
        Bins of LFP features stacked for the ridge baseline.
    seed
        Simulator and training seed.
    """

    subjects: tuple[int, ...] = (0, 1)
    train_sessions: int = 6
    heldout_sessions: int = 2
    train_minutes: float = 6.0
    heldout_minutes: float = 6.0
    size: str = "default"
    steps: int = 3000
    single_steps: int = 1000
    batch_size: int = 32
    calibration_fraction: float = 0.5
    ridge_history_bins: int = 5
    seed: int = 0


QUICK = AccuracyPlan(
    train_sessions=3,
    heldout_sessions=1,
    train_minutes=4.0,
    heldout_minutes=4.0,
    size="small",
    steps=500,
    single_steps=200,
    batch_size=16,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="small models, few sessions: minutes on 2 cores")
    parser.add_argument("--seed", type=int, default=0, help="simulator and training seed")
    parser.add_argument("--steps", type=int, help="steps of each multi-session stage (default: the plan's)")


def _simulate(plan: AccuracyPlan, profile: Profile) -> tuple[list[BinnedSession], list[BinnedSession]]:
    train_ids = [(subject, session) for subject in plan.subjects for session in range(plan.train_sessions)]
    heldout_ids = [
        (subject, plan.train_sessions + offset)
        for subject in plan.subjects
        for offset in range(plan.heldout_sessions)
    ]
    jobs = [(ids, plan.train_minutes) for ids in train_ids] + [
        (ids, plan.heldout_minutes) for ids in heldout_ids
    ]
    binned = []
    for (subject, session), minutes in tqdm(jobs, desc="simulate+featurize", unit="session"):
        recording = simulate_session(SimConfig(), subject, session, minutes, seed=plan.seed)
        binned.append(featurize(recording, profile, progress=False))
    return binned[: len(train_ids)], binned[len(train_ids) :]


def _lagged(values: np.ndarray, history: int) -> np.ndarray:
    """``(T, D)`` -> ``(T, D * history)``: each bin beside the ``history - 1`` bins before it.

    Bins before the start of the session count as zeros.
    """
    padded = np.concatenate([np.zeros((history - 1, values.shape[1]), values.dtype), values])
    return np.concatenate([padded[lag : lag + len(values)] for lag in range(history - 1, -1, -1)], axis=1)


def _constant_rate_nll(blocks: list[SessionBins]) -> float:
    """Poisson NLL (as the MAE scores masked tokens) of predicting each channel's mean count in its session.

    The floor a teacher reaches by learning per-session rates alone (its session
    embedding can hold them) without modelling any dynamics: how far below it the
    teacher's loss gets is what it learned about the neural population.
    """
    total, n_bins = 0.0, 0
    for block in blocks:
        counts = block.spikes[..., 0].clip(0, 20).astype(np.float64)
        rate = counts.mean(axis=0).clip(min=1e-6)
        total += float(np.sum(np.mean(rate - counts * np.log(rate), axis=1)))
        n_bins += len(counts)
    return total / n_bins


class _Timer:
    """Wall-clock minutes spent in training stages."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def run(self, train, *args, **kwargs):
        start = time.perf_counter()
        result = train(*args, **kwargs)
        self.seconds += time.perf_counter() - start
        return result


def run(args: argparse.Namespace) -> dict:
    plan = dataclasses.replace(QUICK if args.quick else AccuracyPlan(), seed=args.seed)
    if args.steps is not None:
        plan = dataclasses.replace(plan, steps=args.steps, single_steps=max(1, args.steps * 2 // 5))
    # One thread: on a shared 2-core machine, two spinning OpenMP threads per
    # process were measured 7x slower per step than one.
    torch.set_num_threads(1)
    started = time.perf_counter()
    cpu_started = time.process_time()
    profile = load_profile(DEMO_PROFILE)
    context = init_distributed("cpu")
    train_binned, heldout_binned = _simulate(plan, profile)

    table = SessionTable([session.session_id for session in train_binned])
    data = split_sessions(train_binned, SplitConfig(fractions=(0.85, 0.15, 0.0), gap_bins=50), table)
    size = SIZES[plan.size]

    def loop(steps: int, lr: float = LoopConfig.lr) -> LoopConfig:
        return LoopConfig(
            steps=steps,
            batch_size=plan.batch_size,
            lr=lr,
            warmup_steps=max(1, steps // 20),
            eval_every=max(1, steps // 4),
            checkpoint_every=0,
            seed=plan.seed,
        )

    timer = _Timer()
    n_sessions = len(table)

    def pretrain_on(modality: str, objective: str, desc: str) -> tuple[Encoder, LoopResult]:
        config = PretrainConfig(modality=modality, objective=objective, size=size, loop=loop(plan.steps))
        return timer.run(
            pretrain, data.train, data.val, profile, config, context, n_sessions=n_sessions, desc=desc
        )

    def distill_from(teacher: Encoder, desc: str) -> Encoder:
        config = DistillConfig(size=size, loop=loop(plan.steps))
        return timer.run(distill, teacher, data.train, data.val, profile, config, context, desc=desc)[0]

    torch.manual_seed(plan.seed)
    untrained = new_encoder(profile, "spikes", 1, n_sessions, size)
    mae_teacher, teacher_run = pretrain_on("spikes", "mae", "teacher (mae)")
    encoders = {
        "spike_teacher": mae_teacher,
        "spike_untrained": untrained,
        "lfp_multi": pretrain_on("lfp", "mae", "lfp multi-session (mae)")[0],
    }
    encoders["distilled_lfp"] = distill_from(encoders["spike_teacher"], "distill (mae teacher)")
    latent_teacher, _ = pretrain_on("spikes", "latent", "teacher (latent objective)")
    encoders["distilled_lfp_latent_objective"] = distill_from(latent_teacher, "distill (latent teacher)")

    def finetuned(encoder: Encoder, desc: str) -> Encoder:
        start = fit_head(encoder, data.train, data.val, HeadConfig()).decoder
        config = FinetuneConfig(loop=loop(plan.steps, FinetuneConfig().loop.lr))
        return timer.run(finetune, start, data.train, data.val, config, context, desc=desc)[0].encoder

    encoders["distilled_lfp_finetuned"] = finetuned(
        copy.deepcopy(encoders["distilled_lfp"]), "finetune (distilled student)"
    )
    torch.manual_seed(plan.seed)
    scratch = new_encoder(profile, "lfp", data.train[0].lfp.shape[-1], n_sessions, size)
    normalizer = fit_lfp_normalization(data.train)
    scratch.set_normalization(normalizer.mean, normalizer.std)
    encoders["lfp_supervised"] = finetuned(scratch, "supervised (random init)")

    rows = [
        "ridge_lfp",
        "lfp_single",
        "lfp_multi",
        "distilled_lfp",
        "spike_teacher",
        "spike_untrained",
        "distilled_lfp_latent_objective",
        "distilled_lfp_finetuned",
        "lfp_supervised",
    ]
    per_session: dict[str, dict[str, float]] = {row: {} for row in rows}
    concat_rows = [row for row in rows if row != "ridge_lfp"]
    per_session_concat: dict[str, dict[str, float]] = {row: {} for row in concat_rows}
    heldout_ids = []
    for binned in heldout_binned:
        heldout_ids.append(binned.session_id)
        like_rows = [table.row(s.session_id) for s in train_binned if s.subject == binned.subject]
        n_bins = len(binned)
        calibration = BinBlock(0, int(n_bins * plan.calibration_fraction))
        test = BinBlock(calibration.stop + profile.features.window_bins, n_bins)
        for name, encoder in encoders.items():
            row = add_unseen_session(encoder, like_rows)
            session = SessionBins.from_binned(binned, row)
            for pool, scores in (("mean", per_session), ("concat", per_session_concat)):
                scores[name][binned.session_id] = encoder_score(
                    encoder, session, calibration, test, ALPHAS, pool
                ).r2

        session = SessionBins.from_binned(binned, 0)
        calibration_part = session.block(calibration)
        single_config = PretrainConfig(
            modality="lfp", objective="mae", size=size, loop=loop(plan.single_steps)
        )
        # The single-session model sees only the calibration block: its first
        # 85% trains the MAE, the rest is its validation block.
        inner = BinBlock(0, int(calibration.n_bins * 0.85))
        single, _ = timer.run(
            pretrain,
            [calibration_part.block(inner)],
            [calibration_part.block(BinBlock(inner.stop, calibration.n_bins))],
            profile,
            single_config,
            context,
            n_sessions=1,
            desc=f"lfp single ({binned.session_id})",
        )
        for pool, scores in (("mean", per_session), ("concat", per_session_concat)):
            scores["lfp_single"][binned.session_id] = encoder_score(
                single, session, calibration, test, ALPHAS, pool
            ).r2

        normalizer = Normalizer().fit(session.lfp[calibration.as_slice()])
        features = _lagged(normalizer.apply(session.lfp).reshape(n_bins, -1), plan.ridge_history_bins)
        ridge = calibrate_and_score(
            features[calibration.as_slice()],
            session.kinematics[calibration.as_slice()],
            features[test.as_slice()],
            session.kinematics[test.as_slice()],
            ALPHAS,
        )
        per_session["ridge_lfp"][binned.session_id] = ridge.r2

    r2 = {row: float(np.mean(list(per_session[row].values()))) for row in rows}
    tail = max(1, plan.steps // 10)
    r2_concat = {row: float(np.mean(list(per_session_concat[row].values()))) for row in concat_rows}
    distilled, multi, teacher = r2["distilled_lfp"], r2["lfp_multi"], r2["spike_teacher"]
    return {
        "r2": r2,
        "r2_concat_readout": r2_concat,
        "r2_per_session": per_session,
        "heldout_sessions": heldout_ids,
        "train_sessions": table.ids,
        "train_minutes_cpu": timer.seconds / 60.0,
        "wall_minutes": (time.perf_counter() - started) / 60.0,
        "process_cpu_minutes": (time.process_time() - cpu_started) / 60.0,
        "goals": {
            "distilled_minus_lfp_multi": distilled - multi,
            "distilled_beats_lfp_multi_by_0.10": distilled - multi >= 0.10,
            "distilled_over_spike_teacher": distilled / teacher if teacher > 0 else None,
            "distilled_reaches_0.8_of_teacher": teacher > 0 and distilled >= 0.8 * teacher,
        },
        "teacher_objective": {
            "masked_poisson_nll_last_10pct_of_steps": float(np.mean(teacher_run.state.losses[-tail:])),
            "per_session_constant_rate_poisson_nll": _constant_rate_nll(data.train),
        },
        "plan": dataclasses.asdict(plan),
        "protocol": (
            "held-out sessions never used in pretraining or distillation; their context row is the mean "
            "of the subject's training rows; only a ridge readout is fit, on the first "
            f"{plan.calibration_fraction:.0%} of each held-out session (penalty chosen on its last 20%), "
            f"and scored on the rest after a {profile.features.window_bins}-bin gap"
        ),
    }
