"""Validation R² during training: a ridge readout of the current latents.

Fit on (the end of) the training blocks, scored on the later validation blocks.
Self-supervised stages do not see behavior; this is how their progress bar
still shows what the latents are worth for decoding.
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
    """Callable that returns the validation R² of a ridge readout of ``encoder``.

    Parameters
    ----------
    encoder
        The encoder being trained (its current weights are used at each call).
    train, val
        Training and validation blocks.
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
        r2 = readout_r2(
            fit,
            [block.kinematics for block in self.fit_blocks],
            score,
            [block.kinematics for block in self.val_blocks],
            self.alpha,
        )
        return float(np.mean(r2))
