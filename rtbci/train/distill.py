"""Cross-modal distillation: train an LFP student to reproduce a frozen spike
teacher's per-bin latents on simultaneous recordings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from rtbci.models.distillation import DistillationObjective
from rtbci.models.encoder import Encoder
from rtbci.profile import Profile
from rtbci.train.data import SessionBins, WindowSet
from rtbci.train.ddp import DistributedContext
from rtbci.train.encoders import EncoderSize, fit_lfp_normalization, new_encoder
from rtbci.train.loop import LoopConfig, LoopResult, run_loop, settings_without_loop
from rtbci.train.objectives import DistillationLoss
from rtbci.train.subject_rows import copy_subject_rows, read_subject_rows, subject_rows
from rtbci.train.validation import ReadoutValidation

__all__ = ["DistillConfig", "distill"]


@dataclass(frozen=True)
class DistillConfig:
    """Settings of student distillation.

    Attributes
    ----------
    context
        Session context of the student: ``embedding`` or ``stitching``.
    size
        Transformer size of the student.
    reconstruction_weight
        λ of the masked LFP-feature reconstruction term (0 turns it off). In
        ``rtbci bench accuracy`` (held-out R², no channel check) 0.5 scored 0.328
        and 0.310 with seeds 0 and 1, against 0.312 and 0.312 for 0.1; 2.0 scored
        0.320 with seed 0. Without the term and dropout the student transferred worse.
    mask_ratio
        Share of LFP tokens hidden in the reconstruction pass.
    window_stride
        Bins between the starts of training windows.
    context_per_subject
        Train one context row per subject for the student instead of one per
        session: every session of a subject reads the row of its first session,
        and after training all of the subject's rows hold it. The teacher's rows are
        not touched, so the targets are unchanged. A session the student
        never saw then starts from the very row it was trained with instead of a
        mean of session rows. On by default: in ``rtbci bench accuracy`` it lifted
        the student's held-out R² from 0.255 to 0.276 (0.64 to 0.70 of the
        teacher) with no loss on the training sessions' later blocks (0.340 and
        0.328), and on 8 x 10 simulated minutes per subject from 0.281 and 0.256
        to 0.310 and 0.280 (teachers of two seeds). With one row per session the
        student keeps part of what it copies in rows an unseen session cannot have.
    loop
        Optimisation settings.
    """

    context: Literal["embedding", "stitching"] = "embedding"
    size: EncoderSize = field(default_factory=EncoderSize)
    reconstruction_weight: float = 0.1
    mask_ratio: float = 0.5
    window_stride: int = 10
    context_per_subject: bool = True
    loop: LoopConfig = field(default_factory=LoopConfig)


def distill(
    teacher: Encoder,
    train: Sequence[SessionBins],
    val: Sequence[SessionBins],
    profile: Profile,
    config: DistillConfig,
    context: DistributedContext,
    *,
    state_path: Path | None = None,
    desc: str = "distill",
) -> tuple[Encoder, LoopResult]:
    """Distill a spike teacher into a new LFP student.

    Parameters
    ----------
    teacher
        Pretrained spike encoder; it is frozen. Its session table must hold
        every session of ``train`` and ``val`` (rows given by their ``context``).
    train, val
        Training blocks, and later validation blocks for the R² of a ridge
        readout of the student's latents (shown in the progress bar).
    profile
        Channel layout, window and spatial scale.
    config
        Distillation settings.
    context
        Distributed context.
    state_path
        Resumable state file.
    desc
        Progress-bar label.

    Returns
    -------
    student, result
        The student (LFP normalisation baked in) in eval mode, and the loop's history.
    """
    if teacher.config.modality != "spikes":
        raise ValueError(f"the teacher must be a spike encoder, not {teacher.config.modality!r}")
    torch.manual_seed(config.loop.seed)
    n_sessions = teacher.config.n_sessions
    student = new_encoder(profile, "lfp", train[0].lfp.shape[-1], n_sessions, config.size, config.context)
    normalizer = fit_lfp_normalization(train)
    student.set_normalization(normalizer.mean, normalizer.std)
    objective = DistillationObjective(student, teacher, config.reconstruction_weight, config.mask_ratio)
    student_rows = subject_rows(train, n_sessions) if config.context_per_subject else None
    readout_blocks = (train, val)
    if student_rows is not None:
        # The progress bar's readout must read the rows the student is trained on.
        readout_blocks = (read_subject_rows(train, student_rows), read_subject_rows(val, student_rows))
    metadata = {
        "stage": "distill",
        "config": settings_without_loop(config),
        "encoder": student.config.to_dict(),
        "teacher": teacher.config.to_dict(),
        "normalization": normalizer.to_dict(),
    }
    result = run_loop(
        DistillationLoss(objective, student_rows),
        WindowSet(train, student.config.window_bins, config.window_stride),
        config.loop,
        context,
        desc=desc,
        state_path=state_path,
        validate=ReadoutValidation(student, *readout_blocks),
        metadata=metadata,
    )
    if student_rows is not None:
        copy_subject_rows(student, student_rows)
    return student.eval(), result
