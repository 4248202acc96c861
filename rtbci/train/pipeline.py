"""The training stages over Session files: teacher -> student -> head -> export.

Each stage reads the training data, cuts every session into contiguous
train/validation/test blocks (the same cut in every stage), trains, and writes
a checkpoint next to a resumable state file. Under ``torchrun`` every process
runs this code; only the main process writes files.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from rtbci.models.checkpoint import Checkpoint, build_encoder, load_checkpoint, save_checkpoint
from rtbci.models.encoder import Encoder
from rtbci.profile import Profile
from rtbci.runtime.export import export_artifact
from rtbci.runtime.manifest import Manifest
from rtbci.signal import BinnedSession
from rtbci.train.checkpoints import decoder_checkpoint, encoder_checkpoint
from rtbci.train.data import DataError, SessionBins, SessionTable
from rtbci.train.ddp import DistributedContext
from rtbci.train.distill import DistillConfig, distill
from rtbci.train.finetune import FinetuneConfig, finetune
from rtbci.train.head import HeadConfig, fit_head, score_decoder
from rtbci.train.pretrain import PretrainConfig, pretrain
from rtbci.train.splits import SplitConfig, split_blocks

__all__ = [
    "STAGE_FILES",
    "PipelineConfig",
    "SplitData",
    "export_decoder",
    "run_pipeline",
    "split_sessions",
    "train_head",
    "train_student",
    "train_teacher",
]

# File names inside a stage's output directory.
STAGE_FILES = {"teacher": "teacher.pt", "student": "student.pt", "head": "decoder.pt"}


@dataclass(frozen=True)
class PipelineConfig:
    """Settings of all stages.

    Attributes
    ----------
    split
        How each session is cut into train/validation/test blocks.
    teacher
        Spike-teacher pretraining.
    student
        LFP-student distillation.
    head
        Behavior-head fitting.
    finetune
        Optional supervised fine-tuning of encoder and head after the ridge fit
        (``finetune.loop.steps = 0``, the default, skips it).
    """

    split: SplitConfig = field(default_factory=SplitConfig)
    teacher: PretrainConfig = field(default_factory=PretrainConfig)
    student: DistillConfig = field(default_factory=DistillConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)


@dataclass
class SplitData:
    """Training data cut into blocks, with the rows of its sessions.

    Attributes
    ----------
    table
        Session ids in context-table order.
    train, val, test
        One block per session each, in table order of the data.
    """

    table: SessionTable
    train: list[SessionBins]
    val: list[SessionBins]
    test: list[SessionBins]


def split_sessions(binned: Sequence[BinnedSession], split: SplitConfig, table: SessionTable) -> SplitData:
    """Cut featurized sessions into blocks, taking their rows from ``table``.

    Raises
    ------
    DataError
        If a session is not in the table, or is too short to split.
    """
    train, val, test = [], [], []
    for session in binned:
        bins = SessionBins.from_binned(session, table.row(session.session_id))
        try:
            blocks = split_blocks(bins.n_bins, split)
        except ValueError as error:
            raise DataError(f"session {session.session_id!r}: {error}") from None
        train.append(bins.block(blocks.train))
        val.append(bins.block(blocks.val))
        test.append(bins.block(blocks.test))
    return SplitData(table, train, val, test)


def _table_of(checkpoint: Checkpoint) -> SessionTable:
    return SessionTable(checkpoint.session_ids)


def _r2_metrics(prefix: str, values: np.ndarray) -> dict[str, float | list[float]]:
    return {f"{prefix}_r2": float(np.mean(values)), f"{prefix}_r2_per_axis": [float(v) for v in values]}


def train_teacher(
    binned: Sequence[BinnedSession],
    profile: Profile,
    config: PipelineConfig,
    context: DistributedContext,
    out_dir: Path,
) -> tuple[Encoder, Path]:
    """Pretrain the spike teacher on all sessions; writes ``teacher.pt``.

    Returns
    -------
    teacher, path
        The trained encoder and its checkpoint file.
    """
    table = SessionTable([session.session_id for session in binned])
    data = split_sessions(binned, config.split, table)
    teacher, result = pretrain(
        data.train,
        data.val,
        profile,
        config.teacher,
        context,
        n_sessions=len(table),
        state_path=out_dir / "teacher.state.pt",
        desc=f"teacher ({config.teacher.objective})",
    )
    metrics = {"final_loss": result.state.losses[-1], "val_r2_history": result.state.val_r2}
    path = out_dir / STAGE_FILES["teacher"]
    if context.is_main:
        save_checkpoint(path, encoder_checkpoint(teacher, table.ids, profile, metrics))
    return teacher, path


def train_student(
    binned: Sequence[BinnedSession],
    profile: Profile,
    config: PipelineConfig,
    context: DistributedContext,
    teacher_path: Path,
    out_dir: Path,
) -> tuple[Encoder, Path]:
    """Distill the teacher in ``teacher_path`` into an LFP student; writes ``student.pt``.

    Every session must be in the teacher's session table (distillation needs
    the teacher's latents of it).
    """
    checkpoint = load_checkpoint(teacher_path)
    table = _table_of(checkpoint)
    data = split_sessions(binned, config.split, table)
    student, result = distill(
        build_encoder(checkpoint),
        data.train,
        data.val,
        profile,
        config.student,
        context,
        state_path=out_dir / "student.state.pt",
    )
    metrics = {"final_loss": result.state.losses[-1], "val_r2_history": result.state.val_r2}
    path = out_dir / STAGE_FILES["student"]
    if context.is_main:
        save_checkpoint(path, encoder_checkpoint(student, table.ids, profile, metrics))
    return student, path


def train_head(
    binned: Sequence[BinnedSession],
    profile: Profile,
    config: PipelineConfig,
    encoder_path: Path,
    out_dir: Path,
    device: torch.device | None = None,
) -> tuple[Checkpoint, Path]:
    """Fit the ridge head on an encoder checkpoint, then fine-tune if configured; writes ``decoder.pt``.

    The penalty is chosen on the validation blocks; the reported ``heldout_r2``
    is on the test blocks, which neither the encoder nor the head saw.
    Fine-tuning (``config.finetune``) runs in this one process, on ``device``
    (the CPU by default), with its resumable state next to ``decoder.pt``.
    """
    source = load_checkpoint(encoder_path)
    table = _table_of(source)
    data = split_sessions(binned, config.split, table)
    fitted = fit_head(build_encoder(source), data.train, data.val, config.head)
    decoder, val_r2 = fitted.decoder, fitted.val_r2
    metrics = {**source.metrics, "ridge_alpha": fitted.alpha}
    if config.finetune.loop.steps > 0:
        ridge_test_r2 = score_decoder(decoder, data.test)
        result = finetune(
            decoder,
            data.train,
            lambda: float(np.mean(score_decoder(decoder, data.val))),
            config.finetune,
            context=DistributedContext.single(device),
            state_path=out_dir / "finetune.state.pt",
        )
        decoder.cpu()
        val_r2 = score_decoder(decoder, data.val)
        metrics |= {
            **_r2_metrics("heldout_before_finetune", ridge_test_r2),
            "finetune_val_r2_history": result.state.val_r2,
        }
    metrics |= {
        **_r2_metrics("val", val_r2),
        **_r2_metrics("heldout", score_decoder(decoder, data.test)),
        "heldout_blocks": (
            f"last {config.split.fractions[2]:.0%} of each training session, "
            f"after a {config.split.gap_bins}-bin gap"
        ),
    }
    checkpoint = decoder_checkpoint(decoder, table.ids, profile, metrics)
    path = out_dir / STAGE_FILES["head"]
    save_checkpoint(path, checkpoint)
    return checkpoint, path


def export_decoder(decoder_path: Path, artifact_dir: Path, session_id: str | None = None) -> Manifest:
    """Export a decoder checkpoint as the streaming ONNX artifact (:mod:`rtbci.runtime.export`).

    Parameters
    ----------
    decoder_path
        ``decoder.pt`` from :func:`train_head`.
    artifact_dir
        Output folder (``decoder.onnx``, ``manifest.json``).
    session_id
        Session whose context the artifact bakes in; the last row of the table by default.
    """
    return export_artifact(decoder_path, artifact_dir, session_id=session_id)


def _export_session(session_ids: Sequence[str], subject: str) -> str:
    """The newest session of the profile's subject (sorted ids), else the newest session."""
    own = sorted(sid for sid in session_ids if sid.startswith(f"{subject}-"))
    return own[-1] if own else session_ids[-1]


def run_pipeline(
    binned: Sequence[BinnedSession],
    profile: Profile,
    config: PipelineConfig,
    context: DistributedContext,
    out_dir: Path,
    export_session: str | None = None,
) -> dict:
    """Teacher -> student -> head -> export, all into ``out_dir``.

    ``export_session`` is the session whose context the artifact bakes in; by
    default the newest session of the profile's subject.

    Returns
    -------
    dict
        Paths written and the decoder's metrics (main process; other
        processes return after distillation).
    """
    _, teacher_path = train_teacher(binned, profile, config, context, out_dir)
    context.barrier()
    _, student_path = train_student(binned, profile, config, context, teacher_path, out_dir)
    context.barrier()
    if not context.is_main:
        return {}
    checkpoint, decoder_path = train_head(binned, profile, config, student_path, out_dir, context.device)
    artifact_dir = out_dir / "artifact"
    if export_session is None:
        export_session = _export_session(checkpoint.session_ids, profile.rig.subject)
    manifest = export_decoder(decoder_path, artifact_dir, export_session)
    summary = {
        "teacher": str(teacher_path),
        "student": str(student_path),
        "decoder": str(decoder_path),
        "artifact": str(artifact_dir),
        "artifact_sha256": manifest.sha256,
        "artifact_session": manifest.session_id,
        "metrics": checkpoint.metrics,
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary
