"""Adapters that turn the model's objectives into ``batch -> scalar loss`` modules.

The optimisation loop (and DDP around it) calls one module with a
:class:`~rtbci.train.data.Batch`; the model's objectives take tensors and return
a dict of losses. These adapters pick the inputs and the scalar.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from rtbci.models.decoder import Decoder
from rtbci.models.distillation import DistillationObjective
from rtbci.models.pretraining import MaskedAutoencoder, MaskedLatentObjective
from rtbci.train.data import Batch

__all__ = ["DistillationLoss", "KinematicsLoss", "PretrainingLoss"]


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


class KinematicsLoss(nn.Module):
    """Mean squared error of a decoder's kinematics on a batch of windows, each axis standardised.

    Standardising makes every axis count the same whatever its units. Only bins
    with at least ``context_bins`` bins of history in their window are scored:
    online, each bin sees a full window of history, so bins near a window's
    start would train a case that never occurs.

    Parameters
    ----------
    decoder
        The decoder being trained (encoder and head).
    std
        ``(K,)`` standard deviation of each target over the training bins.
    context_bins
        Leading bins of each window that give history but are not scored.
    """

    def __init__(self, decoder: Decoder, std: np.ndarray, context_bins: int) -> None:
        super().__init__()
        self.decoder = decoder
        self.context_bins = context_bins
        self.register_buffer("std", torch.as_tensor(np.maximum(std, 1e-9), dtype=torch.float32))

    def forward(self, batch: Batch) -> torch.Tensor:
        modality = self.decoder.encoder.config.modality
        predicted = self.decoder(batch.modality(modality), batch.session)[:, self.context_bins :]
        target = batch.kinematics[:, self.context_bins :]
        return (((predicted - target) / self.std) ** 2).mean()
