"""Early stopping on held-in validation R², shared by Stage A and Stage B."""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from tqdm import tqdm

__all__ = ["EarlyStopping"]


class EarlyStopping:
    """Keep the best weights seen at validation checks; stop after ``patience`` checks without gain.

    Parameters
    ----------
    module
        What is being trained; its state is copied at every improvement.
    patience
        Validation checks without a new best before training should stop.
    total_steps
        Planned steps, for the progress fraction passed to ``on_step``.
    on_step
        Called at every check with the fraction done and a one-line message.
    """

    def __init__(
        self,
        module: torch.nn.Module,
        patience: int,
        total_steps: int,
        on_step: Callable[[float, str], None] | None = None,
    ) -> None:
        self.module = module
        self.patience = patience
        self.total_steps = total_steps
        self.on_step = on_step
        self.history: list[tuple[int, float, float]] = []
        self._best_score = float("-inf")
        self._best_state: dict | None = None
        self._checks_without_gain = 0

    def start(self, score: float) -> None:
        """Record the score of the starting weights, which are kept unless beaten."""
        self._best_score, self._best_state = score, copy.deepcopy(self.module.state_dict())
        self.history.append((0, float("nan"), score))

    def check(self, step: int, loss: float, score: float, bar: tqdm) -> bool:
        """Record one validation check.

        Returns
        -------
        bool
            True when ``patience`` checks in a row brought no new best.
        """
        self.history.append((step, loss, score))
        bar.set_postfix(loss=f"{loss:.3f}", val_r2=f"{score:.3f}")
        if self.on_step is not None:
            self.on_step(step / self.total_steps, f"step {step}: loss {loss:.3f}, val R² {score:.3f}")
        if score > self._best_score:
            self._best_score, self._best_state = score, copy.deepcopy(self.module.state_dict())
            self._checks_without_gain = 0
        else:
            self._checks_without_gain += 1
        return self._checks_without_gain >= self.patience

    def restore_best(self) -> None:
        """Load the best weights seen into the module."""
        if self._best_state is None:
            raise RuntimeError("EarlyStopping.start was never called")
        self.module.load_state_dict(self._best_state)
