"""Closed loop: decoders calibrated by cue and by one ReFIT round, scored on cursor trials in lockstep.

The simulated participant (:mod:`rtbci.sim.participant`) of the demo subject, on sessions no
decoder trained on (days 16 on), controls the cursor task through the real engine and LSL in
lockstep (:mod:`benchmarks.lockstep`). Per session:

1. a **cue block** (assist 1: the cursor goes to each target by itself, the participant intends
   along), served by the zero decoder: the cursor does not depend on the decoder, so one block
   serves every decoder's cue calibration, with labels ``cue`` (:func:`rtbci.task.labels.cue_labels`);
2. the **zero** decoder (zero velocity, the control) scored on a block of trials (assist 0);
3. for each of ridge on LFP features, the distilled LFP student (the bundled demo decoder) and
   the spike decoder (the MAE teacher plus head, :mod:`benchmarks.spike_decoder`):

   - calibrated on the cue block (Stage A for the artifacts, a ridge fit for ridge), then scored
     on a block of trials (assist 0): stage ``cue``;
   - calibrated again, from the same starting point, on that block with labels ``refit`` (the
     decoded velocity turned toward the target; ReFIT, Gilja et al. 2012, retrains on the
     closed-loop block of the first decoder), then scored on a new block: stage ``refit``.

   No block is scored with the decoder fit on it.

   With ``--gains``, each cue-calibrated decoder is also scored at each cursor gain (``[task]
   gain``: the cursor moves at the decoded velocity times it), on a block of its own (stage
   ``cue@x<gain>``), as a lab tunes the gain in closed loop.

Per decoder and stage: success rate, mean time to target, path efficiency and Fitts information
rate (:func:`rtbci.task.metrics.summarize`), with their mean and spread over sessions. The goals
are computed from the session means of the ``refit`` stage.

Each block starts the simulated session from its beginning (:class:`~rtbci.sim.closed_loop.ClosedLoopSource`
has no offset): the blocks of one session share its units, tuning and gain fluctuations, and their
noise draws follow the same random streams under different intentions.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from benchmarks.closed_loop_decoders import (
    ServedDecoder,
    ZeroBackend,
    calibrate_artifact,
    fit_ridge,
    labelled_bins,
)
from benchmarks.lockstep import LockstepBlock, block_profile, run_block
from benchmarks.spike_decoder import SpikeDecoderPlan, spike_decoder
from rtbci.profile import load_profile
from rtbci.sim import session_id
from rtbci.task.labels import TaskLabels
from rtbci.task.metrics import TaskMetrics, summarize

DEMO_PROFILE = "profiles/demo.toml"
METRICS = ("success_rate", "mean_time_to_target_s", "path_efficiency", "fitts_bits_per_s")
CALIBRATED = ("ridge_lfp", "student_lfp", "spike")
STAGES = ("cue", "refit")


@dataclass(frozen=True)
class ClosedLoopPlan:
    """How much the benchmark runs.

    Attributes
    ----------
    sessions
        Unseen sessions (days ``first_session`` on).
    first_session
        The first day: the demo student trained on days 0-15, the spike decoder on days
        ``0 .. SpikeDecoderPlan.sessions - 1``.
    cue_trials
        Trials of the cue block.
    score_trials
        Trials of each scored block (the issue asks for at least 64).
    max_block_s
        Stream seconds after which a block ends with the trials it has (a decoder that times out
        every trial takes ``timeout_s`` + the pause per trial).
    spike_decoder
        How the spike decoder is trained (cached).
    cue_gains
        Cursor gains (``[task] gain``) each cue-calibrated decoder is also scored at, each on a
        block of its own (stage ``cue@x<gain>``): a gain sweep, as a lab tunes it in closed loop.
    """

    sessions: int = 3
    first_session: int = 16
    cue_trials: int = 64
    score_trials: int = 64
    max_block_s: float = 700.0
    spike_decoder: SpikeDecoderPlan = field(default_factory=SpikeDecoderPlan)
    cue_gains: tuple[float, ...] = ()

    @property
    def stages(self) -> tuple[str, ...]:
        """Every calibrated decoder's scored stages."""
        return (*STAGES, *(gain_stage(gain) for gain in self.cue_gains))


def gain_stage(gain: float) -> str:
    """The stage name of the cue-calibrated decoder scored at cursor gain ``gain``."""
    return f"cue@x{gain:g}"


QUICK = ClosedLoopPlan(sessions=1, cue_trials=32, score_trials=16, max_block_s=75.0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile", default=DEMO_PROFILE, help="simulated-rig profile; its [model] is the student"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1 session, a 32-trial cue block, 16-trial scored blocks of at most 75 s of stream",
    )
    parser.add_argument("--sessions", type=int, help="unseen sessions (default 3; 1 with --quick)")
    parser.add_argument(
        "--score-trials", type=int, help="trials per scored block (default 64; 16 with --quick)"
    )
    parser.add_argument(
        "--cue-trials", type=int, help="trials of the cue block (default 64; 32 with --quick)"
    )
    parser.add_argument(
        "--max-block-seconds",
        type=float,
        help="stream seconds after which a block ends with the trials it has (default 700; 75 with --quick)",
    )
    parser.add_argument(
        "--gains",
        type=_gains,
        help="comma-separated cursor gains each cue-calibrated decoder is also scored at (e.g. 1.5,2,3)",
    )
    parser.add_argument("--seed", type=int, default=0, help="simulator seed (the subject's units and tuning)")


def _gains(text: str) -> tuple[float, ...]:
    try:
        gains = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--gains must be numbers separated by commas, got {text!r}"
        ) from None
    if not all(gain > 0 for gain in gains):
        raise argparse.ArgumentTypeError(f"--gains must all be > 0, got {text!r}")
    return gains


def _plan(args: argparse.Namespace) -> ClosedLoopPlan:
    plan = QUICK if args.quick else ClosedLoopPlan()
    given = {
        "sessions": args.sessions,
        "score_trials": args.score_trials,
        "cue_trials": args.cue_trials,
        "max_block_s": args.max_block_seconds,
        "cue_gains": args.gains,
    }
    return dataclasses.replace(plan, **{name: value for name, value in given.items() if value is not None})


def _block_figures(block: LockstepBlock) -> dict:
    return {
        "trials": len(block.trials),
        "stream_seconds": block.stream_seconds,
        "wall_seconds": block.wall_seconds,
        "decoded_bins": block.decoded_bins,
        "late_bins": block.late_bins,
        "stalls": block.source.stalls,
    }


def _scored(block: LockstepBlock) -> dict:
    """The block's task metrics (None where undefined: no success) and how it ran."""
    metrics: TaskMetrics = summarize(block.trials)
    figures = {key: None if value != value else value for key, value in metrics.as_dict().items()}
    return {**figures, "block": _block_figures(block)}


class _Session:
    """The blocks and calibrations of one unseen session, in a scratch folder."""

    def __init__(self, base: Path, folder: Path, day: int, plan: ClosedLoopPlan, seed: int) -> None:
        self.base, self.folder, self.day, self.plan, self.seed = base, folder, day, plan, seed
        self.profile = load_profile(base)
        self.session_id = session_id(int(self.profile.rig.subject.removeprefix("sim-S")), day)
        self.fits: dict[str, dict] = {}

    def block(self, decoder: ServedDecoder, assist: float, trials: int, gain: float = 1.0) -> LockstepBlock:
        profile = block_profile(self.base, self.folder, assist, decoder.model_table(), gain=gain)
        return run_block(profile, decoder.engine, self.day, trials, self.plan.max_block_s, seed=self.seed)

    def calibrate(
        self,
        name: str,
        start: ServedDecoder | None,
        block: LockstepBlock,
        labels: TaskLabels,
        block_input: str,
    ) -> ServedDecoder:
        """Fit ``name`` on ``block`` labelled by ``labels``: Stage A from ``start``, or ridge from nothing."""
        binned = labelled_bins(block, labels, block_input, self.session_id, self.profile)
        if start is None:
            started = time.perf_counter()
            backend = fit_ridge(binned)
            self.fits[f"{name}/{labels}"] = {"seconds": time.perf_counter() - started, "bins": len(binned)}
            return ServedDecoder("lfp", backend=lambda: backend)
        profile = block_profile(self.base, self.folder, 0.0, start.model_table())
        artifact, fit = calibrate_artifact(
            profile, binned, self.folder / f"{self.session_id}-{name}-{labels}"
        )
        self.fits[f"{name}/{labels}"] = fit
        return ServedDecoder(start.model_input, artifact=artifact)


def _run_session(session: _Session, bases: dict[str, ServedDecoder | None], zero: ServedDecoder) -> dict:
    plan = session.plan
    cue = session.block(zero, 1.0, plan.cue_trials)
    scores: dict[str, dict[str, dict]] = {
        "zero": {"uncalibrated": _scored(session.block(zero, 0.0, plan.score_trials))}
    }
    for name in CALIBRATED:
        base = bases[name]
        # The cue block was served by the zero decoder, which read LFP: its records hold LFP
        # features and spike counts, all that any decoder here needs.
        cued = session.calibrate(name, base, cue, "cue", zero.model_input)
        first = session.block(cued, 0.0, plan.score_trials)
        refit = session.calibrate(name, base, first, "refit", cued.model_input)
        second = session.block(refit, 0.0, plan.score_trials)
        scores[name] = {"cue": _scored(first), "refit": _scored(second)}
        for gain in plan.cue_gains:
            scores[name][gain_stage(gain)] = _scored(session.block(cued, 0.0, plan.score_trials, gain))
    return {"cue_block": _scored(cue), "scores": scores, "fits": session.fits}


def _spread(per_session: list[dict]) -> dict:
    """Mean, standard deviation, min and max over sessions of each metric (NaN-aware)."""
    out = {}
    for metric in METRICS:
        values = np.array([np.nan if row[metric] is None else row[metric] for row in per_session])
        finite = values[np.isfinite(values)]
        out[metric] = {
            "mean": float(finite.mean()) if finite.size else None,
            "std": float(finite.std()) if finite.size else None,
            "min": float(finite.min()) if finite.size else None,
            "max": float(finite.max()) if finite.size else None,
            "sessions": int(finite.size),
        }
    out["trials"] = int(sum(row["trials"] for row in per_session))
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _goals(summary: dict) -> dict:
    def rate(decoder: str, stage: str) -> float | None:
        return summary[decoder][stage]["fitts_bits_per_s"]["mean"]

    student, spike, ridge = rate("student_lfp", "refit"), rate("spike", "refit"), rate("ridge_lfp", "refit")
    student_cue = rate("student_lfp", "cue")
    student_over_spike = _ratio(student, spike)
    student_over_ridge = _ratio(student, ridge)
    refit_gain = _ratio(student, student_cue)
    spike_success = summary["spike"]["refit"]["success_rate"]["mean"]
    zero_success = summary["zero"]["uncalibrated"]["success_rate"]["mean"]
    return {
        "student_over_spike_rate": student_over_spike,
        "student_ge_0.8_spike_rate": student_over_spike is not None and student_over_spike >= 0.8,
        "student_over_ridge_rate": student_over_ridge,
        "student_ge_1.5_ridge_rate": student_over_ridge is not None and student_over_ridge >= 1.5,
        "student_refit_over_cue_rate": refit_gain,
        "student_refit_ge_1.1_cue_rate": refit_gain is not None and refit_gain >= 1.1,
        "spike_success_rate": spike_success,
        "spike_success_ge_0.9": spike_success is not None and spike_success >= 0.9,
        "zero_success_rate": zero_success,
        "zero_success_is_0": zero_success == 0.0,
    }


def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(1)
    return run_plan(_plan(args), Path(args.profile), args.seed, quick=args.quick)


def run_plan(plan: ClosedLoopPlan, profile_path: Path, seed: int = 0, quick: bool = False) -> dict:
    """Run ``plan`` on the simulated subject of ``profile_path`` (its ``[model]`` is the student).

    Returns
    -------
    dict
        The benchmark's JSON: headline, goals, summary over sessions, per-session figures.
    """
    started = time.perf_counter()
    base = profile_path.resolve()
    profile = load_profile(base)
    spike_started = time.perf_counter()
    spike_artifact, spike_cached = spike_decoder(plan.spike_decoder, profile, progress=False)
    spike_seconds = time.perf_counter() - spike_started
    # What each decoder's calibration starts from; ridge starts from nothing.
    bases = {
        "ridge_lfp": None,
        "student_lfp": ServedDecoder("lfp", artifact=profile.artifact_dir()),
        "spike": ServedDecoder("spikes", artifact=spike_artifact),
    }
    zero = ServedDecoder("lfp", backend=lambda: ZeroBackend(len(profile.output.kinematics)))
    sessions: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="rtbci-bench-closed-loop-") as scratch:
        for day in range(plan.first_session, plan.first_session + plan.sessions):
            session = _Session(base, Path(scratch), day, plan, seed)
            sessions[session.session_id] = _run_session(session, bases, zero)
    stages = {"zero": ("uncalibrated",), **{name: plan.stages for name in CALIBRATED}}
    summary = {
        decoder: {
            stage: _spread([row["scores"][decoder][stage] for row in sessions.values()]) for stage in names
        }
        for decoder, names in stages.items()
    }
    headline = {
        f"{decoder}/{stage}": {
            "fitts_bits_per_s": summary[decoder][stage]["fitts_bits_per_s"]["mean"],
            "success_rate": summary[decoder][stage]["success_rate"]["mean"],
        }
        for decoder, names in stages.items()
        for stage in names
    }
    return {
        "headline": headline,
        "goals": _goals(summary),
        "summary": summary,
        "per_session": sessions,
        "plan": dataclasses.asdict(plan) | {"quick": quick, "seed": seed, "profile": str(base)},
        "spike_decoder": {"artifact": str(spike_artifact), "cached": spike_cached, "seconds": spike_seconds},
        "student": {"artifact": str(profile.artifact_dir())},
        "wall_minutes": (time.perf_counter() - started) / 60.0,
    }
