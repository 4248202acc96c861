"""Reaching behaviour: minimum-jerk paths, task structure, markers, continuity."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rtbci.sim.behavior import BehaviorBuffer, ReachingTask, minimum_jerk
from rtbci.sim.config import TaskConfig

FS = 1000.0


def _record(task: TaskConfig, seconds: float, seed: int = 0):
    buffer = BehaviorBuffer(ReachingTask(task, FS, np.random.default_rng(seed)))
    n = int(seconds * FS)
    return buffer.window(0, n), buffer.pop_markers(n)


def test_minimum_jerk_profile() -> None:
    tau = np.linspace(0.0, 1.0, 1001)
    shape, rate = minimum_jerk(tau)
    assert shape[0] == 0.0 and shape[-1] == pytest.approx(1.0)
    assert rate[0] == 0.0 and rate[-1] == pytest.approx(0.0)
    assert rate.max() == pytest.approx(1.875, rel=1e-3)  # peak speed of a minimum-jerk reach
    assert np.allclose(np.gradient(shape, tau), rate, atol=1e-3)


def test_velocity_is_the_derivative_of_position() -> None:
    kinematics, _ = _record(TaskConfig(), 60.0)
    derivative = np.diff(kinematics.pos, axis=0) * FS
    # Analytic velocity of each sample vs the finite difference of neighbours.
    midpoint = 0.5 * (kinematics.vel[1:] + kinematics.vel[:-1])
    assert np.max(np.abs(derivative - midpoint)) < 0.01


def test_center_out_reaches_go_to_eight_targets_and_back() -> None:
    task = TaskConfig(task="center_out")
    kinematics, markers = _record(task, 120.0)
    targets = np.unique(np.round(kinematics.target, 6), axis=0)
    radii = np.linalg.norm(targets, axis=1)
    assert np.any(radii == 0.0)
    peripheral = targets[radii > 0]
    assert len(peripheral) == 8
    assert np.allclose(np.linalg.norm(peripheral, axis=1), task.center_out_radius_m)
    # The hand ends each reach near its target.
    reach_ends = [sample for sample, text in markers if text == "reach_end"]
    errors = np.linalg.norm(kinematics.pos[reach_ends] - kinematics.target[reach_ends], axis=1)
    assert np.median(errors) < 0.01


def test_random_targets_stay_in_the_workspace() -> None:
    task = TaskConfig(task="random_target")
    kinematics, _ = _record(task, 120.0)
    assert np.abs(kinematics.target).max() <= task.workspace_half_width_m
    assert len(np.unique(kinematics.target, axis=0)) > 40


def test_mixed_task_alternates_blocks() -> None:
    _, markers = _record(TaskConfig(task="mixed", block_reaches=10), 120.0)
    blocks = [text for _, text in markers if text.startswith("task:")]
    assert {"task:center_out", "task:random_target"} <= set(blocks)
    assert all(a != b for a, b in itertools.pairwise(blocks))


def test_markers_follow_reaction_time_and_hold_structure() -> None:
    kinematics, markers = _record(TaskConfig(), 120.0)
    speed = np.linalg.norm(kinematics.vel, axis=1)
    events = [(sample, text) for sample, text in markers if not text.startswith("task:")]
    names = [text for _, text in events]
    # Every reach: target_on, go, reach_end, reward, in that order.
    assert names[: 4 * (len(names) // 4)] == ["target_on", "go", "reach_end", "reward"] * (len(names) // 4)
    reaction_times, hold_speeds = [], []
    for i in range(0, len(events) - 3, 4):
        go, end, reward = events[i + 1][0], events[i + 2][0], events[i + 3][0]
        onset = go + int(np.argmax(speed[go:end] > 0.02))
        reaction_times.append((onset - go) / FS)
        hold_speeds.append(speed[end + 50 : reward].max())
    assert 0.15 < np.median(reaction_times) < 0.4
    assert np.median(hold_speeds) < 0.02  # the hand is held still on the target
    assert 0.2 < speed.max() < 1.0


def test_kinematics_are_continuous_across_reaches() -> None:
    kinematics, _ = _record(TaskConfig(), 60.0)
    jumps = np.linalg.norm(np.diff(kinematics.pos, axis=0), axis=1)
    assert jumps.max() < 0.002  # no teleporting between reaches (2 mm per ms is 2 m/s)


def test_buffer_windows_do_not_depend_on_how_they_are_read() -> None:
    whole, _ = _record(TaskConfig(), 20.0, seed=3)
    buffer = BehaviorBuffer(ReachingTask(TaskConfig(), FS, np.random.default_rng(3)))
    parts = []
    for start in range(0, 20_000, 1_000):
        parts.append(buffer.window(start, start + 1_000).pos)
        buffer.discard_before(start + 1_000)
    assert np.array_equal(np.concatenate(parts), whole.pos)
    with pytest.raises(ValueError, match="discarded"):
        buffer.window(0, 10)
