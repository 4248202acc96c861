"""Pieces of the engine host and the dashboard that need no streams: the shared-memory ring across a
real process boundary, the rolling buffer, the health light, and the demo's display choice."""

from __future__ import annotations

import multiprocessing
import time
import uuid

import numpy as np
import pytest

from apps.decoder.health_panel import Light, input_light
from rtbci.display import display_problem, has_display
from rtbci.engine.records import record_dtype
from rtbci.engine.rolling import RollingBuffer
from rtbci.engine.shared_ring import SharedRecordReader, SharedRecordRing

DTYPE = record_dtype(4, (96, 5))


def _write_records(ring: SharedRecordRing, first: int, count: int) -> None:
    for seq in range(first, first + count):
        record = ring.slot()
        record["seq"] = seq
        record["output"] = seq
        record["features"] = seq
        ring.commit()


def _child_writes(name_queue, go, count: int) -> None:
    ring = SharedRecordRing(DTYPE, 64)
    name_queue.put(ring.name)
    go.wait(30)
    _write_records(ring, 0, count)
    name_queue.put("done")
    ring.close()


def test_shared_ring_crosses_a_process_boundary():
    context = multiprocessing.get_context("spawn")
    names, go = context.Queue(), context.Event()
    child = context.Process(target=_child_writes, args=(names, go, 40))
    child.start()
    reader = SharedRecordReader(names.get(timeout=60), DTYPE, 64)
    assert len(reader.read_new()) == 0
    go.set()
    assert names.get(timeout=60) == "done"
    child.join(30)
    records = reader.read_new()
    assert records["seq"].tolist() == list(range(40))
    assert (records["features"][:, 7, 3] == np.arange(40)).all()
    assert len(reader.read_new()) == 0 and reader.missed == 0
    reader.close()


def test_shared_ring_reader_counts_what_it_missed_and_never_returns_torn_rows():
    ring = SharedRecordRing(DTYPE, 16)
    reader = SharedRecordReader(ring.name, DTYPE, 16)
    try:
        _write_records(ring, 0, 10)
        assert reader.read_new()["seq"].tolist() == list(range(10))
        _write_records(ring, 10, 40)  # laps the reader
        records = reader.read_new()
        # The slot the writer fills next is never handed out, so at most capacity - 1 rows come back.
        assert records["seq"].tolist() == list(range(35, 50))
        assert reader.missed == 25
        _write_records(ring, 50, 5)
        assert reader.read_new(limit=2)["seq"].tolist() == [53, 54]
        assert reader.missed == 28
    finally:
        ring.close()
        reader.close()


def test_rolling_buffer_keeps_the_newest_rows_in_order():
    buffer = RollingBuffer(capacity=5, n_columns=2)
    for start in range(0, 23, 3):
        times = np.arange(start, start + 3, dtype=float)
        buffer.append(times, np.column_stack([times, -times]))
        assert (np.diff(buffer.times) == 1).all()
    assert buffer.times.tolist() == [19.0, 20.0, 21.0, 22.0, 23.0]
    assert buffer.values[:, 1].tolist() == [-19.0, -20.0, -21.0, -22.0, -23.0]
    buffer.append(np.arange(100.0, 112.0), np.zeros((12, 2)))  # more than it holds at once
    assert buffer.times.tolist() == [107.0, 108.0, 109.0, 110.0, 111.0]
    assert buffer.appended == 24 + 12


@pytest.mark.parametrize(
    ("state", "rate", "new_problems", "light"),
    [
        ("connected", 1000.0, 0, Light.GREEN),
        ("connected", None, 0, Light.GREEN),
        ("connected", 700.0, 0, Light.AMBER),
        ("connected", 0.0, 0, Light.RED),
        ("connected", 1000.0, 3, Light.AMBER),
        ("lost", 1000.0, 0, Light.RED),
        ("lost", 0.0, 5, Light.RED),
    ],
)
def test_input_light(state, rate, new_problems, light):
    assert input_light({"state": state}, rate, 1000.0, new_problems) is light


def test_demo_runs_headless_without_a_display(monkeypatch, tmp_path):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    assert display_problem() == "no display (DISPLAY and WAYLAND_DISPLAY are unset)"
    monkeypatch.setenv("DISPLAY", ":987")  # set, but no X server behind it
    assert display_problem() == "the X display DISPLAY=:987 cannot be opened" and not has_display()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    assert not has_display(), "a Wayland display with no socket, and an X display that cannot be opened"
    (tmp_path / "wayland-0").touch()
    assert has_display()
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    monkeypatch.delenv("WAYLAND_DISPLAY")
    assert has_display()


def test_behavior_follower_interpolates_a_real_lsl_stream():
    import pylsl

    from rtbci.engine.behavior import BehaviorFollower, r2_with_truth
    from rtbci.profile import StreamSpec

    name = f"test-behavior-{uuid.uuid4().hex[:10]}"
    info = pylsl.StreamInfo(name, "Kinematics", 6, 1000.0, "float32", f"{name}-src")
    channels = info.desc().append_child("channels")
    for label in ("pos_x", "pos_y", "vel_x", "vel_y", "target_x", "target_y"):
        channels.append_child("channel").append_child_value("label", label)
    outlet = pylsl.StreamOutlet(info)
    follower = BehaviorFollower(StreamSpec(channels=6, rate=1000.0, name=name), seconds=1.0, timeout=10.0)
    try:
        start = pylsl.local_clock()
        times = start + np.arange(2000) / 1000.0
        samples = np.zeros((2000, 6), dtype=np.float32)
        samples[:, 2] = np.arange(2000)  # vel_x counts samples
        samples[:, 4] = 7.0
        for first in range(0, 2000, 100):
            outlet.push_chunk(samples[first : first + 100], times[first + 99])
        got = 0
        for _ in range(200):
            got += follower.poll()
            if got >= 2000:
                break
            time.sleep(0.02)
        assert got == 2000
        assert len(follower.times) == 1000  # one second kept
        assert follower.latest(("vel_x", "target_x")).tolist() == [1999.0, 7.0]
        stamps = follower.times
        query = np.array([stamps[0] - 1.0, stamps[10] + 0.25 * (stamps[11] - stamps[10]), stamps[-1]])
        values = follower.at(query, ("vel_x",))[:, 0]
        assert np.isnan(values[0])
        assert values[1] == pytest.approx(follower.channels(("vel_x",))[10, 0] + 0.25)
        assert values[2] == 1999.0
    finally:
        follower.close()
        del outlet
    decoded = np.arange(24.0).reshape(12, 2)
    truth = decoded.copy()
    assert np.isnan(r2_with_truth(decoded[:5], truth[:5])).all()  # too few bins to score
    truth[3] = np.nan
    assert r2_with_truth(decoded, truth).tolist() == [1.0, 1.0]
