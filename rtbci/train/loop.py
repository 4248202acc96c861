"""The one optimisation loop every training stage runs, from pretraining to calibration.

A stage supplies an objective (an ``nn.Module`` whose ``forward(batch)``
returns a scalar loss), the windows to train on, and optionally a validation
function returning R². The loop owns the rest: AdamW over parameter groups
(each with its own rate, e.g. new session rows faster and lower layers slower),
warm-up and cosine decay or a constant rate, gradient clipping, early stopping
on validation R² (the best weights seen are kept), a time budget, DDP, a tqdm
bar with loss and validation R², an ``on_step`` callback, and a resumable state
file that is written atomically.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import nn
from tqdm.auto import tqdm

from rtbci.errors import UserError
from rtbci.train.data import Batch, WindowSampler, WindowSet
from rtbci.train.ddp import DistributedContext, all_reduce_mean, wrap_model
from rtbci.train.early_stopping import EarlyStopping

__all__ = [
    "LoopConfig",
    "LoopResult",
    "ResumeError",
    "StepReport",
    "TrainState",
    "run_loop",
    "settings_without_loop",
]


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
        Windows per process per step (at most the number of windows).
    lr, weight_decay
        AdamW settings; parameter groups passed to :func:`run_loop` set their own.
    schedule
        ``warmup_cosine``: the rate warms up linearly over ``warmup_steps`` and
        decays on a cosine to 0 at ``steps``; ``constant``: every group keeps its rate.
    warmup_steps
        Steps of linear warm-up (``warmup_cosine`` only).
    grad_clip
        Global gradient-norm limit (None: no clipping).
    eval_every
        Steps between validation passes (0: only at the end). The last step is always validated.
    checkpoint_every
        Steps between state files (0: only at the end).
    patience
        Early stopping: stop after this many validation passes without a new best,
        and end with the best weights seen, the starting weights included (None: no early stopping).
    max_seconds
        Time budget of the steps: the step that runs past it is the last (None: no budget).
    seed
        Seeds window order (stages seed initialisation and dropout with it too).
    """

    steps: int = 2000
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    schedule: Literal["warmup_cosine", "constant"] = "warmup_cosine"
    warmup_steps: int = 100
    grad_clip: float | None = 1.0
    eval_every: int = 250
    checkpoint_every: int = 250
    patience: int | None = None
    max_seconds: float | None = None
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


@dataclass(frozen=True)
class StepReport:
    """What :func:`run_loop` tells ``on_step`` after each optimiser step.

    Attributes
    ----------
    step, steps
        Steps done, and steps planned.
    loss
        Training loss of this step (mean over processes).
    val_r2
        Validation R² when this step was validated, else None.
    """

    step: int
    steps: int
    loss: float
    val_r2: float | None

    @property
    def fraction(self) -> float:
        """Share of the planned steps done."""
        return self.step / self.steps

    def line(self) -> str:
        """One line for a progress display."""
        val = "" if self.val_r2 is None else f", val R² {self.val_r2:.3f}"
        return f"step {self.step}: loss {self.loss:.3f}{val}"


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
        Final step, per-step losses and validation R² history (step 0: the
        starting weights, validated first when early stopping is on).
    resumed_from
        Step the run resumed from (0 for a fresh start).
    stopped
        Why the run ended before ``steps``: ``early`` (no gain for ``patience``
        validations) or ``time`` (``max_seconds``); None when it ran every step.
    """

    state: TrainState
    resumed_from: int
    stopped: Literal["early", "time"] | None = None

    @property
    def history(self) -> list[tuple[int, float, float]]:
        """``(step, loss, val_r2)`` of every validation (loss NaN at step 0)."""
        losses = self.state.losses
        return [(step, losses[step - 1] if step else float("nan"), val) for step, val in self.state.val_r2]


def settings_without_loop(config: object) -> dict:
    """A stage config (a dataclass with a ``loop`` field) as plain data, minus ``loop``.

    These are the settings that identify a run in its state file; the loop
    settings may change on resume (e.g. more steps).
    """
    return {name: value for name, value in asdict(config).items() if name != "loop"}


def _schedule(config: LoopConfig) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if config.schedule == "constant":
            return 1.0
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


def _check_settings(config: LoopConfig, context: DistributedContext, state_path: Path | None) -> None:
    stops_itself = config.patience is not None or config.max_seconds is not None
    if stops_itself and context.distributed:
        raise ValueError(
            "early stopping and a time budget run in one process (validation runs on the main one)"
        )
    if config.patience is not None and state_path is not None:
        raise ValueError(
            "early stopping keeps its best weights in memory: it does not resume from a state file"
        )


def run_loop(
    objective: nn.Module,
    windows: WindowSet,
    config: LoopConfig,
    context: DistributedContext | None = None,
    *,
    desc: str,
    state_path: Path | None = None,
    validate: Callable[[], float] | None = None,
    on_step: Callable[[StepReport], None] | None = None,
    parameters: Sequence[nn.Parameter] | Sequence[dict] | None = None,
    metadata: dict | None = None,
    train_mode: bool = True,
    progress: bool = True,
) -> LoopResult:
    """Train ``objective`` on ``windows`` for up to ``config.steps`` steps.

    Parameters
    ----------
    objective
        Module whose ``forward(batch: Batch)`` returns the scalar loss.
    windows
        Training windows.
    config
        Optimisation settings.
    context
        From :func:`~rtbci.train.ddp.init_distributed`; one CPU process by default.
    desc
        Label of the progress bar.
    state_path
        Where the resumable state lives. If the file exists the run resumes from
        it; it is rewritten every ``config.checkpoint_every`` steps and at the end.
    validate
        Called on the main process every ``config.eval_every`` steps and after the
        last step (and before the first with early stopping), with the objective
        in eval mode; returns validation R². Early stopping needs it.
    on_step
        Called after every optimiser step and its validation, before the state
        file is written (e.g. to update an EMA target, or to show progress).
    parameters
        What to optimise: parameters, or AdamW parameter groups (dicts with
        ``params`` and their own ``lr`` and ``weight_decay``); all trainable
        parameters of ``objective`` by default. The schedule scales every group's rate.
    metadata
        Plain data that identifies the run (model config, session table,
        normalisation); saved in the state file, and a state file whose
        metadata differs is refused instead of resumed.
    train_mode
        Put the objective in train mode for the steps (dropout on); False keeps
        it in eval mode (e.g. a frozen backbone whose new session row learns).
    progress
        Show the progress bar (on the main process).

    Returns
    -------
    LoopResult
    """
    context = context or DistributedContext.single()
    _check_settings(config, context, state_path)
    if config.patience is not None and validate is None:
        raise ValueError("early stopping needs a validate function")
    metadata = metadata or {}
    objective.to(context.device)
    if parameters is None:
        parameters = [p for p in objective.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    trainable = [p for group in optimizer.param_groups for p in group["params"]]
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(config))
    state = TrainState()
    if state_path is not None and state_path.exists():
        state = _load_state(state_path, objective, optimizer, scheduler, metadata)
    resumed_from = state.step
    model = wrap_model(objective, context)
    batch_size = max(1, min(config.batch_size, len(windows) // context.world_size))
    sampler = WindowSampler(len(windows), batch_size, config.seed, context.rank, context.world_size)

    def run_validation() -> float | None:
        if validate is None or not context.is_main:
            return None
        objective.eval()
        with torch.no_grad():
            score = float(validate())
        state.val_r2.append((state.step, score))
        objective.train(train_mode)
        return score

    def save() -> None:
        if state_path is not None and context.is_main:
            _save_state(state_path, objective, optimizer, scheduler, state, config, metadata)

    stopping = None
    if config.patience is not None:
        stopping = EarlyStopping(objective, config.patience)
        stopping.start(run_validation())
    stopped = None
    objective.train(train_mode)
    bar = tqdm(
        total=config.steps,
        initial=state.step,
        desc=desc,
        disable=not (progress and context.is_main),
        unit="step",
    )
    started = time.perf_counter()
    while state.step < config.steps:
        batch: Batch = windows.batch(sampler.indices(state.step)).to(context.device)
        loss = model(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(trainable, config.grad_clip)
        optimizer.step()
        scheduler.step()
        state.losses.append(all_reduce_mean(float(loss.detach()), context))
        state.step += 1
        out_of_time = config.max_seconds is not None and time.perf_counter() - started > config.max_seconds
        last = state.step == config.steps or out_of_time
        val = None
        if last or (config.eval_every and state.step % config.eval_every == 0):
            val = run_validation()
        if stopping is not None and val is not None and stopping.check(val):
            stopped = "early"
        elif out_of_time and state.step < config.steps:
            stopped = "time"
        if on_step is not None:
            on_step(StepReport(state.step, config.steps, state.losses[-1], val))
        if config.checkpoint_every and state.step % config.checkpoint_every == 0:
            save()
            context.barrier()
        postfix = {"loss": f"{state.losses[-1]:.4f}"}
        if state.val_r2:
            postfix["val_r2"] = f"{state.val_r2[-1][1]:.3f}"
        bar.set_postfix(postfix)
        bar.update(1)
        if stopped is not None:
            break
    bar.close()
    if not state.val_r2:
        run_validation()  # a resumed run that had no steps left, and no validation yet
    if stopping is not None:
        stopping.restore_best()
    save()
    context.barrier()
    return LoopResult(state, resumed_from, stopped)
