"""Held-out scores: the calibrated decoder against two baselines, all on the last 20% of the block.

- ``ridge_raw``: ridge regression on the decoder's raw input features (the current
  bin and a few before it, z-scored on the training part), fit on the same training part;
- ``previous``: the profile's current decoder, unchanged (its own session row,
  normalisation and head).

Every decoder runs over the whole block from its first bin, as it would online,
and only the held-out bins are scored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from calibrate.previous import PreviousDecoder
from calibrate.split import CalibrationSplit
from rtbci.metrics import r2_per_axis
from rtbci.signal import BinnedSession, Normalizer
from rtbci.train.data import SessionBins
from rtbci.train.readout import with_history
from rtbci.train.session_fit import DEFAULT_ALPHAS, FittedDecoder, block_latents, fit_ridge_head

__all__ = [
    "CALIBRATED",
    "PREVIOUS",
    "RIDGE_RAW",
    "HeldoutScores",
    "ridge_raw_predictions",
    "score_heldout",
]

CALIBRATED = "calibrated"
RIDGE_RAW = "ridge_raw"
PREVIOUS = "previous"


@dataclass
class HeldoutScores:
    """Predictions and R² on the held-out block.

    Attributes
    ----------
    kinematics_names
        The K decoded axes.
    actual
        ``(n, K)`` true kinematics of the held-out bins.
    predicted
        ``(n, K)`` predictions per decoder name (``calibrated``, ``ridge_raw``, ``previous``).
    bin_ends
        ``(n,)`` LSL times of the held-out bins' ends.
    """

    kinematics_names: list[str]
    actual: np.ndarray
    predicted: dict[str, np.ndarray]
    bin_ends: np.ndarray

    def r2(self, name: str) -> np.ndarray:
        """``(K,)`` held-out R² per axis of one decoder."""
        return r2_per_axis(self.actual, self.predicted[name])

    def mean_r2(self, name: str) -> float:
        """Held-out R² averaged over axes."""
        return float(np.mean(self.r2(name)))

    def table(self) -> dict[str, dict[str, float]]:
        """``{decoder: {axis: R², ..., "mean": R²}}``."""
        table = {}
        for name in self.predicted:
            row = {
                axis: float(value) for axis, value in zip(self.kinematics_names, self.r2(name), strict=True)
            }
            table[name] = {**row, "mean": self.mean_r2(name)}
        return table


def ridge_raw_predictions(
    bins: SessionBins, modality: str, split: CalibrationSplit, history: int, alphas=DEFAULT_ALPHAS
) -> np.ndarray:
    """Predictions over the whole block of a ridge on raw features fit on the training part.

    The penalty is chosen on the validation block, as for the decoder's head.
    """
    features = bins.inputs(modality).reshape(bins.n_bins, -1)
    normalizer = Normalizer().fit(features[split.train.as_slice()])
    design = with_history(normalizer.apply(features), history)
    head, _, _ = fit_ridge_head(design, bins.kinematics, split, alphas)
    with torch.no_grad():
        return head(torch.from_numpy(design)).numpy()


def _decoder_predictions(decoder, bins: SessionBins) -> np.ndarray:
    latents = block_latents(decoder.encoder, bins)
    with torch.no_grad():
        return decoder.head(torch.from_numpy(latents)).numpy()


def score_heldout(
    fitted: FittedDecoder,
    bins: SessionBins,
    binned: BinnedSession,
    split: CalibrationSplit,
    previous: PreviousDecoder | None,
    ridge_history_bins: int,
) -> HeldoutScores:
    """Score the calibrated decoder and the baselines on the held-out block.

    Parameters
    ----------
    fitted
        The calibrated decoder (its latents of the whole block are reused).
    bins
        The block as model inputs with the new session's row.
    binned
        The featurized block (names and bin times).
    split
        Blocks; only ``split.heldout`` is scored.
    previous
        The profile's current decoder, or None to leave that baseline out.
    ridge_history_bins
        Bins of raw features the ridge baseline sees per prediction.
    """
    heldout = split.heldout.as_slice()
    modality = fitted.decoder.encoder.config.modality
    with torch.no_grad():
        calibrated = fitted.decoder.head(torch.from_numpy(fitted.latents)).numpy()
    predicted = {
        CALIBRATED: calibrated[heldout],
        RIDGE_RAW: ridge_raw_predictions(bins, modality, split, ridge_history_bins)[heldout],
    }
    if previous is not None:
        previous_bins = SessionBins.from_binned(binned, previous.session_row)
        predicted[PREVIOUS] = _decoder_predictions(previous.decoder(), previous_bins)[heldout]
    return HeldoutScores(
        list(binned.kinematics_names), bins.kinematics[heldout], predicted, binned.bin_ends[heldout]
    )
