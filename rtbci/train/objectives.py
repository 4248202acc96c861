"""Adapters that turn the model's objectives into ``batch -> scalar loss`` modules.

The optimisation loop (and DDP around it) calls one module with a
:class:`~rtbci.train.data.Batch`; the model's objectives take tensors and return
a dict of losses. These adapters pick the inputs and the scalar.
"""

from __future__ import annotations

import torch
from torch import nn

from rtbci.models.distillation import DistillationObjective
from rtbci.models.pretraining import MaskedAutoencoder, MaskedLatentObjective
from rtbci.train.data import Batch

__all__ = ["DistillationLoss", "PretrainingLoss"]


class PretrainingLoss(nn.Module):
    """Self-supervised loss of one modality of a batch (MAE or masked latent reconstruction).

    Parameters
    ----------
    objective
        The model's pretraining objective; it owns the encoder being trained.
    """

    def __init__(self, objective: MaskedAutoencoder | MaskedLatentObjective) -> None:
        super().__init__()
        self.objective = objective

    def forward(self, batch: Batch) -> torch.Tensor:
        modality = self.objective.encoder.config.modality
        return self.objective(batch.modality(modality), batch.session)["loss"]


class DistillationLoss(nn.Module):
    """Cross-modal distillation loss of a batch: LFP student against the frozen spike teacher.

    Both encoders share the session table, so a window's row selects its
    session in each.

    Parameters
    ----------
    objective
        The model's distillation objective (student, frozen teacher, λ).
    """

    def __init__(self, objective: DistillationObjective) -> None:
        super().__init__()
        self.objective = objective

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.objective(batch.lfp, batch.spikes, batch.session, batch.session)["loss"]
