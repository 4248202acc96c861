"""The accuracy benchmark's stage pool: stages run in spawned workers, their results (encoders
included) come back, and each stage's training time is recorded."""

from __future__ import annotations

import math

import pytest

from benchmarks.stage_pool import StagePool
from rtbci.models.encoder import Encoder
from rtbci.profile import load_profile
from rtbci.train.encoders import SIZES, new_encoder


def test_stages_run_in_workers_and_send_encoders_back():
    profile = load_profile("profiles/demo.toml")
    pool = StagePool(2)
    try:
        pool.submit("encoder", new_encoder, profile, "spikes", 1, 3, SIZES["tiny"])
        pool.submit("number", math.factorial, 10)
        encoder = pool.result("encoder")
        assert pool.result("number") == 3_628_800
    finally:
        pool.close()
    assert isinstance(encoder, Encoder) and encoder.config.n_sessions == 3
    assert set(pool.stage_seconds) == {"encoder", "number"}
    assert all(seconds >= 0.0 for seconds in pool.stage_seconds.values())


def test_a_failing_stage_raises_in_the_caller():
    pool = StagePool(1)
    try:
        pool.submit("bad", math.factorial, -1)
        with pytest.raises(ValueError, match="factorial"):
            pool.result("bad")
    finally:
        pool.close()
