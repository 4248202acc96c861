"""What both calibration stages share: the fitted decoder, streaming-exact latents of a block,
the closed-form head with its penalty chosen on the validation block, and validation R².

Latents of a block are always computed over the whole block from its first bin
(:func:`rtbci.train.latents.encode_bins`), so every bin's latent equals the one
the streaming decoder computes online; slicing them by block never changes a value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from rtbci.metrics import r2_per_axis
from rtbci.models.decoder import Decoder
from rtbci.models.encoder import Encoder
from rtbci.models.heads import RidgeHead
from rtbci.train.data import SessionBins
from rtbci.train.latents import encode_bins
from rtbci.train.readout import ridge_path
from rtbci.train.splits import BinBlock, FitBlocks

__all__ = ["DEFAULT_ALPHAS", "FittedDecoder", "block_latents", "fit_ridge_head", "validation_r2"]

# Candidate ridge penalties; latents are RMS-normalised, so their scale is about 1 per dimension.
DEFAULT_ALPHAS: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0, 1000.0)


@dataclass
class FittedDecoder:
    """A decoder fit to a calibration block.

    Attributes
    ----------
    decoder
        Encoder (with the new session's row) plus ridge head, in eval mode.
    session_row
        The new session's row in the encoder's table.
    alpha
        Ridge penalty of the head, chosen on the validation block.
    val_r2
        ``(K,)`` R² on the validation block with the chosen penalty (head fit on the fit block).
    latents
        ``(T, d)`` latents of every bin of the block, as the streaming decoder computes them.
    seconds
        Wall-clock time of the fit.
    history
        ``(step, loss, val_r2)`` of the gradient steps' validations, when there were any.
    cpu_seconds
        CPU time of the fit (all threads of this process): less sensitive than
        ``seconds`` to other work on a shared machine.
    """

    decoder: Decoder
    session_row: int
    alpha: float
    val_r2: np.ndarray
    latents: np.ndarray
    seconds: float = 0.0
    history: list[tuple[int, float, float]] = field(default_factory=list)
    cpu_seconds: float = 0.0


def block_latents(encoder: Encoder, bins: SessionBins, block: BinBlock | None = None) -> np.ndarray:
    """Streaming-exact latents of ``block`` (whole session by default).

    Only the ``Encoder.lookback_bins`` bins before the block are encoded with it:
    they are all the history the decoder reads.
    """
    block = block or BinBlock(0, bins.n_bins)
    start = max(0, block.start - encoder.lookback_bins)
    inputs = bins.inputs(encoder.config.modality)[start : block.stop]
    return encode_bins(encoder, inputs, bins.context)[block.start - start :]


def fit_ridge_head(
    features: np.ndarray,
    kinematics: np.ndarray,
    blocks: FitBlocks,
    alphas: Sequence[float],
    final: BinBlock | None = None,
) -> tuple[RidgeHead, float, np.ndarray]:
    """Choose the ridge penalty on the validation block, then fit the head on the whole training part.

    Parameters
    ----------
    features
        ``(T, d)`` latents (or raw features) of the whole block.
    kinematics
        ``(T, K)`` targets of the whole block.
    blocks
        Where the fit, validation and training blocks are.
    alphas
        Candidate penalties (positive), tried on the fit block by one
        :func:`~rtbci.train.readout.ridge_path`.
    final
        The block the returned head is fit on; ``blocks.train`` by default. Stage B passes
        ``blocks.fit``, so that its validation checks never score a head fit on the validation block.

    Returns
    -------
    head, alpha, val_r2
        The head, the chosen penalty and the validation R² per axis at that penalty
        (fit on the fit block).
    """
    fit, val = blocks.fit.as_slice(), blocks.val.as_slice()
    scores = [
        r2_per_axis(kinematics[val], readout.predict(features[val]))
        for readout in ridge_path(features[fit], kinematics[fit], alphas)
    ]
    best = int(np.argmax([np.mean(score) for score in scores]))
    final = (final or blocks.train).as_slice()
    head = RidgeHead(features.shape[1], kinematics.shape[1])
    head.fit(features[final], kinematics[final], alphas[best])
    return head, float(alphas[best]), scores[best]


def validation_r2(decoder: Decoder, bins: SessionBins, block: BinBlock) -> float:
    """Mean R² of ``decoder`` on one block, with the block's streaming history."""
    latents = block_latents(decoder.encoder, bins, block)
    with torch.no_grad():
        predicted = decoder.head(torch.from_numpy(latents)).numpy()
    return float(np.mean(r2_per_axis(bins.kinematics[block.as_slice()], predicted)))
