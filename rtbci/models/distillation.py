"""Cross-modal distillation: an LFP student learns the frozen spike teacher's per-bin latents."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

from rtbci.models.encoder import Encoder
from rtbci.models.pretraining import MaskedAutoencoder

__all__ = ["DistillationObjective", "alignment_loss"]


def alignment_loss(student_pooled: torch.Tensor, teacher_pooled: torch.Tensor) -> torch.Tensor:
    """MSE between LayerNorm'd (no affine) per-bin latents ``(B, T, d)`` of student and teacher."""
    d = student_pooled.shape[-1:]
    return functional.mse_loss(
        functional.layer_norm(student_pooled, d), functional.layer_norm(teacher_pooled, d)
    )


class DistillationObjective(nn.Module):
    """Loss = alignment(student, frozen teacher) + λ × masked LFP-feature reconstruction.

    The alignment uses the student's unmasked pass (as it runs online); the
    reconstruction term is a separate masked pass through a small MAE decoder.

    Parameters
    ----------
    student
        LFP encoder being trained.
    teacher
        Pretrained spike encoder; frozen here (no gradients, always in eval mode).
    reconstruction_weight
        λ; 0 skips the masked pass.
    mask_ratio
        Fraction of LFP tokens hidden in the reconstruction pass.
    """

    def __init__(
        self, student: Encoder, teacher: Encoder, reconstruction_weight: float = 0.1, mask_ratio: float = 0.5
    ):
        super().__init__()
        self.student = student
        self.teacher = teacher.requires_grad_(False).eval()
        self.reconstruction_weight = reconstruction_weight
        self.student_mae = MaskedAutoencoder(student, decoder_layers=2, mask_ratio=mask_ratio)

    def train(self, mode: bool = True) -> DistillationObjective:
        super().train(mode)
        self.teacher.eval()
        return self

    def forward(
        self,
        lfp: torch.Tensor,
        spikes: torch.Tensor,
        student_session: torch.Tensor,
        teacher_session: torch.Tensor,
        student_subject: torch.Tensor | None = None,
        teacher_subject: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """``{"loss", "alignment", "reconstruction"}`` on simultaneous LFP and spikes.

        ``lfp`` is ``(B, T, C, F)`` raw features and ``spikes`` ``(B, T, C, 1)`` counts of the same bins.
        """
        with torch.no_grad():
            target = self.teacher.pool(self.teacher(spikes, teacher_session, subject=teacher_subject))
        student = self.student.pool(self.student(lfp, student_session, subject=student_subject))
        alignment = alignment_loss(student, target)
        if self.reconstruction_weight > 0:
            reconstruction = self.student_mae(lfp, student_session, subject=student_subject)["loss"]
        else:
            reconstruction = alignment.new_zeros(())
        return {
            "loss": alignment + self.reconstruction_weight * reconstruction,
            "alignment": alignment,
            "reconstruction": reconstruction,
        }
