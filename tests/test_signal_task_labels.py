"""featurize(labels="cue"|"refit"): labels from a recorded cursor task stream, not a hand."""

from __future__ import annotations

import numpy as np
import pytest
from test_signal_featurize import make_profile, make_session

from rtbci.io.session import Stream, StreamKind
from rtbci.io.store import read_session, write_session
from rtbci.profile import CursorTaskConfig
from rtbci.signal import FeaturizeError, featurize
from rtbci.task import CursorTask
from rtbci.task.labels import LABEL_LAG_MS, cue_labels, refit_labels
from rtbci.task.stream import CUED_VELOCITY, TASK_CHANNELS, write_sample

BIN_S = 0.02
# The engine's grid sits 7 ms off featurize's own (another epoch): rows are matched to the nearest bin.
ENGINE_OFFSET_S = 0.007


def _task_rows(n: int, seed: int = 0) -> np.ndarray:
    """Rows written by the real task, assist 0.5, on noisy decoded velocities."""
    task = CursorTask(CursorTaskConfig(n_targets=4, inter_trial_ms=100.0, hold_ms=100.0, assist=0.5), BIN_S)
    rng = np.random.default_rng(seed)
    rows = np.zeros((n, len(TASK_CHANNELS)), np.float32)
    for k in range(n):
        decoded = rng.normal(0.0, 0.2, size=2)
        write_sample(rows[k], task.step(decoded), decoded)
    return rows


def _session_with_task(tmp_path, first_row_s: float = 0.2, n_rows: int = 120):
    """A session of neural data and a task stream (no hand), written to and read from HDF5."""
    session = make_session()
    del session.streams["behavior"]
    t0 = float(session.streams["spikes"].timestamps[0])
    stamps = t0 + first_row_s + ENGINE_OFFSET_S + BIN_S * np.arange(n_rows)
    rows = _task_rows(n_rows)
    session.add(Stream("task", StreamKind.TASK, rows, stamps, 1.0 / BIN_S, list(TASK_CHANNELS), ""))
    path = tmp_path / "task.h5"
    write_session(path, session)
    return read_session(path), rows, stamps


@pytest.mark.parametrize("labels", ["cue", "refit"])
def test_task_labels_are_the_rows_of_the_nearest_task_bin_at_the_labels_lag(tmp_path, labels):
    session, rows, stamps = _session_with_task(tmp_path)
    binned = featurize(session, make_profile(8), labels=labels, progress=False)
    per_row = cue_labels(rows) if labels == "cue" else refit_labels(rows, CursorTaskConfig().target_radius)
    lag_s = LABEL_LAG_MS[labels] / 1000.0
    assert LABEL_LAG_MS == {"cue": -120.0, "refit": 0.0}
    # Every bin whose end plus the lag lies within the task rows keeps a row: 120 rows over 2.4 s.
    assert len(binned) == 120
    nearest = np.abs(binned.bin_ends[:, None] + lag_s - stamps[None, :]).argmin(axis=1)
    np.testing.assert_array_less(np.abs(binned.bin_ends + lag_s - stamps[nearest]), BIN_S / 2)
    np.testing.assert_array_equal(nearest, np.arange(120))
    np.testing.assert_allclose(binned.kinematics, per_row[nearest], atol=1e-6)
    assert np.abs(binned.kinematics).max() > 0.01
    assert binned.kinematics_names == ["vel_x", "vel_y"]


def test_state_is_held_not_interpolated_and_a_lag_shifts_the_rows(tmp_path):
    session, rows, stamps = _session_with_task(tmp_path)
    lagged = featurize(session, make_profile(8), lag_ms=-60.0, labels="cue", progress=False)
    nearest = np.abs(lagged.bin_ends[:, None] - 0.06 - stamps[None, :]).argmin(axis=1)
    np.testing.assert_allclose(lagged.kinematics, cue_labels(rows)[nearest], atol=1e-6)
    # Each label is one row's value, never a blend of two.
    values = {tuple(v) for v in cue_labels(rows).astype(np.float32)}
    assert all(tuple(v) in values for v in lagged.kinematics)


def test_bins_over_dropped_task_rows_are_left_out(tmp_path):
    session, rows, stamps = _session_with_task(tmp_path)
    task = session.streams["task"]
    keep = np.ones(len(rows), bool)
    keep[50:60] = False  # the task stream lost 10 rows (200 ms)
    session.streams["task"] = Stream(
        "task", StreamKind.TASK, task.data[keep], task.timestamps[keep], task.rate, task.channel_labels
    )
    binned = featurize(session, make_profile(8), lag_ms=0.0, labels="cue", progress=False)
    assert len(binned) == 110, "the 10 bins without a row go, none held over"
    assert not np.any((binned.bin_ends > stamps[51]) & (binned.bin_ends < stamps[59]))


def test_a_task_stream_whose_stamps_go_back_is_read_in_time_order(tmp_path):
    """When the decoder's output stamps go back (seen once under heavy load), the rows of those bin
    times come twice, and the later ones count."""
    session, rows, stamps = _session_with_task(tmp_path)
    task = session.streams["task"]
    again = slice(40, 60)  # 20 bins (400 ms) decoded again after row 80
    replayed = rows[again].copy()
    replayed[:, CUED_VELOCITY] += 1.0  # the second decoding's rows differ
    data = np.concatenate([rows[:80], replayed, rows[80:]])
    times = np.concatenate([stamps[:80], stamps[again], stamps[80:]])
    session.streams["task"] = Stream("task", StreamKind.TASK, data, times, task.rate, task.channel_labels)
    binned = featurize(session, make_profile(8), lag_ms=0.0, labels="cue", progress=False)
    assert len(binned) == 120, "each bin once"
    expected = cue_labels(rows)
    expected[again] = cue_labels(replayed)
    np.testing.assert_allclose(binned.kinematics, expected, atol=1e-6)


def test_task_labels_without_a_task_stream_name_the_session_and_what_it_has():
    session = make_session()
    with pytest.raises(
        FeaturizeError, match=r"session 'T-d01': labels 'cue' come from a recorded cursor task"
    ):
        featurize(session, make_profile(8), labels="cue", progress=False)
    with pytest.raises(
        FeaturizeError,
        match=r"it has none; its streams: spikes \(spikes\), lfp \(lfp\), behavior \(kinematics\)",
    ):
        featurize(session, make_profile(8), labels="refit", progress=False)
    with pytest.raises(FeaturizeError, match="labels must be one of hand, cue, refit, got 'hnad'"):
        featurize(session, make_profile(8), labels="hnad", progress=False)


def test_task_labels_need_a_profile_that_decodes_velocity(tmp_path):
    from rtbci.profile import profile_from_dict

    session, _, _ = _session_with_task(tmp_path)
    profile = make_profile(8)
    data = {
        "rig": {"name": "test", "subject": "T"},
        "streams": {
            "spikes": {"name": "s", "channels": 8, "rate": 1000.0},
            "lfp": {"name": "l", "channels": 8, "rate": 1000.0},
            "output": {"name": "o", "channels": 2, "rate": 50.0},
        },
        "output": {"kinematics": ["vel_x", "pos_x"]},
    }
    positions = profile_from_dict(data, profile.path)
    with pytest.raises(
        FeaturizeError, match=r"give the task's velocity \(vel_x, vel_y\), but the profile decodes 'pos_x'"
    ):
        featurize(session, positions, labels="cue", progress=False)


def test_hand_labels_ignore_the_task_stream(tmp_path):
    """A session with both: ``hand`` (the default) still reads the kinematics at the profile's lag."""
    session = make_session()
    task_session, _, _ = _session_with_task(tmp_path)
    session.add(task_session.streams["task"])
    hand = featurize(session, make_profile(8), progress=False)
    assert len(hand) == 144
    behavior = session.streams["behavior"]
    np.testing.assert_allclose(
        hand.kinematics[:, 0],
        np.interp(hand.bin_ends + 0.1, behavior.timestamps, behavior.data[:, 2]),
        atol=1e-6,
    )
