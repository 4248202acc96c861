"""The calibration block cut by time: a training part (with a validation block at its end) and the
held-out last 20%.

Neighbouring 20 ms bins are strongly correlated, so each cut drops a gap of one
decoder window: no training window reaches into the validation block, and nothing
fit on the training part touches the held-out block. Held-out scores are the only
scores the tool reports.
"""

from __future__ import annotations

from dataclasses import dataclass

from rtbci.train.splits import BinBlock, FitBlocks

__all__ = ["CalibrationSplit", "CalibrationSplitConfig", "split_calibration_block"]


@dataclass(frozen=True)
class CalibrationSplitConfig:
    """How a calibration block is cut.

    Attributes
    ----------
    heldout_fraction
        Share of the block, at its end, held out for scoring.
    val_fraction
        Share of the training part, at its end, used to choose ridge penalties
        and to stop fine-tuning early.
    """

    heldout_fraction: float = 0.2
    val_fraction: float = 0.2

    def __post_init__(self) -> None:
        for name in ("heldout_fraction", "val_fraction"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {getattr(self, name)}")


@dataclass(frozen=True)
class CalibrationSplit(FitBlocks):
    """Blocks of bins of one calibration block, in time order: the stages' fit, validation and
    training blocks (:class:`rtbci.train.splits.FitBlocks`), and the held-out block.

    Attributes
    ----------
    heldout
        The last ``heldout_fraction`` of the block: scored, never fit on.
    """

    heldout: BinBlock


def split_calibration_block(n_bins: int, gap_bins: int, config: CalibrationSplitConfig) -> CalibrationSplit:
    """Cut ``n_bins`` bins into fit, validation and held-out blocks.

    Parameters
    ----------
    n_bins
        Bins in the calibration block.
    gap_bins
        Bins dropped before the validation block and before the held-out block
        (the decoder's window).
    config
        Shares.

    Returns
    -------
    CalibrationSplit

    Raises
    ------
    ValueError
        If a block would be empty (callers check the block length first and say how much is needed).
    """
    heldout_bins = round(n_bins * config.heldout_fraction)
    train_stop = n_bins - heldout_bins - gap_bins
    val_bins = round(train_stop * config.val_fraction)
    fit_stop = train_stop - val_bins - gap_bins
    if heldout_bins < 1 or val_bins < 1 or fit_stop < 1:
        raise ValueError(f"{n_bins} bins are too few to split with {gap_bins}-bin gaps and {config}")
    return CalibrationSplit(
        fit=BinBlock(0, fit_stop),
        val=BinBlock(train_stop - val_bins, train_stop),
        train=BinBlock(0, train_stop),
        heldout=BinBlock(n_bins - heldout_bins, n_bins),
    )
