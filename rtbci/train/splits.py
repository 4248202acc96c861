"""Train/validation/test splits by contiguous time blocks.

Neighbouring 20 ms bins are strongly correlated, so a random split of bins
leaks the test set into training. Every split here is a contiguous block of
bins, with a gap between blocks at least as long as the decoder's context, so
no training window overlaps a scored bin.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BinBlock", "BlockSplit", "FitBlocks", "SplitConfig", "split_blocks"]


@dataclass(frozen=True)
class BinBlock:
    """A half-open range of bins ``[start, stop)`` of one session."""

    start: int
    stop: int

    def __post_init__(self) -> None:
        if not 0 <= self.start <= self.stop:
            raise ValueError(f"invalid block [{self.start}, {self.stop})")

    @property
    def n_bins(self) -> int:
        """Number of bins in the block."""
        return self.stop - self.start

    def as_slice(self) -> slice:
        """The block as a slice over the bin axis."""
        return slice(self.start, self.stop)


@dataclass(frozen=True)
class FitBlocks:
    """The blocks of one session that a calibration stage fits on, in time order.

    Attributes
    ----------
    fit
        Where embeddings, heads and weights are fit.
    val
        Validation block after ``fit`` (penalty choice, early stopping).
    train
        ``fit`` + gap + ``val``: the final head is refit on it.
    """

    fit: BinBlock
    val: BinBlock
    train: BinBlock


@dataclass(frozen=True)
class SplitConfig:
    """How a session's bins are cut into blocks.

    Attributes
    ----------
    fractions
        Shares of the session for the train, validation and test blocks, in
        time order; they must sum to at most 1 (the rest feeds the gaps).
    gap_bins
        Bins dropped between consecutive blocks, so that no window of one block
        reaches into the next.
    """

    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    gap_bins: int = 50

    def __post_init__(self) -> None:
        if any(share < 0 for share in self.fractions) or sum(self.fractions) > 1.0 + 1e-9:
            raise ValueError(f"split fractions {self.fractions} must be >= 0 and sum to <= 1")
        if self.gap_bins < 0:
            raise ValueError(f"gap_bins must be >= 0, got {self.gap_bins}")


@dataclass(frozen=True)
class BlockSplit:
    """The train, validation and test blocks of one session, in time order."""

    train: BinBlock
    val: BinBlock
    test: BinBlock


def split_blocks(n_bins: int, config: SplitConfig | None = None) -> BlockSplit:
    """Cut ``n_bins`` bins into contiguous train, validation and test blocks.

    Parameters
    ----------
    n_bins
        Length of the session in bins.
    config
        Shares and gap; defaults to :class:`SplitConfig`.

    Returns
    -------
    BlockSplit
        Blocks in time order ``train < val < test``, separated by
        ``config.gap_bins`` bins.

    Raises
    ------
    ValueError
        If the session is too short to leave a non-empty block for every
        non-zero share after the gaps.
    """
    config = config or SplitConfig()
    usable = n_bins - 2 * config.gap_bins
    lengths = [int(usable * share) for share in config.fractions]
    if usable <= 0 or any(
        length == 0 and share > 0 for length, share in zip(lengths, config.fractions, strict=True)
    ):
        raise ValueError(
            f"a session of {n_bins} bins is too short for fractions {config.fractions} "
            f"with {config.gap_bins}-bin gaps"
        )
    blocks = []
    start = 0
    for length in lengths:
        blocks.append(BinBlock(start, start + length))
        start += length + config.gap_bins
    return BlockSplit(*blocks)
