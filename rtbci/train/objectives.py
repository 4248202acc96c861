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

    Both encoders share the session table's rows: a window's row selects its
    session in the teacher, and in the student unless ``student_rows`` maps it
    to another row (a subject's shared row).

    Parameters
    ----------
    objective
        The model's distillation objective (student, frozen teacher, λ).
    student_rows
        ``(n_sessions,)`` row of the student's table that each teacher row reads;
        ``None`` for the same row in both.
    """

    def __init__(self, objective: DistillationObjective, student_rows: torch.Tensor | None = None) -> None:
        super().__init__()
        self.objective = objective
        # A buffer, so that it moves to the device with the module.
        self.register_buffer("student_rows", student_rows)

    def forward(self, batch: Batch) -> torch.Tensor:
        student_session = batch.session if self.student_rows is None else self.student_rows[batch.session]
        return self.objective(batch.lfp, batch.spikes, student_session, batch.session)["loss"]
