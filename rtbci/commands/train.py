"""``rtbci train teacher|student|head|pipeline``: train the decoder from Session files.

Runs unchanged under ``torchrun --nproc_per_node N -m rtbci.cli train ...``
(data-parallel; gloo on CPU, NCCL on GPU). A stage whose state file is in
``--out`` resumes from it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rtbci.train.loop import LoopConfig
    from rtbci.train.pipeline import PipelineConfig

# The help's defaults, written here so that `rtbci train --help` imports no torch; a test checks
# that they are the configs' own (LoopConfig, PretrainConfig, DistillConfig, SIZES).
HELP_DEFAULTS = {
    "steps": 2000,
    "batch_size": 32,
    "lr": 1e-3,
    "reconstruction_weight": 0.1,
    "context_per_subject": True,
}
SIZE_NAMES = ("default", "small", "tiny")
# The names of rtbci.train.recipes.RECIPES (a test checks they are the same).
RECIPE_NAMES = ("demo", "accuracy", "accuracy-quick")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", required=True, type=Path, help="rig profile (.toml)")
    parser.add_argument(
        "--data",
        required=True,
        nargs="+",
        metavar="DIR_OR_FILE",
        help="Session files, or directories of them",
    )
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--val-fraction", type=float, default=0.15, help="share of each session for validation"
    )
    parser.add_argument("--test-fraction", type=float, default=0.15, help="share of each session for testing")


def _training(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size", choices=SIZE_NAMES, default="default", help="encoder size preset")
    parser.add_argument("--steps", type=int, default=HELP_DEFAULTS["steps"], help="optimiser steps per stage")
    parser.add_argument(
        "--batch-size", type=int, default=HELP_DEFAULTS["batch_size"], help="windows per process"
    )
    parser.add_argument("--lr", type=float, default=HELP_DEFAULTS["lr"])
    parser.add_argument("--context", choices=["embedding", "stitching"], default="embedding")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument(
        "--threads", type=int, help="torch CPU threads per process (default: torch's choice; torchrun sets 1)"
    )


def _context_rows(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--context-per-subject",
        action=argparse.BooleanOptionalAction,
        default=HELP_DEFAULTS["context_per_subject"],
        help="train one context row per subject instead of one per session, in the teacher and the student",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train the spike teacher, LFP student and behavior head")
    stages = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")

    teacher = stages.add_parser("teacher", help="pretrain the multi-session spike teacher")
    _common(teacher)
    _training(teacher)
    teacher.add_argument(
        "--objective", choices=["mae", "latent"], default="mae", help="pretraining objective"
    )
    _context_rows(teacher)

    student = stages.add_parser("student", help="distill a teacher into an LFP student")
    _common(student)
    _training(student)
    student.add_argument("--teacher", required=True, type=Path, help="teacher checkpoint (teacher.pt)")
    student.add_argument(
        "--reconstruction-weight", type=float, default=HELP_DEFAULTS["reconstruction_weight"]
    )
    _context_rows(student)

    head = stages.add_parser("head", help="fit the ridge behavior head on an encoder")
    _common(head)
    head.add_argument("--encoder", required=True, type=Path, help="student.pt (LFP) or teacher.pt (spikes)")

    pipeline = stages.add_parser("pipeline", help="teacher -> student -> head -> export")
    _common(pipeline)
    _training(pipeline)
    pipeline.add_argument("--objective", choices=["mae", "latent"], default="mae", help="teacher objective")
    pipeline.add_argument(
        "--reconstruction-weight", type=float, default=HELP_DEFAULTS["reconstruction_weight"]
    )
    _context_rows(pipeline)
    pipeline.add_argument(
        "--teacher-steps", type=int, help="optimiser steps of the teacher (default: --steps)"
    )
    pipeline.add_argument("--teacher-lr", type=float, help="learning rate of the teacher (default: --lr)")
    pipeline.add_argument(
        "--finetune-steps",
        type=int,
        default=0,
        help="supervised fine-tuning steps of encoder + head after the ridge fit (0: none)",
    )
    pipeline.add_argument(
        "--recipe",
        choices=RECIPE_NAMES,
        help="train by a named recipe (rtbci.train.recipes); its settings replace the split, size, "
        "steps, rates, batch size, seed and context options",
    )
    pipeline.add_argument(
        "--export-session",
        metavar="SESSION_ID",
        help="session whose context the artifact bakes in (default: the newest of the profile's subject)",
    )

    for stage in (teacher, student, head, pipeline):
        stage.set_defaults(func=run)


def _loop(args: argparse.Namespace, steps: int, lr: float) -> LoopConfig:
    from rtbci.train.recipes import pipeline_loop

    return pipeline_loop(steps, lr, args.batch_size, args.seed)


def _config(args: argparse.Namespace) -> PipelineConfig:
    from rtbci.train.distill import DistillConfig
    from rtbci.train.encoders import SIZES
    from rtbci.train.finetune import FinetuneConfig
    from rtbci.train.pipeline import PipelineConfig
    from rtbci.train.pretrain import PretrainConfig
    from rtbci.train.recipes import RECIPES
    from rtbci.train.splits import SplitConfig

    if args.stage == "pipeline" and args.recipe is not None:
        return RECIPES[args.recipe]

    split = SplitConfig(
        fractions=(1.0 - args.val_fraction - args.test_fraction, args.val_fraction, args.test_fraction)
    )
    if args.stage == "head":
        return PipelineConfig(split=split)
    loop = _loop(args, args.steps, args.lr)
    size = SIZES[args.size]
    # The spike teacher learns dynamics only with more and faster steps than the other stages
    # (accuracy benchmark); in a pipeline it may have its own budget.
    teacher_steps = args.teacher_steps if args.stage == "pipeline" and args.teacher_steps else args.steps
    teacher_lr = args.teacher_lr if args.stage == "pipeline" and args.teacher_lr else args.lr
    teacher = PretrainConfig(
        modality="spikes",
        objective=args.objective if args.stage != "student" else "mae",
        context=args.context,
        size=size,
        context_per_subject=args.context_per_subject,
        loop=_loop(args, teacher_steps, teacher_lr),
    )
    reconstruction = (
        args.reconstruction_weight if args.stage != "teacher" else DistillConfig.reconstruction_weight
    )
    student = DistillConfig(
        context=args.context,
        size=size,
        reconstruction_weight=reconstruction,
        context_per_subject=args.context_per_subject,
        loop=loop,
    )
    finetune_steps = args.finetune_steps if args.stage == "pipeline" else 0
    finetune = FinetuneConfig(loop=_loop(args, finetune_steps, FinetuneConfig().loop.lr))
    return PipelineConfig(split=split, teacher=teacher, student=student, finetune=finetune)


def run(args: argparse.Namespace) -> int:
    # torch and the training code load only when run, so that `rtbci train --help` stays fast.
    import torch

    from rtbci.profile import load_profile
    from rtbci.train.ddp import init_distributed, shutdown_distributed
    from rtbci.train.pipeline import export_decoder, run_pipeline, train_head, train_student, train_teacher
    from rtbci.train.sources import load_binned_sessions

    profile = load_profile(args.profile)
    config = _config(args)
    binned = load_binned_sessions(args.data, profile)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.stage == "head":
        checkpoint, path = train_head(binned, profile, config, args.encoder, args.out)
        print(f"wrote {path}: heldout R² {checkpoint.metrics['heldout_r2']:.3f}")
        manifest = export_decoder(path, args.out / "artifact")
        print(f"exported {args.out / 'artifact'} (decoder.onnx sha256 {manifest.sha256})")
        return 0
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    context = init_distributed(args.device)
    try:
        if args.stage == "teacher":
            _, path = train_teacher(binned, profile, config, context, args.out)
        elif args.stage == "student":
            _, path = train_student(binned, profile, config, context, args.teacher, args.out)
        else:
            summary = run_pipeline(binned, profile, config, context, args.out, args.export_session)
            if context.is_main:
                print(json.dumps({k: v for k, v in summary.items() if k != "metrics"}, indent=2))
                print(f"heldout R² {summary['metrics']['heldout_r2']:.3f}")
            return 0
        if context.is_main:
            print(f"wrote {path}")
            (args.out / f"{args.stage}.config.json").write_text(
                json.dumps(dataclasses.asdict(config), indent=2) + "\n", encoding="utf-8"
            )
    finally:
        shutdown_distributed()
    return 0
