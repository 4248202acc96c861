"""The closed-loop benchmark: lockstep blocks through the real engine and LSL, its decoders, a tiny plan."""

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.closed_loop import METRICS, ClosedLoopPlan, run_plan
from benchmarks.closed_loop_decoders import (
    RidgeBackend,
    ServedDecoder,
    ZeroBackend,
    fit_blocks,
    fit_ridge,
    labelled_bins,
)
from benchmarks.lockstep import block_profile, run_block
from benchmarks.spike_decoder import SpikeDecoderPlan
from rtbci.signal import BinnedSession, Normalizer
from rtbci.task.labels import cue_labels
from rtbci.task.metrics import summarize
from rtbci.train.readout import with_history

DEMO = Path(__file__).resolve().parents[1] / "profiles" / "demo.toml"


def test_the_ridge_backend_streams_what_the_ridge_fit_predicts_offline():
    rng = np.random.default_rng(0)
    lfp = rng.normal(size=(400, 6, 3)).astype(np.float32)
    velocity = lfp[:, 0, :2] - 0.5 * np.roll(lfp[:, 1, :2], 1, axis=0)
    binned = BinnedSession(
        spikes=np.zeros((400, 6), np.float32),
        lfp=lfp,
        kinematics=velocity.astype(np.float32),
        bin_ends=np.arange(400) * 0.02,
        kinematics_names=["vel_x", "vel_y"],
        feature_names=[],
        session_id="sim-S0-d16",
        subject="sim-S0",
    )
    backend = fit_ridge(binned, history=3)
    design = with_history(backend.normalizer.apply(lfp.reshape(400, -1)), 3)
    offline = design @ backend.weight.T + backend.bias
    backend.reset()
    online = np.stack([backend.step(features) for features in lfp])
    np.testing.assert_allclose(online, offline, rtol=1e-4, atol=1e-4)
    assert np.corrcoef(online[:, 0], velocity[:, 0])[0, 1] > 0.9, "the fit found the velocity"


def test_the_zero_backend_and_the_blocks_a_calibration_fits_on():
    assert not ZeroBackend(2).step(np.ones((96, 5), np.float32)).any()
    blocks = fit_blocks(1000, 50)
    assert (blocks.fit.stop, blocks.val.start, blocks.val.stop, blocks.train.stop) == (750, 800, 1000, 1000)
    with pytest.raises(ValueError, match="too few"):
        fit_blocks(60, 50)
    with pytest.raises(ValueError, match="exactly one"):
        ServedDecoder("lfp")
    # Bins before the first count as zeros, as in the fit (with_history pads with zeros).
    ridge = RidgeBackend(Normalizer(np.zeros(2), np.ones(2)), np.ones((1, 4)), np.zeros(1), 2)
    assert ridge.step(np.ones(2, np.float32))[0] == 2.0 and ridge.step(np.ones(2, np.float32))[0] == 4.0


@pytest.mark.slow
def test_the_zero_decoder_acquires_no_target_through_real_lsl_in_lockstep(tmp_path):
    zero = ServedDecoder("lfp", backend=lambda: ZeroBackend(2))
    # Brain control with a decoder that outputs zeros: every trial times out (10 s each).
    block = run_block(block_profile(DEMO, tmp_path, 0.0, zero.model_table()), zero.engine, 16, 2, 30.0)
    metrics = summarize(block.trials)
    assert metrics.trials == 2 and metrics.success_rate == 0.0 and metrics.fitts_bits_per_s == 0.0
    assert not np.any(block.task_rows[:, 0:2]), "the cursor never left the centre"
    # Lockstep through the engine: one answered bin per decoded bin, none decoded with stand-ins.
    assert block.late_bins == 0 and block.decoded_bins - 3 <= len(block.records) <= block.decoded_bins
    np.testing.assert_allclose(
        block.records["end_time"][1:] - block.records["end_time"][:-1], 0.02, atol=1e-6
    )
    # The cue (assist 1) moves the cursor by itself: every target is acquired, and the block labels.
    cue = run_block(block_profile(DEMO, tmp_path, 1.0, zero.model_table()), zero.engine, 16, 4, 30.0)
    assert summarize(cue.trials).success_rate == 1.0
    binned = labelled_bins(cue, "cue", "lfp", "sim-S0-d16", block_profile(DEMO, tmp_path, 1.0))
    assert binned.lfp.shape[1:] == (96, 5) and binned.spikes.shape[1:] == (96,)
    # Each bin is labelled by the cue shown 120 ms (6 bins) before it (LABEL_LAG_MS).
    np.testing.assert_array_equal(binned.kinematics, cue_labels(cue.task_rows)[:-6].astype(np.float32))
    np.testing.assert_array_equal(binned.bin_ends, cue.records["end_time"][6:])
    assert np.abs(binned.kinematics).max() > 0.1


@pytest.mark.slow
def test_a_tiny_plan_reports_every_decoder_and_stage(tmp_path, monkeypatch):
    # The spike decoder is trained (tiny) into a cache of this test's own.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    # Two sessions: each calibrates into folders of its own, and the summary spreads over both.
    plan = ClosedLoopPlan(
        sessions=2,
        cue_trials=8,
        score_trials=2,
        max_block_s=12.0,
        spike_decoder=SpikeDecoderPlan(sessions=2, minutes=1.0, teacher_steps=10, finetune_steps=2),
        cue_gains=(2.0,),
    )
    result = run_plan(plan, DEMO)
    json.dumps(result, allow_nan=False)
    assert set(result["summary"]) == {"zero", "ridge_lfp", "student_lfp", "spike"}
    for decoder, stages in result["summary"].items():
        assert set(stages) == ({"uncalibrated"} if decoder == "zero" else {"cue", "refit", "cue@x2"})
        for figures in stages.values():
            assert set(METRICS) <= set(figures) and figures["trials"] >= 2
            assert figures["success_rate"]["sessions"] == 2
    assert result["goals"]["zero_success_rate"] == 0.0 and result["goals"]["zero_success_is_0"] is True
    assert all(isinstance(value, bool) for key, value in result["goals"].items() if "_ge_" in key)
    assert set(result["per_session"]) == {"sim-S0-d16", "sim-S0-d17"}
    session = result["per_session"]["sim-S0-d16"]
    assert session["cue_block"]["success_rate"] == 1.0
    assert set(session["fits"]) == {
        f"{d}/{s}" for d in ("ridge_lfp", "student_lfp", "spike") for s in ("cue", "refit")
    }
    assert result["spike_decoder"]["cached"] is False
    assert Path(result["spike_decoder"]["artifact"]).is_relative_to(tmp_path / "cache")
