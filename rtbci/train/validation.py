"""Validation R² during training: ridge readouts of the current latents.

Each session gets its own readout, fit on (the end of) its training block and
scored on its later validation block, as a decoder is recalibrated per
session; the R² is the mean over sessions. Self-supervised stages do not see
behavior; this is how their progress bar still shows what the latents are
worth for decoding.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rtbci.models.encoder import Encoder
from rtbci.train.data import SessionBins
from rtbci.train.readout import encode_blocks, readout_r2
from rtbci.train.splits import BinBlock

__all__ = ["ReadoutValidation"]


class ReadoutValidation:
    """Callable that returns the mean per-session validation R² of ridge readouts of ``encoder``.

    Parameters
    ----------
    encoder
        The encoder being trained (its current weights are used at each call).
    train, val
        Training and validation blocks, one of each per session, in the same order.
    alpha
        Ridge penalty.
    max_fit_bins
        Only the last this many bins of each training block are encoded for the
        fit, which keeps validation cheap next to training.
    """

    def __init__(
        self,
        encoder: Encoder,
        train: Sequence[SessionBins],
        val: Sequence[SessionBins],
        alpha: float = 10.0,
        max_fit_bins: int = 3000,
    ) -> None:
        self.encoder = encoder
        self.fit_blocks = [
            block.block(BinBlock(max(0, block.n_bins - max_fit_bins), block.n_bins)) for block in train
        ]
        self.val_blocks = list(val)
        self.alpha = alpha

    def __call__(self) -> float:
        fit = encode_blocks(self.encoder, self.fit_blocks)
        score = encode_blocks(self.encoder, self.val_blocks)
        per_session = [
            np.mean(
                readout_r2(
                    [fit_latents], [fit_block.kinematics], [val_latents], [val_block.kinematics], self.alpha
                )
            )
            for fit_latents, fit_block, val_latents, val_block in zip(
                fit, self.fit_blocks, score, self.val_blocks, strict=True
            )
        ]
        return float(np.mean(per_session))
