"""Normalizer: per-feature z-score fitted on a calibration block, stored as plain data, applied online."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rtbci.signal import Normalizer


def test_fit_apply_gives_zero_mean_unit_spread_per_feature():
    rng = np.random.default_rng(0)
    values = rng.normal(loc=[[1.0, -5.0, 100.0]], scale=[[0.1, 3.0, 20.0]], size=(4000, 3))
    lfp = np.stack([values, 2 * values], axis=-1).astype(np.float32)  # (T, C=3, F=2)
    normalizer = Normalizer().fit(lfp)
    z = normalizer.apply(lfp)
    assert z.dtype == np.float32 and z.shape == lfp.shape
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(z.std(axis=0), 1.0, atol=1e-4)
    # One bin online, (C, F), gets the same transform.
    np.testing.assert_array_equal(normalizer.apply(lfp[7]), z[7])


def test_round_trip_through_json():
    normalizer = Normalizer().fit(np.random.default_rng(1).standard_normal((100, 4, 2)))
    restored = Normalizer.from_dict(json.loads(json.dumps(normalizer.to_dict())))
    probe = np.ones((4, 2), np.float32)
    np.testing.assert_array_equal(restored.apply(probe), normalizer.apply(probe))


def test_constant_feature_is_not_blown_up():
    values = np.zeros((50, 2), np.float32)
    values[:, 1] = np.arange(50)
    normalizer = Normalizer().fit(values)
    assert normalizer.std[0] == 1.0
    assert np.isfinite(normalizer.apply(values)).all()


def test_misuse_is_a_clear_error():
    with pytest.raises(RuntimeError, match="before fit"):
        Normalizer().apply(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="NaN or Inf"):
        Normalizer().fit(np.array([[1.0, np.nan], [2.0, 3.0]]))
    with pytest.raises(ValueError, match="do not end in the fitted shape"):
        Normalizer().fit(np.zeros((5, 3))).apply(np.zeros((5, 4)))
    with pytest.raises(ValueError, match="missing std"):
        Normalizer.from_dict({"mean": [0.0]})
