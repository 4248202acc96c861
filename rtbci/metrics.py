"""Decoding metrics shared by serving (the engine's live R²) and training."""

from __future__ import annotations

import numpy as np

__all__ = ["r2_per_axis", "r2_score"]


def r2_per_axis(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Coefficient of determination of each output column.

    Parameters
    ----------
    y_true, y_pred
        ``(n, k)`` targets and predictions.

    Returns
    -------
    np.ndarray
        ``(k,)`` float64: ``1 - SSE / SST`` per column, where SST is about the
        column's own mean (so predicting the mean scores 0 and worse scores
        are negative). A constant target column gives ``nan``.
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.shape != y_pred.shape or y_true.ndim != 2:
        raise ValueError(f"need two (n, k) arrays of one shape, got {y_true.shape} and {y_pred.shape}")
    residual = ((y_true - y_pred) ** 2).sum(axis=0)
    total = ((y_true - y_true.mean(axis=0)) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, 1.0 - residual / total, np.nan)


def r2_score(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean over output columns of :func:`r2_per_axis` (the usual velocity R²)."""
    return float(np.mean(r2_per_axis(y_true, y_pred)))
