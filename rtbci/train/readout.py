"""Linear readouts of per-bin latents (or features) and their R² on later blocks.

Every score here is on bins the readout was not fit on: the caller passes fit
blocks and score blocks that are different contiguous parts of the sessions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rtbci.metrics import r2_per_axis
from rtbci.models.encoder import Encoder
from rtbci.train.data import SessionBins
from rtbci.train.latents import Pooling, encode_bins

__all__ = ["LinearReadout", "encode_blocks", "fit_readout", "readout_r2", "ridge_path", "with_history"]


@dataclass(frozen=True)
class LinearReadout:
    """``y = x @ weight.T + bias``, fit by ridge regression."""

    weight: np.ndarray
    bias: np.ndarray
    alpha: float

    def predict(self, features: np.ndarray) -> np.ndarray:
        """``(n, d)`` features -> ``(n, K)`` predictions."""
        return features @ self.weight.T + self.bias


def with_history(values: np.ndarray, history: int) -> np.ndarray:
    """``(T, D)`` -> ``(T, D * history)``: each bin beside the ``history - 1`` bins before it.

    The columns run from the oldest bin to bin ``t`` itself; bins before the start
    of the block count as zeros, so bin ``t`` never sees anything after it.
    """
    padded = np.concatenate([np.zeros((history - 1, values.shape[1]), values.dtype), values])
    return np.concatenate([padded[lag : lag + len(values)] for lag in range(history)], axis=1)


def ridge_path(features: np.ndarray, targets: np.ndarray, alphas: Sequence[float]) -> list[LinearReadout]:
    """Ridge readouts for several penalties from one eigendecomposition.

    Choosing a penalty means fitting the same data many times; with the
    centred Gram matrix ``X'X = V diag(s) V'`` decomposed once, each penalty
    costs only ``V diag(1 / (s + alpha)) V' X'Y``. For a single penalty,
    :func:`rtbci.models.heads.ridge_solve` is the reference.

    Parameters
    ----------
    features
        ``(n, d)`` inputs.
    targets
        ``(n, K)`` targets.
    alphas
        Penalties, each > 0.

    Returns
    -------
    list of LinearReadout
        One per penalty, in the order given.
    """
    X = np.asarray(features, dtype=np.float64)
    Y = np.asarray(targets, dtype=np.float64)
    x_mean, y_mean = X.mean(axis=0), Y.mean(axis=0)
    centred = X - x_mean
    eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred)
    projected = eigenvectors.T @ (centred.T @ (Y - y_mean))
    readouts = []
    for alpha in alphas:
        if not alpha > 0:
            raise ValueError(f"ridge penalties must be > 0, got {alpha}")
        weight = (eigenvectors @ (projected / (eigenvalues.clip(min=0.0) + alpha)[:, None])).T
        readouts.append(LinearReadout(weight, y_mean - weight @ x_mean, float(alpha)))
    return readouts


def fit_readout(features: Sequence[np.ndarray], targets: Sequence[np.ndarray], alpha: float) -> LinearReadout:
    """Ridge readout from the concatenation of several blocks.

    Parameters
    ----------
    features
        ``(n_i, d)`` inputs per block.
    targets
        ``(n_i, K)`` targets per block.
    alpha
        L2 penalty.
    """
    return ridge_path(np.concatenate(features), np.concatenate(targets), [alpha])[0]


def encode_blocks(
    encoder: Encoder, blocks: Sequence[SessionBins], pool: Pooling = "mean"
) -> list[np.ndarray]:
    """Per-bin pooled latents of each block, in the encoder's own modality (see :func:`encode_bins`)."""
    modality = encoder.config.modality
    return [encode_bins(encoder, block.inputs(modality), block.context, pool=pool) for block in blocks]


def readout_r2(
    fit_features: Sequence[np.ndarray],
    fit_targets: Sequence[np.ndarray],
    score_features: Sequence[np.ndarray],
    score_targets: Sequence[np.ndarray],
    alpha: float,
) -> np.ndarray:
    """Fit a ridge readout on some blocks and score it on others.

    Returns
    -------
    np.ndarray
        ``(K,)`` R² per output over the concatenated score blocks.
    """
    readout = fit_readout(fit_features, fit_targets, alpha)
    predicted = readout.predict(np.concatenate(score_features))
    return r2_per_axis(np.concatenate(score_targets), predicted)
