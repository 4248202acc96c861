"""Stage B (``--full``): fine-tune every weight, then refit the ridge head in closed form.

AdamW with layer-wise learning-rate decay: the head and final norm train at the
base rate, each transformer block below at 0.75× the one above, the tokenizer
lowest. Parameters that are new for this session (its context row) train at 10×
the base rate. Training stops early when the validation R² stops improving, and
the best weights seen are kept. The same loop, with no decay and no new-parameter
boost, trains a decoder from scratch for the calibration benchmark.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from calibrate.early_stopping import EarlyStopping
from calibrate.fitting import (
    DEFAULT_ALPHAS,
    FittedDecoder,
    KinematicsLoss,
    block_latents,
    fit_ridge_head,
    validation_r2,
)
from calibrate.split import CalibrationSplit
from rtbci.models.decoder import Decoder
from rtbci.train.data import SessionBins, WindowSampler, WindowSet
from rtbci.train.splits import BinBlock

__all__ = ["FinetuneConfig", "finetune", "layerwise_groups"]


@dataclass(frozen=True)
class FinetuneConfig:
    """Settings of a full fine-tune.

    Attributes
    ----------
    lr
        Base learning rate (head and final norm).
    new_lr_factor
        Multiplier of the rate of parameters new to this session.
    layer_decay
        Rate multiplier per transformer block going down from the top.
    weight_decay
        AdamW weight decay (not applied to gains, biases and the new parameters).
    steps
        Most optimiser steps.
    batch_size
        Windows per step.
    eval_every, patience
        Validation R² every ``eval_every`` steps; stop after ``patience`` checks without improvement.
    max_seconds
        Stop after this much wall-clock time even if still improving.
    grad_clip
        Global gradient-norm limit.
    window_stride
        Bins between training window starts.
    alphas
        Candidate ridge penalties of the final head.
    seed
        Seeds window order and dropout.
    """

    lr: float = 3e-4
    new_lr_factor: float = 10.0
    layer_decay: float = 0.75
    weight_decay: float = 0.01
    steps: int = 400
    batch_size: int = 16
    eval_every: int = 25
    patience: int = 3
    max_seconds: float = 100.0
    grad_clip: float = 1.0
    window_stride: int = 5
    alphas: tuple[float, ...] = DEFAULT_ALPHAS
    seed: int = 0


def _depth(name: str, n_layers: int) -> int:
    """0 for the tokenizer, ``i + 1`` for block ``i``, ``n_layers + 1`` for the final norm and head."""
    if name.startswith("encoder.blocks."):
        return int(name.split(".")[2]) + 1
    if name.startswith("encoder.tokenizer."):
        return 0
    return n_layers + 1


def layerwise_groups(
    decoder: Decoder, new_parameters: Sequence[nn.Parameter], config: FinetuneConfig
) -> list[dict]:
    """AdamW parameter groups: layer-wise decayed rates, new parameters at ``new_lr_factor`` × the rate.

    Returns
    -------
    list of dict
        One group per distinct (rate, weight decay), each with ``params``, ``lr`` and ``weight_decay``.
    """
    new_ids = {id(parameter) for parameter in new_parameters}
    n_layers = decoder.encoder.config.n_layers
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    for name, parameter in decoder.named_parameters():
        if id(parameter) in new_ids:
            key = (config.lr * config.new_lr_factor, 0.0)
        else:
            scale = config.layer_decay ** (n_layers + 1 - _depth(name, n_layers))
            key = (config.lr * scale, config.weight_decay if parameter.ndim > 1 else 0.0)
        groups.setdefault(key, []).append(parameter)
    return [{"params": params, "lr": lr, "weight_decay": decay} for (lr, decay), params in groups.items()]


def finetune(
    decoder: Decoder,
    bins: SessionBins,
    split: CalibrationSplit,
    new_parameters: Sequence[nn.Parameter],
    config: FinetuneConfig,
    desc: str = "stage B (full fine-tune)",
    progress: bool = True,
    on_step: Callable[[float, str], None] | None = None,
) -> FittedDecoder:
    """Fine-tune all of ``decoder`` on the fit block, stop early on the validation block, refit the head.

    Parameters
    ----------
    decoder
        Start point (e.g. Stage A's decoder); trained in place.
    bins
        The calibration block as model inputs (``bins.context`` is the session's row).
    split
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
        Called at every validation check with the share of steps done and a status line
        (the desktop app's progress dialog).

    Returns
    -------
    FittedDecoder
    """
    started, cpu_started = time.perf_counter(), time.process_time()
    torch.manual_seed(config.seed)
    for parameter in decoder.parameters():
        parameter.requires_grad_(True)
    fit_bins = bins.block(split.fit)
    window = decoder.encoder.config.window_bins
    loss_fn = KinematicsLoss(decoder, fit_bins.kinematics.std(axis=0), skip_bins=window // 2)
    windows = WindowSet([fit_bins], window, config.window_stride)
    sampler = WindowSampler(len(windows), min(config.batch_size, len(windows)), config.seed)
    decoder.eval()
    # The start head is refit on the fit block alone: a head fit on the whole training part has
    # seen the validation block, and early stopping would then always keep the starting weights.
    start_latents = block_latents(decoder.encoder, bins, BinBlock(0, split.val.stop))
    start_head, _, _ = fit_ridge_head(start_latents, bins.kinematics, split, config.alphas, final=split.fit)
    decoder.head.load_state_dict(start_head.state_dict())
    optimizer = torch.optim.AdamW(layerwise_groups(decoder, new_parameters, config))
    stopping = EarlyStopping(decoder, config.patience, config.steps, on_step)
    stopping.start(validation_r2(decoder, bins, split.val))
    with tqdm(total=config.steps, desc=desc, unit="step", disable=not progress) as bar:
        for step in range(1, config.steps + 1):
            decoder.train()
            loss = loss_fn(windows.batch(sampler.indices(step - 1)))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(decoder.parameters(), config.grad_clip)
            optimizer.step()
            bar.update(1)
            out_of_time = time.perf_counter() - started > config.max_seconds
            if step % config.eval_every == 0 or step == config.steps or out_of_time:
                decoder.eval()
                val = validation_r2(decoder, bins, split.val)
                if stopping.check(step, float(loss.detach()), val, bar) or out_of_time:
                    break
    stopping.restore_best()
    decoder.eval()
    for parameter in decoder.parameters():
        parameter.requires_grad_(False)
    latents = block_latents(decoder.encoder, bins)
    head, alpha, val_r2 = fit_ridge_head(latents, bins.kinematics, split, config.alphas)
    return FittedDecoder(
        Decoder(decoder.encoder, head).eval(),
        bins.context,
        alpha,
        val_r2,
        latents,
        time.perf_counter() - started,
        stopping.history,
        time.process_time() - cpu_started,
    )
