"""The decodable benchmark: a small run gives its table."""

import argparse

import numpy as np

from benchmarks.decodable import add_arguments, run


def test_a_small_run_scores_every_modality_lag_and_data_size_linearly_and_with_the_transformer() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    small = "--sessions 16 --fit-minutes 0.5 1 --scored-minutes 0.25 --lags 1 2"
    args = parser.parse_args([*small.split(), "--transformer-steps", "10", "--transformer-size", "tiny"])
    result = run(args)
    assert result["sessions"] == ["sim-S0-d16"]
    expected = {f"{m} lags={k} fit={f}min" for m in ("lfp", "spikes") for k in (1, 2) for f in ("0.5", "1")}
    expected |= {f"{m} transformer fit={f}min (fair)" for m in ("lfp", "spikes") for f in ("0.5", "1")}
    assert set(result["r2_upper_bound"]) == expected
    assert all(np.isfinite(value) and value <= 1.0 for value in result["r2_upper_bound"].values())


def test_the_v1_preset_simulates_the_older_rig() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    small = "--sessions 16 --fit-minutes 0.5 --scored-minutes 0.25 --lags 1 --transformer-steps 0".split()
    today, v1 = (run(parser.parse_args([*small, "--preset", preset])) for preset in ("default", "v1"))
    assert (today["preset"], v1["preset"]) == ("default", "v1")
    # Same subject, session and seed; only the simulator's settings differ, so the LFP rows do too.
    assert today["r2_upper_bound"]["lfp lags=1 fit=0.5min"] != v1["r2_upper_bound"]["lfp lags=1 fit=0.5min"]
