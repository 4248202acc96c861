"""Pieces both calibration stages share: the closed-form head, the supervised loss, validation R².

Latents of a block are always computed over the whole block from its first bin
(:func:`rtbci.train.latents.encode_bins`), so every bin's latent equals the one
the streaming decoder computes online; slicing them by block never changes a value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from calibrate.split import CalibrationSplit
from rtbci.metrics import r2_per_axis
from rtbci.models.decoder import Decoder
from rtbci.models.encoder import Encoder
from rtbci.models.heads import RidgeHead
from rtbci.train.data import Batch, SessionBins
from rtbci.train.latents import encode_bins
from rtbci.train.splits import BinBlock

__all__ = [
    "DEFAULT_ALPHAS",
    "FittedDecoder",
    "KinematicsLoss",
    "block_latents",
    "fit_ridge_head",
    "validation_r2",
]

# Candidate ridge penalties; latents are RMS-normalised, so their scale is about 1 per dimension.
DEFAULT_ALPHAS: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0, 1000.0)


@dataclass
class FittedDecoder:
    """A decoder fit to the calibration block.

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
    cpu_seconds
        CPU time of the fit (all threads of this process): less sensitive than
        ``seconds`` to other work on a shared machine.
    history
        ``(step, loss, val_r2)`` of the gradient steps, when there were any.
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


def _validation_scores(
    fit_x: np.ndarray, fit_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray, alphas: Sequence[float]
) -> list[np.ndarray]:
    """Validation R² per axis of a ridge fit at each penalty, from one eigendecomposition.

    With ``G = Xc'Xc = V diag(s) V'`` the weights at penalty ``a`` are
    ``V diag(1 / (s + a)) V' Xc'Yc``, so trying every penalty costs one
    decomposition instead of one solve each (the raw-feature baseline has
    thousands of inputs).
    """
    if min(alphas) <= 0:
        raise ValueError(f"ridge penalties must be positive, got {tuple(alphas)}")
    x_mean, y_mean = fit_x.mean(axis=0), fit_y.mean(axis=0)
    centred = (fit_x - x_mean).astype(np.float64)
    eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred)
    projected = eigenvectors.T @ (centred.T @ (fit_y - y_mean).astype(np.float64))
    val_rotated = (val_x - x_mean).astype(np.float64) @ eigenvectors
    scores = []
    for alpha in alphas:
        shrunk = projected / (np.clip(eigenvalues, 0.0, None) + alpha)[:, None]
        scores.append(r2_per_axis(val_y, val_rotated @ shrunk + y_mean))
    return scores


def fit_ridge_head(
    features: np.ndarray,
    kinematics: np.ndarray,
    split: CalibrationSplit,
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
    split
        Where the fit, validation and training blocks are.
    alphas
        Candidate penalties (positive).
    final
        The block the returned head is fit on; ``split.train`` by default. Stage B passes
        ``split.fit``, so that its validation checks never score a head fit on the validation block.

    Returns
    -------
    head, alpha, val_r2
        The head, the chosen penalty and the validation R² per axis at that penalty
        (fit on the fit block).
    """
    fit, val = split.fit.as_slice(), split.val.as_slice()
    scores = _validation_scores(features[fit], kinematics[fit], features[val], kinematics[val], alphas)
    best = int(np.argmax([np.mean(score) for score in scores]))
    final = (final or split.train).as_slice()
    head = RidgeHead(features.shape[1], kinematics.shape[1])
    head.fit(features[final], kinematics[final], alphas[best])
    return head, float(alphas[best]), scores[best]


def validation_r2(decoder: Decoder, bins: SessionBins, block: BinBlock) -> float:
    """Mean R² of ``decoder`` on one block, with the block's streaming history."""
    latents = block_latents(decoder.encoder, bins, block)
    with torch.no_grad():
        predicted = decoder.head(torch.from_numpy(latents)).numpy()
    return float(np.mean(r2_per_axis(bins.kinematics[block.as_slice()], predicted)))


class KinematicsLoss(nn.Module):
    """Mean squared error of a decoder's kinematics on a batch of windows, per axis standardised.

    Standardising makes every axis count the same. Only bins with at least
    ``skip_bins`` bins of history in their window are scored: online, the decoder
    always has a full window of history.

    Parameters
    ----------
    decoder
        The decoder being fit.
    std
        ``(K,)`` standard deviation of each target over the fit block.
    skip_bins
        Leading bins of each window that are not scored.
    """

    def __init__(self, decoder: Decoder, std: np.ndarray, skip_bins: int) -> None:
        super().__init__()
        self.decoder = decoder
        self.skip_bins = skip_bins
        self.register_buffer("std", torch.as_tensor(np.maximum(std, 1e-9), dtype=torch.float32))

    def forward(self, batch: Batch) -> torch.Tensor:
        modality = self.decoder.encoder.config.modality
        predicted = self.decoder(batch.modality(modality), batch.session)[:, self.skip_bins :]
        target = batch.kinematics[:, self.skip_bins :]
        return (((predicted - target) / self.std) ** 2).mean()
