"""Independent decoders for checking the simulator: 20 ms bins and ridge regression with history.

Written with numpy/scipy only, on purpose: they test the simulator without
rtbci.signal or rtbci.models.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

FS = 1000
BIN = 20  # samples per 20 ms bin
LAG_BINS = 5  # neurons lead the hand by about 100 ms
HISTORY_BINS = 5
LFP_BANDS = [(8, 15), (15, 30), (30, 80), (80, 200)]


def bins(values: np.ndarray) -> np.ndarray:
    """``(n_bins, BIN, ...)`` view of whole bins."""
    n = values.shape[0] // BIN
    return values[: n * BIN].reshape(n, BIN, *values.shape[1:])


def velocity_bins(session) -> np.ndarray:
    """Mean hand velocity per bin."""
    return bins(session.streams["behavior"].data[:, 2:4]).mean(axis=1)


def spike_features(session, channels: np.ndarray | None = None) -> np.ndarray:
    """Square-root counts per bin (variance-stabilised)."""
    spikes = session.streams["spikes"].data
    if channels is not None:
        spikes = spikes[:, channels]
    return np.sqrt(bins(spikes.astype(np.float32)).sum(axis=1))


def lfp_features(lfp: np.ndarray) -> np.ndarray:
    """Causal features per bin: 5 Hz low-passed value at bin end (LMP), log band powers."""
    lmp = signal.sosfilt(signal.butter(2, 5.0, fs=FS, output="sos"), lfp, axis=0)
    features = [bins(lmp)[:, -1]]
    for low, high in LFP_BANDS:
        band = signal.sosfilt(
            signal.butter(2, [low, high], btype="bandpass", fs=FS, output="sos"), lfp, axis=0
        )
        features.append(np.log(bins(band**2).mean(axis=1) + 1e-3))
    return np.concatenate(features, axis=1)


def lagged(features: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bin ``t`` and the ``HISTORY_BINS - 1`` before it, paired with the target ``LAG_BINS`` bins later."""
    stacked = np.concatenate(
        [features[HISTORY_BINS - 1 - k : features.shape[0] - k] for k in range(HISTORY_BINS)], axis=1
    )
    return stacked[:-LAG_BINS], targets[HISTORY_BINS - 1 :][LAG_BINS:]


def r2(truth: np.ndarray, prediction: np.ndarray) -> float:
    """Mean over columns of the coefficient of determination."""
    residual = ((truth - prediction) ** 2).sum(axis=0)
    return float(np.mean(1.0 - residual / ((truth - truth.mean(axis=0)) ** 2).sum(axis=0)))


@dataclass
class Ridge:
    """A ridge decoder on z-scored inputs, fitted in closed form."""

    mean: np.ndarray
    sd: np.ndarray
    weights: np.ndarray

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        return _design(inputs, self.mean, self.sd) @ self.weights


def _design(inputs: np.ndarray, mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    return np.hstack([(inputs - mean) / sd, np.ones((len(inputs), 1))])


def fit_ridges(inputs: np.ndarray, targets: np.ndarray, penalties: tuple[float, ...]) -> list[Ridge]:
    """One ridge per penalty; the intercept is not shrunk."""
    mean, sd = inputs.mean(axis=0), inputs.std(axis=0) + 1e-6
    design = _design(inputs, mean, sd)
    gram, cross = design.T @ design, design.T @ targets
    ridges = []
    for penalty in penalties:
        regulariser = penalty * np.eye(design.shape[1])
        regulariser[-1, -1] = 0.0
        ridges.append(Ridge(mean, sd, np.linalg.solve(gram + regulariser, cross)))
    return ridges


def ridge_heldout_r2(features: np.ndarray, targets: np.ndarray, penalties: tuple[float, ...]) -> float:
    """Best over ``penalties`` of the held-out R² of a lagged ridge decoder.

    Fitted on the first 80 % of the bins, scored on the last 20 % (one
    contiguous block, never seen in fitting).
    """
    inputs, targets = lagged(features, targets)
    split = int(0.8 * len(inputs))
    ridges = fit_ridges(inputs[:split], targets[:split], penalties)
    return max(r2(targets[split:], ridge.predict(inputs[split:])) for ridge in ridges)
