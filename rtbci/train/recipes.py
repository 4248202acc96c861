"""Named training recipes: :class:`~rtbci.train.pipeline.PipelineConfig` values that
:func:`~rtbci.train.pipeline.run_pipeline` executes (``rtbci train pipeline --recipe NAME``).

- ``demo``: the bundled demo decoder (``python -m rtbci.train.demo_model`` simulates its
  sessions and trains by it): small encoder, a teacher with more and faster steps than the
  student, one context row per subject, then supervised fine-tuning. The LFP convolution
  comes from the profile (``lfp_conv_bins = 10`` in ``profiles/demo.toml``).
- ``accuracy`` and ``accuracy-quick``: the stages ``rtbci bench accuracy`` trains (its full
  plan and ``--quick``): in-memory loops, a train/validation cut with no test block (the
  benchmark scores sessions it never trained on).
"""

from __future__ import annotations

from rtbci.train.distill import DistillConfig
from rtbci.train.encoders import SIZES
from rtbci.train.finetune import FinetuneConfig
from rtbci.train.loop import LoopConfig
from rtbci.train.pipeline import PipelineConfig
from rtbci.train.pretrain import PretrainConfig
from rtbci.train.splits import SplitConfig

__all__ = ["RECIPES", "accuracy_recipe", "pipeline_loop"]


def pipeline_loop(steps: int, lr: float, batch_size: int, seed: int) -> LoopConfig:
    """The loop of a ``rtbci train`` stage: warm-up over 10% of the steps (at most 100), state files."""
    return LoopConfig(
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        warmup_steps=min(LoopConfig.warmup_steps, max(1, steps // 10)),
        seed=seed,
    )


def _demo() -> PipelineConfig:
    small = SIZES["small"]
    return PipelineConfig(
        # The spike teacher needs more and faster steps than the student to learn more than firing
        # rates (accuracy benchmark: held-out R² of its latents 0.22 after 500 steps at 1e-3, 0.47
        # after 2000 at 6e-3, 0.53 after 4000 at 3e-3).
        teacher=PretrainConfig(size=small, context_per_subject=True, loop=pipeline_loop(4000, 6e-3, 16, 0)),
        student=DistillConfig(size=small, context_per_subject=True, loop=pipeline_loop(2000, 3e-3, 16, 0)),
        # Supervised fine-tuning of student and head makes the frozen latents carry velocity for
        # Stage A (held-out R² 0.172 -> 0.204 with 4 training sessions).
        finetune=FinetuneConfig(loop=pipeline_loop(2000, FinetuneConfig().loop.lr, 16, 0)),
    )


def accuracy_recipe(
    pretrain_steps: int,
    distill_steps: int,
    *,
    pretrain_lr: float = 6e-3,
    distill_lr: float = 3e-3,
    batch_size: int = 16,
    size: str = "small",
    context_per_subject: bool = True,
    pretrain_context_per_subject: bool = True,
    seed: int = 0,
) -> PipelineConfig:
    """The stages of ``rtbci bench accuracy`` (see ``benchmarks/accuracy.py`` for the measurements).

    ``teacher`` is the spike teacher (the benchmark pretrains its LFP MAE baselines with the same
    settings and ``modality = "lfp"``); ``finetune`` is the fine-tuning of its control rows, with
    the distillation's budget at the fine-tuning rate.
    """
    encoder_size = SIZES[size]
    finetune_lr = FinetuneConfig().loop.lr
    return PipelineConfig(
        split=SplitConfig(fractions=(0.85, 0.15, 0.0), gap_bins=50),
        teacher=PretrainConfig(
            size=encoder_size,
            context_per_subject=pretrain_context_per_subject,
            loop=LoopConfig.in_memory(pretrain_steps, pretrain_lr, batch_size, seed),
        ),
        student=DistillConfig(
            size=encoder_size,
            context_per_subject=context_per_subject,
            loop=LoopConfig.in_memory(distill_steps, distill_lr, batch_size, seed),
        ),
        finetune=FinetuneConfig(loop=LoopConfig.in_memory(distill_steps, finetune_lr, batch_size, seed)),
    )


RECIPES: dict[str, PipelineConfig] = {
    "demo": _demo(),
    "accuracy": accuracy_recipe(pretrain_steps=4000, distill_steps=6000),
    # A smoke run, not a measurement of distillation (see benchmarks/accuracy.py QUICK).
    "accuracy-quick": accuracy_recipe(pretrain_steps=600, distill_steps=400),
}
