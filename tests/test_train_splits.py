"""Contiguous block splits and the window sampler."""

import itertools

import numpy as np
import pytest

from rtbci.train.splits import BinBlock, SplitConfig, split_blocks


@pytest.mark.parametrize("n_bins", [400, 1000, 4567])
@pytest.mark.parametrize("gap", [0, 25])
def test_blocks_are_contiguous_ordered_and_separated(n_bins: int, gap: int) -> None:
    split = split_blocks(n_bins, SplitConfig(fractions=(0.6, 0.2, 0.2), gap_bins=gap))
    blocks = [split.train, split.val, split.test]
    for block in blocks:
        assert block.n_bins > 0
        bins = np.arange(n_bins)[block.as_slice()]
        assert np.all(np.diff(bins) == 1)  # one run of consecutive bins
    for earlier, later in itertools.pairwise(blocks):
        assert later.start - earlier.stop == gap
    assert split.test.stop <= n_bins
    assert split.train.start == 0


def test_blocks_cover_the_shares() -> None:
    split = split_blocks(1100, SplitConfig(fractions=(0.7, 0.15, 0.15), gap_bins=50))
    assert (split.train.n_bins, split.val.n_bins, split.test.n_bins) == (700, 150, 150)


def test_too_short_session_is_refused() -> None:
    with pytest.raises(ValueError, match="too short"):
        split_blocks(80, SplitConfig(gap_bins=50))


def test_bad_fractions_are_refused() -> None:
    with pytest.raises(ValueError, match="fractions"):
        SplitConfig(fractions=(0.8, 0.2, 0.2))
    with pytest.raises(ValueError, match="invalid block"):
        BinBlock(5, 2)
