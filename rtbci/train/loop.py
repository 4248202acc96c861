"""The one optimisation loop every training stage runs.

A stage supplies an objective (an ``nn.Module`` whose ``forward(batch)``
returns a scalar loss), the windows to train on, and optionally a validation
function returning R². The loop owns the rest: AdamW with warm-up and cosine
decay, gradient clipping, DDP, a tqdm bar with loss and validation R², and a
resumable state file that is written atomically.
"""

from __future__ import annotations

import json
import math
import os
import pickle
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from rtbci.errors import UserError
from rtbci.train.data import Batch, WindowSampler, WindowSet
from rtbci.train.ddp import DistributedContext, all_reduce_mean, wrap_model

__all__ = ["LoopConfig", "LoopResult", "ResumeError", "TrainState", "run_loop", "settings_without_loop"]


class ResumeError(UserError):
    """A state file exists but was written by a different run."""


@dataclass(frozen=True)
class LoopConfig:
    """Optimisation settings of one stage.

    Attributes
    ----------
    steps
        Optimiser steps in total (a resumed run continues up to this number).
    batch_size
        Windows per process per step.
    lr, weight_decay
        AdamW settings; the rate warms up linearly and decays on a cosine.
    warmup_steps
        Steps of linear warm-up.
    grad_clip
        Global gradient-norm limit.
    eval_every
        Steps between validation passes (0: only at the end).
    checkpoint_every
        Steps between state files (0: only at the end).
    seed
        Seeds parameter initialisation, window order and dropout.
    """

    steps: int = 2000
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
    grad_clip: float = 1.0
    eval_every: int = 250
    checkpoint_every: int = 250
    seed: int = 0

    @classmethod
    def in_memory(cls, steps: int, lr: float, batch_size: int, seed: int) -> LoopConfig:
        """A run that keeps no state files (benchmarks): warm-up over 5% of the steps, 4 validations."""
        return cls(
            steps=steps,
            batch_size=batch_size,
            lr=lr,
            warmup_steps=max(1, steps // 20),
            eval_every=max(1, steps // 4),
            checkpoint_every=0,
            seed=seed,
        )


@dataclass
class TrainState:
    """What a stage has done so far; saved with the weights for resuming."""

    step: int = 0
    losses: list[float] = field(default_factory=list)
    val_r2: list[tuple[int, float]] = field(default_factory=list)


@dataclass
class LoopResult:
    """The outcome of :func:`run_loop`.

    Attributes
    ----------
    state
        Final step, per-step losses and validation R² history.
    resumed_from
        Step the run resumed from (0 for a fresh start).
    """

    state: TrainState
    resumed_from: int


def settings_without_loop(config: object) -> dict:
    """A stage config (a dataclass with a ``loop`` field) as plain data, minus ``loop``.

    These are the settings that identify a run in its state file; the loop
    settings may change on resume (e.g. more steps).
    """
    return {name: value for name, value in asdict(config).items() if name != "loop"}


def _schedule(config: LoopConfig) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _save_state(
    path: Path, objective: nn.Module, optimizer, scheduler, state: TrainState, config, metadata: dict
) -> None:
    payload = {
        "metadata": metadata,
        "objective": objective.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "state": asdict(state),
        "config": asdict(config),
        "torch_rng": torch.get_rng_state(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".partial")
    torch.save(payload, partial)
    os.replace(partial, path)  # atomic: a killed run leaves the previous state intact


def _load_state(path: Path, objective: nn.Module, optimizer, scheduler, metadata: dict) -> TrainState:
    try:
        # Plain data and tensors only: a state file that holds any other object could run code.
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ResumeError(
            f"{path}: refused: the state file holds objects other than plain data and tensors ({error})"
        ) from None
    if json.dumps(payload["metadata"], sort_keys=True) != json.dumps(metadata, sort_keys=True):
        raise ResumeError(
            f"{path}: this state file belongs to another run (its config, session table or "
            "normalisation differ); delete it or choose another output directory"
        )
    objective.load_state_dict(payload["objective"])
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])
    torch.set_rng_state(payload["torch_rng"])
    saved = payload["state"]
    return TrainState(saved["step"], list(saved["losses"]), [tuple(item) for item in saved["val_r2"]])


def run_loop(
    objective: nn.Module,
    windows: WindowSet,
    config: LoopConfig,
    context: DistributedContext,
    *,
    desc: str,
    state_path: Path | None = None,
    validate: Callable[[], float] | None = None,
    after_step: Callable[[], None] | None = None,
    parameters: list[nn.Parameter] | None = None,
    metadata: dict | None = None,
) -> LoopResult:
    """Train ``objective`` on ``windows`` for ``config.steps`` steps.

    Parameters
    ----------
    objective
        Module whose ``forward(batch: Batch)`` returns the scalar loss.
    windows
        Training windows.
    config
        Optimisation settings.
    context
        From :func:`~rtbci.train.ddp.init_distributed`.
    desc
        Label of the progress bar.
    state_path
        Where the resumable state lives. If the file exists the run resumes from
        it; it is rewritten every ``config.checkpoint_every`` steps and at the end.
    validate
        Called on the main process every ``config.eval_every`` steps and at the
        end, with the objective in eval mode; returns validation R².
    after_step
        Called after every optimiser step (e.g. to update an EMA target).
    parameters
        Parameters to optimise; all trainable parameters of ``objective`` by default.
    metadata
        Plain data that identifies the run (model config, session table,
        normalisation); saved in the state file, and a state file whose
        metadata differs is refused instead of resumed.

    Returns
    -------
    LoopResult
    """
    metadata = metadata or {}
    objective.to(context.device)
    trainable = (
        parameters if parameters is not None else [p for p in objective.parameters() if p.requires_grad]
    )
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(config))
    state = TrainState()
    if state_path is not None and state_path.exists():
        state = _load_state(state_path, objective, optimizer, scheduler, metadata)
    resumed_from = state.step
    model = wrap_model(objective, context)
    sampler = WindowSampler(len(windows), config.batch_size, config.seed, context.rank, context.world_size)

    def run_validation() -> None:
        if validate is None or not context.is_main:
            return
        objective.eval()
        with torch.no_grad():
            state.val_r2.append((state.step, float(validate())))
        objective.train()

    def save() -> None:
        if state_path is not None and context.is_main:
            _save_state(state_path, objective, optimizer, scheduler, state, config, metadata)

    objective.train()
    bar = tqdm(total=config.steps, initial=state.step, desc=desc, disable=not context.is_main, unit="step")
    while state.step < config.steps:
        batch: Batch = windows.batch(sampler.indices(state.step)).to(context.device)
        loss = model(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, config.grad_clip)
        optimizer.step()
        scheduler.step()
        if after_step is not None:
            after_step()
        state.losses.append(all_reduce_mean(float(loss.detach()), context))
        state.step += 1
        if config.eval_every and state.step % config.eval_every == 0 and state.step < config.steps:
            run_validation()
        if config.checkpoint_every and state.step % config.checkpoint_every == 0:
            save()
            context.barrier()
        postfix = {"loss": f"{state.losses[-1]:.4f}"}
        if state.val_r2:
            postfix["val_r2"] = f"{state.val_r2[-1][1]:.3f}"
        bar.set_postfix(postfix)
        bar.update(1)
    bar.close()
    if resumed_from < config.steps or not state.val_r2:
        run_validation()
    save()
    context.barrier()
    return LoopResult(state, resumed_from)
