"""Ridge head against numpy lstsq; Decoder shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rtbci.models import Decoder, Encoder, EncoderConfig, RidgeHead, ridge_solve


def regression_data(seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(400, 12)) + rng.normal(size=12)
    W = rng.normal(size=(12, 2))
    Y = X @ W + np.array([0.5, -1.0]) + 0.1 * rng.normal(size=(400, 2))
    return X, Y


def test_ridge_without_penalty_matches_lstsq():
    X, Y = regression_data()
    weight, bias = ridge_solve(X, Y, alpha=0.0)
    coef = np.linalg.lstsq(np.hstack([X, np.ones((len(X), 1))]), Y, rcond=None)[0]
    np.testing.assert_allclose(weight.T, coef[:-1], atol=1e-9)
    np.testing.assert_allclose(bias, coef[-1], atol=1e-9)


def test_ridge_with_penalty_matches_augmented_lstsq():
    X, Y = regression_data(1)
    alpha = 25.0
    weight, bias = ridge_solve(X, Y, alpha)
    # Ridge with an unpenalized intercept = least squares on centred data plus sqrt(alpha)*I rows.
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    augmented_X = np.vstack([Xc, np.sqrt(alpha) * np.eye(12)])
    augmented_Y = np.vstack([Yc, np.zeros((12, 2))])
    coef = np.linalg.lstsq(augmented_X, augmented_Y, rcond=None)[0]
    np.testing.assert_allclose(weight.T, coef, atol=1e-9)
    np.testing.assert_allclose(bias, Y.mean(0) - X.mean(0) @ coef, atol=1e-9)
    with pytest.raises(ValueError, match="alpha"):
        ridge_solve(X, Y, -1.0)


def test_ridge_head_fit_predicts_like_the_solution():
    X, Y = regression_data(2)
    head = RidgeHead(12, 2).fit(torch.from_numpy(X).float(), Y, alpha=1.0)
    weight, bias = ridge_solve(X, Y, 1.0)
    predicted = head(torch.from_numpy(X).float()).detach().numpy()
    np.testing.assert_allclose(predicted, X @ weight.T + bias, atol=1e-4)


def test_decoder_maps_bins_to_kinematics():
    config = EncoderConfig(
        modality="lfp",
        n_channels=16,
        n_features=2,
        patch_channels=8,
        d_model=16,
        n_layers=1,
        n_heads=2,
        window_bins=4,
    )
    decoder = Decoder(Encoder(config), RidgeHead(16, 2)).eval()
    out = decoder(torch.randn(3, 7, 16, 2), torch.zeros(3, dtype=torch.long))
    assert out.shape == (3, 7, 2)
