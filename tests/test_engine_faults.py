"""Faults with real LSL on loopback: a stream vanishes and returns, NaN/Inf bursts, timestamp jumps and
clock resets, and a backend slower than the bin rate."""

from __future__ import annotations

import time

import numpy as np
import pytest
from engine_fixtures import (
    OnnxLinearBackend,
    SyntheticRig,
    outside_streams,
    unique_profile,
    wait_for,
)

from benchmarks.outside_sources import SourceProcess
from rtbci.engine import Engine, EngineOptions
from rtbci.engine.records import FLAG_OVERDUE
from rtbci.engine.status import format_status
from rtbci.io.store import read_session
from rtbci.latency.summary import bin_accounting
from rtbci.lsl import require_pylsl

pytestmark = pytest.mark.slow


def _all_records(engine: Engine) -> np.ndarray:
    records, _, missed = engine.records.read_since(0)
    assert missed == 0
    return records


def test_stream_vanishes_and_returns(tmp_path):
    # Each outlet lives in a process of its own, as a rig's does: destroying an outlet in the process
    # whose inlet is pulling from it can crash liblsl itself (a CI run segfaulted inside the pull).
    profile = unique_profile(tmp_path, late_policy="hold")
    spike_stream, lfp_stream = outside_streams(profile, 20)
    pylsl = require_pylsl()
    spikes = SourceProcess("pylsl", [spike_stream], 30.0, seed=1)
    lfp = SourceProcess("pylsl", [lfp_stream], 10.0, seed=2)
    engine = Engine(profile, OnnxLinearBackend((96, 5)), "lfp", EngineOptions(record=tmp_path / "gap.h5"))
    try:
        engine.start()
        t0 = pylsl.local_clock() + 0.2
        spikes.start_at(t0)
        lfp.start_at(t0)
        assert wait_for(lambda: engine.snapshot()["bins"] >= 50)
        before_gap = engine.snapshot()  # (a loaded machine can make a start-up bin late too)
        lfp.close()  # the LFP outlet is gone from the network
        late_lfp_before = before_gap["late_by_input"]["lfp"]
        assert wait_for(lambda: engine.snapshot()["late_by_input"]["lfp"] >= late_lfp_before + 40)
        status_during_gap = format_status(engine.snapshot(), engine.recent())
        decoded_during_gap = engine.snapshot()["bins"] - before_gap["bins"]
        lfp = SourceProcess("pylsl", [lfp_stream], 20.0, seed=3)
        # The new outlet acquires on the spikes' sample grid, as a restarted amplifier would.
        period = 1.0 / lfp_stream.rate
        lfp.start_at(t0 + np.ceil((pylsl.local_clock() + 0.2 - t0) / period) * period)
        late_before_return = engine.snapshot()["late"]
        # Back on the same bin grid: bins complete again without standing in for the LFP.
        assert wait_for(lambda: (engine.recent(25)["late_mask"] == 0).all() and engine.snapshot()["late"] > 0)
        time.sleep(0.5)
        records = _all_records(engine)
    finally:
        snapshot = engine.stop()
        spikes.close()
        lfp.close()
    assert snapshot["errors"] == []
    assert decoded_during_gap >= 40  # the output kept coming while the LFP was gone
    assert "late" in status_during_gap and late_before_return > 0
    lfp_health = snapshot["inputs"]["lfp"]
    assert lfp_health["gaps"] + lfp_health["timestamp_jumps"] >= 1
    assert bin_accounting(records["index"]) == {"dropped": 0, "duplicated": 0}
    late = records["late_mask"] != 0
    assert late.any() and not late[-25:].any()
    # Held input: while the LFP was missing (bit 1), the decoder saw the LFP's last bin again and again.
    lfp_late = (records["late_mask"] & 0b10) != 0
    edges = np.flatnonzero(np.diff(np.concatenate([[0], lfp_late.astype(int), [0]])))
    starts, stops = edges[::2], edges[1::2]
    longest = np.argmax(stops - starts)
    held = records["features"][starts[longest] : stops[longest]]
    assert len(held) >= 40
    np.testing.assert_array_equal(held[1:], np.broadcast_to(held[0], held[1:].shape))
    # The gap is in the recording too.
    recorded = read_session(tmp_path / "gap.h5", ["timing"]).streams["timing"]
    assert np.count_nonzero(recorded.data[:, 7]) >= 40


def test_nan_and_inf_bursts_are_sanitised_and_counted(tmp_path):
    profile = unique_profile(tmp_path)
    rig = SyntheticRig(profile).start()
    engine = Engine(profile, OnnxLinearBackend((96, 5)), "lfp")
    try:
        engine.start()
        assert wait_for(lambda: engine.snapshot()["bins"] >= 20)
        rig.nan_channels = slice(10, 40)
        assert wait_for(lambda: engine.snapshot()["inputs"]["lfp"]["nan_total"] > 3000)
        rig.nan_channels = None
        assert wait_for(lambda: engine.snapshot()["bins"] >= 150)
        records = _all_records(engine)
    finally:
        snapshot = engine.stop()
        rig.close()
    assert snapshot["errors"] == []
    assert np.isfinite(records["features"]).all()
    assert np.isfinite(records["output"]).all()
    assert snapshot["inputs"]["lfp"]["nan_total"] > 3000


def _serve_synthetic_rig(tmp_path, events) -> tuple[Engine, dict, np.ndarray]:
    """An engine on a :class:`SyntheticRig`: ``events(rig, engine)`` runs once 30 bins are decoded;
    returns the engine, its final status and every record."""
    profile = unique_profile(tmp_path)
    rig = SyntheticRig(profile).start()
    engine = Engine(profile, OnnxLinearBackend((96, 5)), "lfp", EngineOptions(record_ring_bins=20000))
    try:
        engine.start()
        assert wait_for(lambda: engine.snapshot()["bins"] >= 30)
        events(rig, engine)
        records = _all_records(engine)
    finally:
        snapshot = engine.stop()
        rig.close()
    return engine, snapshot, records


def _jump_then_reset(rig: SyntheticRig, engine: Engine) -> None:
    rig.clock_offset = 5.0  # the source's clock jumps 5 s ahead
    assert wait_for(lambda: engine.snapshot()["inputs"]["lfp"]["timestamp_jumps"] >= 1)
    bins_after_jump = engine.snapshot()["bins"]
    assert wait_for(lambda: engine.snapshot()["bins"] >= bins_after_jump + 30)
    rig.clock_offset = -60.0  # ... and is then reset a minute back
    assert wait_for(lambda: engine.snapshot()["clock_resets"] >= 1)
    bins_after_reset = engine.snapshot()["bins"]
    assert wait_for(lambda: engine.snapshot()["bins"] >= bins_after_reset + 30)


def test_timestamp_jump_and_clock_reset_are_handled(tmp_path):
    _, snapshot, records = _serve_synthetic_rig(tmp_path, _jump_then_reset)
    assert snapshot["errors"] == []
    assert snapshot["inputs"]["lfp"]["timestamp_jumps"] >= 2
    # The ~250 bins the forward jump skipped are counted (as a gap, or as late if one input's jump
    # was seen a bin before the other's), never silent.
    assert snapshot["gap_bins"] + snapshot["late"] >= 200
    # The bin numbers follow the source's clock: forward by ~250 bins, then back by ~3250.
    steps = np.diff(records["index"])
    assert steps.max() >= 200 and steps.min() <= -3000
    assert np.count_nonzero(steps == 1) >= len(steps) - 30  # otherwise one bin after another
    # Decoding went on with complete bins after both events.
    assert (records["late_mask"][-20:] == 0).all()


def _stall_then_catch_up(rig: SyntheticRig, engine: Engine) -> None:
    rig.stall(3.0)
    assert wait_for(lambda: engine.snapshot()["late"] >= 100, timeout=10.0)
    late_bins = engine.snapshot()["bins"]
    assert wait_for(lambda: engine.snapshot()["bins"] >= late_bins + 100)


def test_a_backlog_after_a_stall_is_stale_and_no_bin_is_decoded_twice(tmp_path):
    # Plain pylsl outlets go silent for 3 s, then send what they held, stamped when it was taken:
    # the engine decoded those bins on time with stand-ins, so the backlog is behind its clock.
    engine, snapshot, records = _serve_synthetic_rig(tmp_path, _stall_then_catch_up)
    assert snapshot["errors"] == []
    # Not a clock reset: the sources' own timestamps never went back.
    assert snapshot["clock_resets"] == 0
    assert bin_accounting(records["index"])["duplicated"] == 0
    assert np.all(np.diff(records["index"]) > 0), "the output's bin times never go back"
    assert sum(store.stale for store in engine.loop.aligner.inputs) > 0, "the backlog is counted as stale"
    assert (records["late_mask"][-20:] == 0).all(), "then complete bins again"


class SlowBackend:
    """A real backend made slower than the bin rate while ``slow`` is set (overload)."""

    def __init__(self, inner: OnnxLinearBackend, delay_s: float) -> None:
        self.inner = inner
        self.delay_s = delay_s
        self.slow = False

    def reset(self) -> None:
        self.inner.reset()

    def step(self, features: np.ndarray) -> np.ndarray:
        if self.slow:
            time.sleep(self.delay_s)
        return self.inner.step(features)

    def info(self) -> dict:
        return self.inner.info()


def test_overload_is_bounded_counted_and_recovers(tmp_path):
    profile = unique_profile(tmp_path)
    rig = SyntheticRig(profile).start()
    backend = SlowBackend(OnnxLinearBackend((96, 5)), delay_s=0.035)
    engine = Engine(profile, backend, "lfp")
    try:
        engine.start()
        assert wait_for(lambda: engine.snapshot()["bins"] >= 20)
        backend.slow = True  # 35 ms per 20 ms bin
        time.sleep(2.0)
        during = engine.snapshot()
        backend.slow = False
        assert wait_for(lambda: not (engine.recent(25)["flags"] & FLAG_OVERDUE).any(), timeout=20.0)
        records = _all_records(engine)
    finally:
        snapshot = engine.stop()
        rig.close()
    assert snapshot["errors"] == []
    assert during["overdue"] > 20
    # Bounded: the backlog lives in fixed rings; nothing grows without limit.
    stores = engine.loop.aligner.inputs
    assert all(store.tail - store.head <= store.capacity for store in stores)
    assert snapshot["overdue"] >= during["overdue"]
    # It caught up: the newest bins are decoded on time again, and none was lost or repeated.
    assert bin_accounting(records["index"]) == {"dropped": 0, "duplicated": 0}
    latency = records["t_push"] - records["t_last_sample"]
    assert latency[-25:].max() < latency.max()
