"""The decodable benchmark: lagged features line up with their past, and a small run gives its table."""

import argparse

import numpy as np

from benchmarks.decodable import add_arguments, run, with_history


def test_history_puts_each_bins_past_beside_it() -> None:
    features = np.arange(12, dtype=np.float32).reshape(6, 2)
    lagged = with_history(features, 3)
    assert lagged.shape == (6, 6)
    np.testing.assert_array_equal(lagged[:, :2], features)
    np.testing.assert_array_equal(lagged[4, 2:4], features[3])
    np.testing.assert_array_equal(lagged[4, 4:6], features[2])
    np.testing.assert_array_equal(lagged[1, 4:6], [0.0, 0.0])  # nothing two bins before bin 1


def test_a_small_run_scores_every_modality_lag_and_data_size() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        ["--sessions", "16", "--fit-minutes", "0.5", "1", "--scored-minutes", "0.25", "--lags", "1", "2"]
    )
    result = run(args)
    assert result["sessions"] == ["sim-S0-d16"]
    expected = {f"{m} lags={k} fit={f}min" for m in ("lfp", "spikes") for k in (1, 2) for f in ("0.5", "1")}
    assert set(result["r2_upper_bound"]) == expected
    assert all(np.isfinite(value) and value <= 1.0 for value in result["r2_upper_bound"].values())
