"""Behavior head: per-bin latent -> kinematics, fit in closed form (ridge).

The behavioral lag (about 100 ms for reaching) is not part of the head: the
featurizer aligns each bin with the kinematics at ``bin_end + lag``, so the head
maps a bin's latent to its already-lagged target.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["RidgeHead", "ridge_solve"]


def ridge_solve(X: np.ndarray, Y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Ridge regression with an unpenalized intercept, in float64.

    Parameters
    ----------
    X
        ``(n, d)`` inputs.
    Y
        ``(n, K)`` targets.
    alpha
        L2 penalty on the weights (>= 0).

    Returns
    -------
    weight, bias
        ``(K, d)`` and ``(K,)`` such that ``Y ≈ X @ weight.T + bias``.
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if X.ndim != 2 or Y.ndim != 2 or len(X) != len(Y):
        raise ValueError(f"ridge needs X (n, d) and Y (n, K) with the same n, got {X.shape} and {Y.shape}")
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, not {alpha}")
    x_mean, y_mean = X.mean(axis=0), Y.mean(axis=0)
    Xc, Yc = X - x_mean, Y - y_mean
    gram = Xc.T @ Xc + alpha * np.eye(X.shape[1])
    # lstsq rather than solve: with alpha = 0 the Gram matrix may be singular.
    weight = np.linalg.lstsq(gram, Xc.T @ Yc, rcond=None)[0].T
    return weight, y_mean - weight @ x_mean


def _as_numpy(values: np.ndarray | torch.Tensor) -> np.ndarray:
    return values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)


class RidgeHead(nn.Module):
    """Linear readout ``(…, d) -> (…, K)``; :meth:`fit` sets it in closed form, fine-tuning is optional."""

    def __init__(self, d_model: int, n_outputs: int):
        super().__init__()
        self.linear = nn.Linear(d_model, n_outputs)

    def fit(self, latents: np.ndarray | torch.Tensor, targets: np.ndarray | torch.Tensor, alpha: float = 1.0):
        """Fit by ridge regression on ``(n, d)`` latents and ``(n, K)`` (lag-aligned) targets."""
        weight, bias = ridge_solve(_as_numpy(latents), _as_numpy(targets), alpha)
        with torch.no_grad():
            self.linear.weight.copy_(torch.from_numpy(weight))
            self.linear.bias.copy_(torch.from_numpy(bias))
        return self

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.linear(pooled)
