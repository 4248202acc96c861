"""The live scorer: bins wait for the truth to reach their end plus the lag, then count toward R²."""

from __future__ import annotations

import numpy as np

from rtbci.live_score import LiveScorer

BIN_S = 0.02
LAG_S = 0.1


class _Truth:
    """Stands in for a BehaviorFollower: velocity = (t, -t), known up to ``newest``."""

    def __init__(self) -> None:
        self.newest = 0.0
        self.times = np.array([])

    def poll(self) -> int:
        self.times = np.arange(0.0, self.newest + 1e-9, 0.001)
        return len(self.times)

    def at(self, times: np.ndarray, names: list[str]) -> np.ndarray:
        assert names == ["vel_x", "vel_y"]
        return np.stack([times, -times], axis=1)


def _records(first: int, n: int) -> np.ndarray:
    records = np.zeros(n, dtype=[("end_time", np.float64), ("output", np.float32, (3,))])
    records["end_time"] = (np.arange(first, first + n) + 1) * BIN_S
    truth = records["end_time"] + LAG_S
    records["output"][:, 1] = truth  # column 1: vel_x, decoded perfectly
    records["output"][:, 2] = -truth + 0.01 * np.sin(np.arange(n))  # column 2: vel_y, nearly
    return records


def test_bins_are_scored_once_the_truth_covers_them():
    truth = _Truth()
    scorer = LiveScorer(truth, ["vel_x", "vel_y"], [1, 2], LAG_S)
    scorer.add(_records(0, 50))  # bins ending 0.02 .. 1.0 s
    truth.newest = 0.6  # covers bins ending up to 0.5 s
    scorer.score_ready()
    assert scorer.r2()[1] == 25
    truth.newest = 2.2
    scorer.add(_records(50, 50))
    scorer.score_ready()
    r2, bins = scorer.r2()
    assert bins == 100
    assert r2["vel_x"] > 0.999999
    assert 0.99 < r2["vel_y"] < 1.0


def test_without_a_behavior_stream_nothing_is_scored():
    scorer = LiveScorer(None, ["vel_x", "vel_y"], [1, 2], LAG_S)
    scorer.add(_records(0, 50))
    scorer.score_ready()
    assert scorer.r2() == ({}, 0)
