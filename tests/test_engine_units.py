"""The engine's pure parts: bin aligner, post-processing, rings, accounting, stream predicates."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rtbci.engine.align import BinAligner
from rtbci.engine.postprocess import PostProcessor, output_channels
from rtbci.engine.records import record_dtype
from rtbci.engine.ring import ChunkRing, RecordRing
from rtbci.latency.summary import bin_accounting
from rtbci.lsl.resolve import predicate_for
from rtbci.profile import OutputConfig, StreamSpec

BIN_S = 0.02


def _aligner(policy: str = "hold", deadline_s: float = 0.01) -> BinAligner:
    return BinAligner([(3,), (3, 2)], BIN_S, 0.0, deadline_s, policy, capacity=8)


def _add(aligner: BinAligner, k: int, index: int, value: float) -> None:
    shape = aligner.inputs[k].values.shape[1:]
    end = aligner.end_time(index)
    aligner.inputs[k].add(index, np.full(shape, value, np.float32), end - 0.001, end)


def test_bin_waits_for_every_input_then_decodes_in_order():
    aligner = _aligner()
    _add(aligner, 0, 10, 1.0)
    assert aligner.pop(now=0.0) is None  # input 1 has not delivered bin 10
    _add(aligner, 1, 10, 2.0)
    _add(aligner, 0, 11, 3.0)
    first = aligner.pop(now=0.0)
    assert first.index == 10 and first.late_mask == 0
    assert first.values[0][0] == 1.0 and first.values[1][0, 0] == 2.0
    assert first.end_time == pytest.approx(11 * BIN_S)
    assert aligner.pop(now=0.0) is None  # bin 11 still misses input 1 and is not due


@pytest.mark.parametrize(("policy", "expected"), [("hold", 2.0), ("zeros", 0.0)])
def test_late_input_is_stood_in_for_at_the_deadline_and_counted(policy, expected):
    aligner = _aligner(policy)
    _add(aligner, 0, 10, 1.0)
    _add(aligner, 1, 10, 2.0)
    aligner.pop(now=0.0)
    _add(aligner, 0, 11, 5.0)
    due = aligner.end_time(11) + aligner.deadline_s
    assert aligner.pop(now=due - 1e-4) is None
    late = aligner.pop(now=due)
    assert late.index == 11 and late.late_mask == 0b10
    assert late.values[0][0] == 5.0 and late.values[1][0, 0] == expected
    assert aligner.late_bins == 1 and aligner.late_by_input == [0, 1]
    # The late input's bin 11 arrives after all: it is counted as stale, never decoded twice.
    _add(aligner, 1, 11, 9.0)
    _add(aligner, 0, 12, 1.0)
    _add(aligner, 1, 12, 1.0)
    assert aligner.pop(now=due).index == 12
    assert aligner.inputs[1].stale == 1


def test_forward_jump_of_every_input_is_a_counted_gap():
    aligner = _aligner()
    for index in (10, 50):
        _add(aligner, 0, index, 1.0)
        _add(aligner, 1, index, 1.0)
    assert aligner.pop(now=0.0).index == 10
    jumped = aligner.pop(now=0.0)
    assert jumped.index == 50 and jumped.gap_bins == 39
    assert aligner.gap_bins == 39


def test_consistent_jump_back_is_a_clock_reset():
    aligner = _aligner()
    _add(aligner, 0, 1000, 1.0)
    _add(aligner, 1, 1000, 1.0)
    aligner.pop(now=0.0)
    _add(aligner, 0, 5, 1.0)
    _add(aligner, 1, 5, 1.0)
    reset = aligner.pop(now=0.0)
    assert reset.index == 5 and reset.clock_reset
    assert aligner.clock_resets == 1


def test_a_backlog_after_a_stall_is_stale_not_a_clock_reset():
    # Both inputs stall after bin 10; the decoder's clock moves on past their silence (a gap).
    aligner = _aligner()
    _add(aligner, 0, 10, 1.0)
    _add(aligner, 1, 10, 1.0)
    assert aligner.pop(now=0.0).index == 10
    now = aligner.end_time(11) + aligner.deadline_s + 3.0
    resumed = aligner.pop(now)
    assert resumed.gap_bins > 100 and not resumed.clock_reset
    # Then they send what they held, carrying on from bin 11, one bin at a time: far behind the
    # clock, but their own bins never went back. Nothing is decoded twice and nothing goes back.
    decoded = [resumed.index]
    for index in range(11, 11 + 120):
        _add(aligner, 0, index, 2.0)
        _add(aligner, 1, index, 2.0)
        popped = aligner.pop(now)
        if popped is not None:
            decoded.append(popped.index)
    assert aligner.clock_resets == 0
    assert np.all(np.diff(decoded) > 0)
    assert aligner.inputs[0].stale > 0 and aligner.inputs[1].stale > 0


def test_a_decoder_far_behind_decodes_late_bins_that_an_input_delivered():
    aligner = _aligner()
    _add(aligner, 0, 10, 1.0)
    _add(aligner, 1, 10, 1.0)
    aligner.pop(now=0.0)
    for index in range(11, 16):
        _add(aligner, 0, index, float(index))
    # Input 1 is gone and the decoder stalled for 2 s: input 0's bins are still decoded, in order.
    now = aligner.end_time(11) + 2.0
    decoded = [aligner.pop(now) for _ in range(5)]
    assert [b.index for b in decoded] == [11, 12, 13, 14, 15]
    assert all(b.late_mask == 0b10 and b.gap_bins == 0 for b in decoded)
    assert decoded[-1].values[0][0] == 15.0
    # Past input 0's last bin nothing was delivered: the clock resumes at the bin due now.
    resumed = aligner.pop(now)
    assert resumed.gap_bins > 0 and resumed.end_time + aligner.deadline_s <= now + BIN_S
    assert aligner.gap_bins == resumed.gap_bins


def test_a_full_input_ring_drops_its_oldest_bins_and_counts_them():
    aligner = _aligner()
    for index in range(20):
        _add(aligner, 0, index, float(index))
    assert aligner.inputs[0].overflow == 12
    assert aligner.inputs[0].first_index() == 12


def test_postprocess_gain_clamp_smoothing_and_integration():
    config = OutputConfig(kinematics=("vel_x", "vel_y"), velocity_clamp=0.5, smoothing_ms=0.0, gain=2.0)
    post = PostProcessor(config, BIN_S)
    out = post.process(np.array([0.1, 1.0], np.float32))
    np.testing.assert_allclose(out, [0.2, 0.5, 0.2 * BIN_S, 0.5 * BIN_S], rtol=1e-6)
    out = post.process(np.array([0.1, -1.0], np.float32))
    np.testing.assert_allclose(out[2:], [0.4 * BIN_S, 0.0], atol=1e-7)


def test_postprocess_smoother_is_the_profiles_exponential_time_constant():
    post = PostProcessor(OutputConfig(smoothing_ms=60.0, velocity_clamp=10.0), BIN_S)
    alpha = 1.0 - math.exp(-BIN_S / 0.06)
    first = post.process(np.array([1.0, 0.0], np.float32))[0]
    second = post.process(np.array([1.0, 0.0], np.float32))[0]
    assert first == pytest.approx(alpha, rel=1e-6)
    assert second == pytest.approx(alpha + alpha * (1 - alpha), rel=1e-6)


def test_postprocess_replaces_nonfinite_values_and_counts_them():
    post = PostProcessor(OutputConfig(smoothing_ms=0.0), BIN_S)
    post.process(np.array([0.25, -0.25], np.float32))
    out = post.process(np.array([np.nan, np.inf], np.float32))
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out[:2], [0.25, -0.25])
    assert post.nonfinite == 2


def test_safety_stop_zeroes_velocity_and_holds_position():
    post = PostProcessor(OutputConfig(smoothing_ms=0.0), BIN_S)
    held = post.process(np.array([0.3, 0.1], np.float32))[2:].copy()
    post.enabled = False
    out = post.process(np.array([0.3, 0.1], np.float32))
    np.testing.assert_array_equal(out[:2], [0.0, 0.0])
    np.testing.assert_array_equal(out[2:], held)


def test_a_position_reset_zeroes_the_position_at_the_next_bin_only():
    post = PostProcessor(OutputConfig(smoothing_ms=0.0), BIN_S)
    velocity = np.array([0.3, -0.1], np.float32)
    for _ in range(10):
        post.process(velocity)
    assert post.output[2] == pytest.approx(10 * 0.3 * BIN_S)
    post.request_position_reset("test")
    assert post.position_resets == 0, "applied by the next bin, not by the request"
    out = post.process(velocity)
    np.testing.assert_allclose(out[2:], velocity * BIN_S, rtol=1e-6)  # this bin's step from zero
    np.testing.assert_allclose(out[:2], velocity)  # velocity goes on
    assert post.position_resets == 1 and post.reset_source == "test"
    out = post.process(velocity)
    np.testing.assert_allclose(out[2:], 2 * velocity * BIN_S, rtol=1e-6)


def test_output_channels_add_a_position_per_velocity():
    labels, units = output_channels(OutputConfig(kinematics=("vel_x", "vel_y", "grip"), units="m/s"))
    assert labels == ["vel_x", "vel_y", "grip", "pos_x", "pos_y"]
    assert units == ["m/s", "m/s", "m/s", "m", "m"]


def test_chunk_ring_keeps_chunks_across_the_wrap_and_counts_overflow():
    ring = ChunkRing(capacity=25, n_channels=2, dtype=np.dtype(np.int16), max_chunks=8)
    written = []
    for k in range(6):
        chunk = np.full((10, 2), k, np.int16)
        stamps = np.arange(10) + 10.0 * k
        assert ring.write(chunk, stamps)
        written.append((chunk, stamps))
        got = list(ring.read())
        assert len(got) == 1
        np.testing.assert_array_equal(got[0][0], chunk)
        np.testing.assert_array_equal(got[0][1], stamps)
    assert ring.write(np.zeros((10, 2), np.int16), np.zeros(10))
    assert ring.write(np.zeros((10, 2), np.int16), np.zeros(10))
    assert not ring.write(np.zeros((10, 2), np.int16), np.zeros(10))  # the reader is a ring behind
    assert ring.overflow_chunks == 1 and ring.overflow_samples == 10
    assert [len(stamps) for _, stamps in ring.read()] == [10, 10]


def test_record_ring_readers_follow_their_own_cursor_and_see_what_they_missed():
    ring = RecordRing(record_dtype(4, (3,)), capacity=5)
    for seq in range(8):
        ring.slot()["seq"] = seq
        ring.commit()
    records, cursor, missed = ring.read_since(0)
    assert missed == 3 and cursor == 8
    assert list(records["seq"]) == [3, 4, 5, 6, 7]
    assert list(ring.last(2)["seq"]) == [6, 7]
    records, cursor, missed = ring.read_since(cursor)
    assert len(records) == 0 and missed == 0


def test_bin_accounting_finds_dropped_and_duplicated_bins():
    assert bin_accounting(np.array([3, 4, 5, 6])) == {"dropped": 0, "duplicated": 0}
    assert bin_accounting(np.array([3, 4, 4, 7])) == {"dropped": 2, "duplicated": 1}


def test_stream_predicate_uses_every_identifier_that_is_set():
    spec = StreamSpec(channels=4, rate=1000.0, name="lfp", source_id="rig-1")
    assert predicate_for(spec) == "name='lfp' and source_id='rig-1'"


def test_an_input_that_chunks_coarsely_is_waited_for_by_its_chunk_allowance():
    """A source sending 100 ms chunks delivers a bin up to 100 ms after it ends: that is not late."""
    aligner = _aligner()
    aligner.inputs[1].allowance_s = 0.1
    _add(aligner, 0, 10, 1.0)
    _add(aligner, 1, 10, 1.0)
    aligner.pop(now=0.0)
    _add(aligner, 0, 11, 1.0)
    # Without the allowance bin 11 would be due (and late) 10 ms after its end.
    assert aligner.next_deadline() == pytest.approx(aligner.end_time(11) + 0.1 + 0.01)
    assert aligner.pop(now=aligner.end_time(11) + 0.05) is None
    _add(aligner, 1, 11, 2.0)
    on_time = aligner.pop(now=aligner.end_time(11) + 0.09)
    assert on_time.index == 11 and on_time.late_mask == 0
    # Past the allowance the missing input is late, and only that one.
    _add(aligner, 0, 12, 1.0)
    late = aligner.pop(now=aligner.end_time(12) + 0.1 + 0.01)
    assert late.index == 12 and late.late_mask == 0b10


def test_the_allowance_of_an_input_that_delivered_does_not_delay_a_bin():
    aligner = _aligner()
    aligner.inputs[0].allowance_s = 0.1  # input 0 chunks coarsely but has delivered bin 10
    _add(aligner, 0, 10, 1.0)
    assert aligner.pop(now=0.0) is None  # the clock starts once every input delivered
    _add(aligner, 1, 10, 1.0)
    aligner.pop(now=0.0)
    _add(aligner, 0, 11, 1.0)
    assert aligner.next_deadline() == pytest.approx(aligner.end_time(11) + 0.01)


def test_the_grid_puts_edges_midway_between_the_fastest_inputs_samples():
    from rtbci.signal.grid import first_complete_index, grid_epoch

    epoch = grid_epoch(100.0004, 2000.0)
    assert -0.0005 <= epoch < 0.0
    # Every edge lies a quarter millisecond from the 2 kHz samples (100.0004 + k/2000).
    edges = epoch + np.arange(5000, 5010) * BIN_S
    offsets = (edges - 100.0004) % 0.0005
    np.testing.assert_allclose(offsets, 0.00025, atol=1e-9)
    # The first complete bin of a stream starts at or after its first sample's half period.
    index = first_complete_index(epoch, BIN_S, 100.0004, 2000.0)
    assert epoch + index * BIN_S >= 100.0004 - 0.0005
    assert epoch + (index - 1) * BIN_S < 100.0004 - 0.0005


def test_event_log_readers_get_new_events_and_are_told_what_they_missed():
    from rtbci.engine.events import EventLog

    log = EventLog(capacity=3)
    events, cursor, missed = log.since(0)
    assert (events, cursor, missed) == ([], 0, 0)
    for k in range(5):
        log.add(float(k), f"event {k}")
    events, cursor, missed = log.since(0)
    assert [text for _, text in events] == ["event 2", "event 3", "event 4"] and missed == 2
    log.add(5.0, "event 5")
    events, cursor, missed = log.since(cursor)
    assert events == [(5.0, "event 5")] and missed == 0 and cursor == 6
    assert log.last(2) == [(4.0, "event 4"), (5.0, "event 5")]


def test_threads_started_inside_the_realtime_block_inherit_it_and_the_caller_is_restored():
    import os
    import threading

    from rtbci.engine.scheduling import inherited_realtime_priority

    before = os.sched_getscheduler(0)
    seen = {}

    def record_policy() -> None:
        seen["policy"] = os.sched_getscheduler(0)

    with inherited_realtime_priority(10):
        granted = os.sched_getscheduler(0) == os.SCHED_FIFO
        thread = threading.Thread(target=record_policy)
        thread.start()
        thread.join()
    if not granted:
        pytest.skip("this machine refuses SCHED_FIFO (needs CAP_SYS_NICE or root)")
    assert seen["policy"] == os.SCHED_FIFO  # what liblsl's receiver threads get
    assert os.sched_getscheduler(0) == before
    with inherited_realtime_priority(None):
        assert os.sched_getscheduler(0) == before
