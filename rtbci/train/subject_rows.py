"""One context row per subject: map sessions to a shared row while training,
then give every session row of the model its subject's trained row."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from rtbci.models.encoder import Encoder
from rtbci.train.data import SessionBins

__all__ = ["copy_subject_rows", "read_subject_rows", "subject_rows"]


def subject_rows(blocks: Sequence[SessionBins], n_sessions: int) -> torch.Tensor:
    """``(n_sessions,)``: each block's row mapped to the row of its subject's first block.

    Rows of no block map to themselves.
    """
    first_row: dict[str, int] = {}
    rows = torch.arange(n_sessions)
    for block in blocks:
        rows[block.context] = first_row.setdefault(block.subject, block.context)
    return rows


def read_subject_rows(blocks: Sequence[SessionBins], rows: torch.Tensor) -> list[SessionBins]:
    """The blocks, each reading the row ``rows`` maps its own row to."""
    return [dataclasses.replace(block, context=int(rows[block.context])) for block in blocks]


def copy_subject_rows(encoder: Encoder, rows: torch.Tensor) -> None:
    """Give every session row of ``encoder`` the trained row ``rows`` maps it to.

    Afterwards the encoder has an ordinary session table, one row per session,
    for export, calibration and held-out sessions.
    """
    table = encoder.tokenizer.session_table()
    (entries,) = table.chunks  # a model trained from scratch has not grown
    with torch.no_grad():
        entries.copy_(entries[rows.to(entries.device)].clone())
