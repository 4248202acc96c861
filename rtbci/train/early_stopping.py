"""Early stopping on validation R²: keep the best weights seen, stop after ``patience`` checks."""

from __future__ import annotations

import copy

import torch

__all__ = ["EarlyStopping"]


class EarlyStopping:
    """Keep the best weights seen at validation checks; say when ``patience`` checks brought no gain.

    Parameters
    ----------
    module
        What is being trained; its state is copied at every improvement.
    patience
        Validation checks without a new best before training should stop.
    """

    def __init__(self, module: torch.nn.Module, patience: int) -> None:
        if patience < 1:
            raise ValueError(f"patience must be at least 1, not {patience}")
        self.module = module
        self.patience = patience
        self._best_score = float("-inf")
        self._best_state: dict | None = None
        self._checks_without_gain = 0

    def start(self, score: float) -> None:
        """Record the score of the starting weights, which are kept unless beaten."""
        self._best_score, self._best_state = score, copy.deepcopy(self.module.state_dict())

    def check(self, score: float) -> bool:
        """Record one validation check.

        Returns
        -------
        bool
            True when ``patience`` checks in a row brought no new best.
        """
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
