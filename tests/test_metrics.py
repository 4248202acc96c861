"""R² per axis."""

import numpy as np
import pytest

from rtbci.metrics import r2_per_axis, r2_score


def test_perfect_mean_and_worse_predictions() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=(500, 2))
    assert np.allclose(r2_per_axis(y, y), 1.0)
    assert np.allclose(r2_per_axis(y, np.broadcast_to(y.mean(axis=0), y.shape)), 0.0)
    assert np.all(r2_per_axis(y, -y) < 0)


def test_matches_explained_variance_of_a_noisy_fit() -> None:
    rng = np.random.default_rng(1)
    signal = rng.normal(size=(20000, 2))
    noise = rng.normal(scale=0.5, size=signal.shape)
    # Target = signal + noise, prediction = signal: R² = 1 - 0.25 / 1.25 = 0.8.
    assert r2_per_axis(signal + noise, signal) == pytest.approx([0.8, 0.8], abs=0.02)
    assert r2_score(signal + noise, signal) == pytest.approx(0.8, abs=0.02)


def test_axes_are_scored_separately_and_shapes_checked() -> None:
    y = np.stack([np.arange(10.0), np.arange(10.0) ** 2], axis=1)
    pred = y.copy()
    pred[:, 1] = y[:, 1].mean()
    assert r2_per_axis(y, pred) == pytest.approx([1.0, 0.0])
    with pytest.raises(ValueError, match="shape"):
        r2_per_axis(y, y[:, :1])
