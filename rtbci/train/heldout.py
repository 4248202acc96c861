"""Decoding sessions an encoder never saw: a context row for the new session and
a readout calibrated on an early block, scored on a later one.

Nothing of the encoder is trained here. The unseen session's context row is
set to the mean of the rows of the same subject's training sessions (the best
guess without training it), and only the linear readout is fit. Calibration's
Stage A (:mod:`rtbci.train.stage_a`) starts its new row the same way, then trains it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from rtbci.metrics import r2_per_axis
from rtbci.models.encoder import Encoder
from rtbci.train.data import SessionBins
from rtbci.train.latents import Pooling
from rtbci.train.readout import LinearReadout, encode_blocks, fit_readout, ridge_path
from rtbci.train.splits import BinBlock

__all__ = [
    "CalibratedScore",
    "add_unseen_session",
    "calibrate_and_score",
    "choose_alpha",
    "encoder_score",
    "subject_session_rows",
]


def subject_session_rows(session_ids: Sequence[str], subject: str) -> list[int]:
    """Rows of the table ``session_ids`` that hold sessions of ``subject`` (ids ``<subject>-...``).

    All rows when none does: the mean of every session is the next best guess.
    """
    rows = [row for row, session_id in enumerate(session_ids) if session_id.startswith(f"{subject}-")]
    return rows or list(range(len(session_ids)))


def add_unseen_session(encoder: Encoder, like_rows: Sequence[int]) -> tuple[int, list[torch.nn.Parameter]]:
    """Add a session-table row for an unseen session, set to the mean of ``like_rows``.

    Parameters
    ----------
    encoder
        The encoder; its table grows by one row (old rows are unchanged).
    like_rows
        Rows of trained sessions of the same subject (:func:`subject_session_rows`).

    Returns
    -------
    row, new_parameters
        The new row, and the parameters created for it (what calibration trains).
    """
    if not like_rows:
        raise ValueError("need at least one trained session row to start an unseen session from")
    row = encoder.config.n_sessions
    with torch.no_grad():
        rows = torch.tensor(list(like_rows), dtype=torch.int64, device=next(encoder.parameters()).device)
        start = encoder.tokenizer.session_table()(rows).mean(dim=0, keepdim=True)
    new_names = encoder.add_sessions(1)
    parameters = dict(encoder.named_parameters())
    new_parameters = [parameters[name] for name in new_names]
    with torch.no_grad():
        new_parameters[0].copy_(start)
    return row, new_parameters


def choose_alpha(
    features: np.ndarray, targets: np.ndarray, alphas: Sequence[float], inner_fraction: float = 0.8
) -> float:
    """Ridge penalty with the best R² on the last part of a calibration block.

    The first ``inner_fraction`` of the block fits, the rest scores: contiguous,
    so the choice never peeks at later data.
    """
    cut = int(len(features) * inner_fraction)
    scores = [
        (float(np.mean(r2_per_axis(targets[cut:], readout.predict(features[cut:])))), readout.alpha)
        for readout in ridge_path(features[:cut], targets[:cut], alphas)
    ]
    return max(scores)[1]


@dataclass
class CalibratedScore:
    """R² of a readout calibrated on one block and scored on a later one."""

    r2_per_axis: np.ndarray
    readout: LinearReadout

    @property
    def r2(self) -> float:
        """Mean R² over outputs."""
        return float(np.mean(self.r2_per_axis))


def calibrate_and_score(
    calibration_features: np.ndarray,
    calibration_targets: np.ndarray,
    test_features: np.ndarray,
    test_targets: np.ndarray,
    alphas: Sequence[float],
) -> CalibratedScore:
    """Choose a penalty and fit a readout on the calibration block; score it on the test block."""
    alpha = choose_alpha(calibration_features, calibration_targets, alphas)
    readout = fit_readout([calibration_features], [calibration_targets], alpha)
    return CalibratedScore(r2_per_axis(test_targets, readout.predict(test_features)), readout)


def encoder_score(
    encoder: Encoder,
    session: SessionBins,
    calibration: BinBlock,
    test: BinBlock,
    alphas: Sequence[float],
    pool: Pooling = "mean",
) -> CalibratedScore:
    """Score an encoder's latents on one session with a readout calibrated on an earlier block.

    ``session.context`` must be the session's row in ``encoder``'s table; ``pool``
    chooses how a bin's token latents are combined (see :func:`rtbci.train.latents.encode_bins`).
    """
    latents = encode_blocks(encoder, [session], pool)[0]
    return calibrate_and_score(
        latents[calibration.as_slice()],
        session.kinematics[calibration.as_slice()],
        latents[test.as_slice()],
        session.kinematics[test.as_slice()],
        alphas,
    )
