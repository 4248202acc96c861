"""The accuracy benchmark: a tiny run trains every row and reports what the issue asks for."""

import argparse

import numpy as np
import pytest

from benchmarks.accuracy import QUICK, AccuracyPlan, add_arguments, pretraining_rows, run
from rtbci.train.recipes import RECIPES

ISSUE_ROWS = {"ridge_lfp", "lfp_single", "lfp_multi", "distilled_lfp", "spike_teacher"}


@pytest.mark.slow
def test_a_tiny_quick_run_reports_the_five_rows_on_sessions_never_trained_on() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    tiny = "--quick --pretrain-steps 8 --distill-steps 8 --train-sessions 2 --train-minutes 1 --workers 1"
    result = run(parser.parse_args(tiny.split()))

    assert ISSUE_ROWS <= set(result["r2"])
    assert all(np.isfinite(value) and value <= 1.0 for value in result["r2"].values())
    assert result["heldout_sessions"] == ["sim-S0-d02", "sim-S1-d02"]
    assert not set(result["heldout_sessions"]) & set(result["train_sessions"])
    assert result["plan"]["train_minutes"] == 1.0
    assert result["train_minutes_cpu"] > 0.0
    goals = result["goals"]
    r2 = result["r2"]
    assert goals["distilled_minus_lfp_multi"] == pytest.approx(r2["distilled_lfp"] - r2["lfp_multi"])
    seen = result["r2_seen_sessions"]
    assert set(seen) == {"spike_teacher", "distilled_lfp"}
    assert all(np.isfinite(value) and value <= 1.0 for value in seen.values())
    # The multi-session LFP rows are also scored without the held-out sessions' channel check.
    assert set(result["r2_without_channel_check"]) == {"lfp_multi", "distilled_lfp"}
    assert set(result["channels_switched_off"]["distilled_lfp"]) == set(result["heldout_sessions"])


def test_the_plans_train_by_the_named_accuracy_recipes() -> None:
    assert AccuracyPlan().recipe() == RECIPES["accuracy"]
    assert QUICK.recipe() == RECIPES["accuracy-quick"]
    rows = [row for row, _ in pretraining_rows(QUICK, QUICK.recipe())]
    assert rows == ["spike_teacher", "lfp_multi"]
    assert [row for row, _ in pretraining_rows(AccuracyPlan(), RECIPES["accuracy"])][-1] == "latent_teacher"
