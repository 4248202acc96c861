"""Stage B of calibration (``--full``): fine-tune every weight, then refit the ridge head in closed form.

AdamW with layer-wise learning-rate decay: the head and final norm train at the
base rate, each transformer block below at 0.75× the one above, the tokenizer
lowest. Parameters that are new for this session (its context row) train at 10×
the base rate. Training stops early when the validation R² stops improving, and
the best weights seen are kept (:func:`rtbci.train.finetune.finetune`). The same
stage, with no decay and no new-parameter boost, trains a decoder from scratch
for the calibration benchmark.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from torch import nn

from rtbci.models.decoder import Decoder
from rtbci.train.data import SessionBins
from rtbci.train.finetune import FinetuneConfig, finetune
from rtbci.train.loop import LoopConfig, StepReport
from rtbci.train.session_fit import (
    DEFAULT_ALPHAS,
    FittedDecoder,
    block_latents,
    fit_ridge_head,
    validation_r2,
)
from rtbci.train.splits import BinBlock, FitBlocks

__all__ = ["STAGE_B_FINETUNE", "StageBConfig", "run_stage_b"]

# Stage B's fine-tuning: a constant rate, early stopping on the validation block, 100 s at most.
STAGE_B_FINETUNE = FinetuneConfig(
    window_stride=5,
    new_lr_factor=10.0,
    layer_decay=0.75,
    loop=LoopConfig(
        steps=400,
        batch_size=16,
        lr=3e-4,
        weight_decay=0.01,
        schedule="constant",
        grad_clip=1.0,
        eval_every=25,
        checkpoint_every=0,
        patience=3,
        max_seconds=100.0,
    ),
)


@dataclass(frozen=True)
class StageBConfig:
    """Settings of Stage B.

    Attributes
    ----------
    finetune
        The fine-tuning (rates, early stopping, time budget); its context bins
        default to half a window.
    alphas
        Candidate ridge penalties of the start head and of the final head.
    """

    finetune: FinetuneConfig = field(default_factory=lambda: STAGE_B_FINETUNE)
    alphas: tuple[float, ...] = DEFAULT_ALPHAS


def run_stage_b(
    decoder: Decoder,
    bins: SessionBins,
    blocks: FitBlocks,
    new_parameters: Sequence[nn.Parameter],
    config: StageBConfig,
    desc: str = "stage B (full fine-tune)",
    progress: bool = True,
    on_step: Callable[[StepReport], None] | None = None,
) -> FittedDecoder:
    """Fine-tune all of ``decoder`` on the fit block, stop early on the validation block, refit the head.

    Parameters
    ----------
    decoder
        Start point (e.g. Stage A's decoder); trained in place.
    bins
        The calibration block as model inputs (``bins.context`` is the session's row).
    blocks
        Fit, validation and training blocks.
    new_parameters
        Parameters new for this session (learning rate × ``new_lr_factor``).
    config
        Settings.
    desc
        Progress bar label.
    progress
        Show the tqdm bar (loss and validation R²).
    on_step
        Called after every step (:class:`rtbci.train.loop.StepReport`).

    Returns
    -------
    FittedDecoder
    """
    started, cpu_started = time.perf_counter(), time.process_time()
    decoder.eval()
    # The start head is refit on the fit block alone: a head fit on the whole training part has
    # seen the validation block, and early stopping would then always keep the starting weights.
    start_latents = block_latents(decoder.encoder, bins, BinBlock(0, blocks.val.stop))
    start_head, _, _ = fit_ridge_head(start_latents, bins.kinematics, blocks, config.alphas, final=blocks.fit)
    decoder.head.load_state_dict(start_head.state_dict())
    result = finetune(
        decoder,
        [bins.block(blocks.fit)],
        lambda: validation_r2(decoder, bins, blocks.val),
        config.finetune,
        new_parameters=new_parameters,
        desc=desc,
        progress=progress,
        on_step=on_step,
    )
    latents = block_latents(decoder.encoder, bins)
    head, alpha, val_r2 = fit_ridge_head(latents, bins.kinematics, blocks, config.alphas)
    return FittedDecoder(
        Decoder(decoder.encoder, head).eval(),
        bins.context,
        alpha,
        val_r2,
        latents,
        time.perf_counter() - started,
        result.history,
        time.process_time() - cpu_started,
    )
