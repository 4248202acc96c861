"""Per-feature z-scoring, fitted on a calibration block and stored with the model."""

from __future__ import annotations

import numpy as np

__all__ = ["Normalizer"]

# A feature whose spread is below this is treated as constant (scaled by 1):
# a dead channel must not blow up to huge values online.
MIN_STD = 1e-6


class Normalizer:
    """Z-score each feature (every channel, and every LFP feature of it) with fitted statistics.

    Statistics are per element of one bin's values: shape ``(C,)`` for spike
    counts and ``(C, F)`` for LFP features. They come from past data only
    (a calibration block) and are applied unchanged online.

    Parameters
    ----------
    mean, std
        Fitted statistics; leave both None and call :meth:`fit`.
    """

    def __init__(self, mean: np.ndarray | None = None, std: np.ndarray | None = None) -> None:
        if (mean is None) != (std is None):
            raise ValueError("give both mean and std, or neither")
        if mean is not None and np.shape(mean) != np.shape(std):
            raise ValueError(f"mean shape {np.shape(mean)} differs from std shape {np.shape(std)}")
        self.mean = None if mean is None else np.asarray(mean, np.float32)
        self.std = None if std is None else np.asarray(std, np.float32)

    @property
    def fitted(self) -> bool:
        """True once statistics are set."""
        return self.mean is not None

    def fit(self, values: np.ndarray) -> Normalizer:
        """Fit mean and standard deviation over bins.

        Parameters
        ----------
        values
            ``(T, ...)`` bins of features; statistics are over axis 0.

        Returns
        -------
        Normalizer
            ``self``.

        Raises
        ------
        ValueError
            If there are no bins or a value is not finite.
        """
        values = np.asarray(values, np.float64)
        if values.ndim < 2 or values.shape[0] == 0:
            raise ValueError(f"fit needs (T, ...) values with T > 0, got shape {values.shape}")
        if not np.isfinite(values).all():
            raise ValueError("fit values contain NaN or Inf")
        std = values.std(axis=0)
        self.mean = values.mean(axis=0).astype(np.float32)
        self.std = np.where(std < MIN_STD, 1.0, std).astype(np.float32)
        return self

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Z-score ``values``: ``(..., *feature_shape)`` in, float32 of the same shape out."""
        if self.mean is None or self.std is None:
            raise RuntimeError("Normalizer.apply before fit (or from_dict)")
        values = np.asarray(values, np.float32)
        if values.shape[values.ndim - self.mean.ndim :] != self.mean.shape:
            raise ValueError(
                f"values of shape {values.shape} do not end in the fitted shape {self.mean.shape}"
            )
        return (values - self.mean) / self.std

    def to_dict(self) -> dict:
        """Plain lists, ready for JSON (e.g. the model manifest)."""
        if self.mean is None or self.std is None:
            raise RuntimeError("Normalizer.to_dict before fit")
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, data: dict) -> Normalizer:
        """Rebuild from :meth:`to_dict` output.

        Raises
        ------
        ValueError
            If ``mean`` or ``std`` is missing, or their shapes differ.
        """
        missing = [key for key in ("mean", "std") if key not in data]
        if missing:
            raise ValueError(f"normalization is missing {', '.join(missing)}")
        return cls(np.asarray(data["mean"], np.float32), np.asarray(data["std"], np.float32))
