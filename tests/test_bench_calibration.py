"""The calibration benchmark: a tiny run goes through the real calibration pipeline and reports every row."""

import argparse

import numpy as np
import pytest

from benchmarks.calibration import add_arguments, run
from rtbci.sim import SimConfig
from rtbci.sim.variability import build_subject


def died_since_training(seed: int, session: str, trained: list[str]) -> set[int]:
    """Electrodes dead on ``session`` that were alive on at least 90% of the ``trained`` sessions."""
    subject = build_subject(SimConfig(), seed, int(session.split("-S")[1].split("-d")[0]))
    day = int(session.split("-d")[1])
    trained_days = np.array([int(s.split("-d")[1]) for s in trained])
    alive_share = (subject.death_session[:, None] > trained_days[None, :]).mean(axis=1)
    return set(np.flatnonzero((subject.death_session <= day) & (alive_share >= 0.9)).tolist())


@pytest.mark.slow
def test_a_tiny_run_scores_every_row_on_a_session_the_decoder_never_saw() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    tiny = "--sessions 1 --calibration-minutes 1 --heldout-seconds 15 --scratch-minutes 1.5"
    tiny += " --scratch-max-seconds 2"
    args = parser.parse_args(tiny.split())
    result = run(args)

    (session,) = result["heldout_sessions"]
    assert session not in result["base_model"]["sessions"]
    row = result["per_session"][session]
    n_channels = result["base_model"]["encoder"]["n_channels"]
    for stage in ("stage_a", "stage_b"):
        assert np.isfinite(row[stage]["r2"]) and row[stage]["r2"] <= 1.0
        # 15 s of 20 ms bins, less the bins a window needs before the first score.
        assert 0 < row[stage]["heldout_bins"] <= 750
        switched_off = row[stage]["switched_off_channels"]
        assert all(isinstance(channel, int) and 0 <= channel < n_channels for channel in switched_off)
        # An electrode that died after the decoder's training reads far below its normalisation.
        assert died_since_training(args.seed, session, result["base_model"]["sessions"]) <= set(switched_off)
    assert np.isfinite(row["scratch_20min"]["r2"])
    assert result["r2_stage_a"] == pytest.approx(row["stage_a"]["r2"])
    assert result["goals"]["stage_a_seconds_le_10"] == (result["stage_a_seconds"] <= 10.0)
