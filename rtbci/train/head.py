"""The behavior head: a ridge readout of the per-bin latent, fit in closed form."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from rtbci.metrics import r2_per_axis
from rtbci.models.decoder import Decoder
from rtbci.models.encoder import Encoder
from rtbci.models.heads import RidgeHead
from rtbci.train.data import SessionBins
from rtbci.train.readout import encode_blocks, ridge_path

__all__ = ["HeadConfig", "HeadFit", "fit_head", "score_decoder"]


@dataclass(frozen=True)
class HeadConfig:
    """Ridge penalties to choose from, by R² on the validation blocks."""

    alphas: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0, 1000.0)


@dataclass
class HeadFit:
    """A fitted head and how it was chosen.

    Attributes
    ----------
    decoder
        Encoder plus head, in eval mode.
    alpha
        The chosen ridge penalty.
    val_r2
        R² per output on the validation blocks, at the chosen penalty.
    """

    decoder: Decoder
    alpha: float
    val_r2: np.ndarray


def fit_head(
    encoder: Encoder, train: Sequence[SessionBins], val: Sequence[SessionBins], config: HeadConfig
) -> HeadFit:
    """Fit the ridge head on the training blocks, choosing its penalty on the validation blocks.

    Parameters
    ----------
    encoder
        Trained encoder (its session table holds the blocks' sessions).
    train, val
        Training blocks and later validation blocks.
    config
        Candidate penalties.

    Returns
    -------
    HeadFit
    """
    fit_latents = encode_blocks(encoder, train)
    val_latents = np.concatenate(encode_blocks(encoder, val))
    fit_targets = [block.kinematics for block in train]
    val_targets = np.concatenate([block.kinematics for block in val])
    scored = [
        (float(np.mean(r2_per_axis(val_targets, readout.predict(val_latents)))), readout.alpha)
        for readout in ridge_path(np.concatenate(fit_latents), np.concatenate(fit_targets), config.alphas)
    ]
    best_alpha = max(scored)[1]
    head = RidgeHead(encoder.config.d_model, val_targets.shape[1])
    head.fit(np.concatenate(fit_latents), np.concatenate(fit_targets), best_alpha)
    decoder = Decoder(encoder, head).eval()
    return HeadFit(decoder, best_alpha, score_decoder(decoder, val))


def score_decoder(decoder: Decoder, blocks: Sequence[SessionBins]) -> np.ndarray:
    """R² per output of a decoder over some blocks (never the ones its head was fit on).

    Returns
    -------
    np.ndarray
        ``(K,)`` R² over the concatenated blocks.
    """
    latents = np.concatenate(encode_blocks(decoder.encoder, blocks))
    with torch.no_grad():
        predicted = decoder.head(torch.from_numpy(latents)).numpy()
    return r2_per_axis(np.concatenate([block.kinematics for block in blocks]), predicted)
