"""Readouts: the ridge path against the reference solver, and per-bin latents of long blocks."""

import numpy as np
import pytest
import torch

from rtbci.models.heads import ridge_solve
from rtbci.profile import load_profile
from rtbci.train.encoders import SIZES, new_encoder
from rtbci.train.heldout import choose_alpha
from rtbci.train.latents import encode_bins
from rtbci.train.readout import ridge_path, with_history


def test_ridge_path_matches_the_reference_solver() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 30)) + 3.0
    Y = X @ rng.normal(size=(30, 2)) + rng.normal(size=(400, 2)) + 1.0
    alphas = [0.1, 10.0, 1000.0]
    for readout, alpha in zip(ridge_path(X, Y, alphas), alphas, strict=True):
        weight, bias = ridge_solve(X, Y, alpha)
        assert readout.alpha == alpha
        assert np.allclose(readout.weight, weight, atol=1e-8)
        assert np.allclose(readout.bias, bias, atol=1e-8)
    with pytest.raises(ValueError, match="penalties"):
        ridge_path(X, Y, [0.0])


def test_history_puts_each_bins_past_beside_it() -> None:
    values = np.arange(12, dtype=np.float32).reshape(6, 2)
    stacked = with_history(values, 3)
    assert stacked.shape == (6, 6)
    np.testing.assert_array_equal(stacked[:, 4:], values)  # the bin itself, last
    np.testing.assert_array_equal(stacked[4, 2:4], values[3])
    np.testing.assert_array_equal(stacked[4, :2], values[2])
    np.testing.assert_array_equal(stacked[1, :2], [0.0, 0.0])  # nothing two bins before bin 1


def test_choose_alpha_prefers_strong_penalty_for_pure_noise() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 80))
    Y = rng.normal(size=(300, 2))  # nothing to learn: the heaviest penalty predicts best
    assert choose_alpha(X, Y, [0.01, 1.0, 1e6]) == 1e6


@pytest.mark.parametrize("hop", [7, 50])
def test_encode_bins_equals_one_full_forward(hop: int) -> None:
    """Segments with window-1 bins of history give exactly the full-sequence latents."""
    profile = load_profile("profiles/demo.toml")
    torch.manual_seed(0)
    encoder = new_encoder(profile, "lfp", 5, 2, SIZES["tiny"]).eval()
    inputs = np.random.default_rng(2).normal(size=(130, 96, 5)).astype(np.float32)
    with torch.no_grad():
        full = encoder.pool(encoder(torch.from_numpy(inputs)[None], torch.tensor([1])))[0].numpy()
    segmented = encode_bins(encoder, inputs, context_row=1, hop=hop, batch_segments=3)
    assert segmented.shape == full.shape
    assert np.allclose(segmented, full, atol=1e-5)
