"""Decoder = encoder + behavior head: the module that is exported and runs online."""

from __future__ import annotations

import torch
from torch import nn

from rtbci.models.encoder import Encoder, StepState
from rtbci.models.heads import RidgeHead

__all__ = ["Decoder"]


class Decoder(nn.Module):
    """Raw features -> kinematics per bin, with either an LFP student or a spike teacher encoder."""

    def __init__(self, encoder: Encoder, head: RidgeHead):
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(
        self, x: torch.Tensor, session: torch.Tensor, subject: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``(B, T, C, F)`` raw features -> ``(B, T, K)`` kinematics."""
        return self.head(self.encoder.pool(self.encoder(x, session, subject=subject)))

    def step(
        self,
        features: torch.Tensor,
        state: StepState,
        session: torch.Tensor,
        subject: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, StepState]:
        """One bin's ``(K,)`` kinematics and the next state (:meth:`Encoder.step`, then the head)."""
        pooled, next_state = self.encoder.step(features, state, session, subject)
        return self.head(pooled)[0], next_state
