"""``rtbci task`` over LSL: a decoder's output stream in, the task stream and its markers out."""

import threading
import time
import tomllib
import uuid
from pathlib import Path

import numpy as np
import pytest

from rtbci.cli import main
from rtbci.profile import profile_from_dict
from rtbci.task import TrialState
from rtbci.task.publisher import TASK_CHANNELS, TaskPublisher, task_markers_name, task_stream_spec
from rtbci.task.stream import CUED_VELOCITY, CURSOR, DECODED_VELOCITY, STATE, TARGET

PROFILES = Path(__file__).resolve().parents[1] / "profiles"


def _profile(tmp_path: Path, **task):
    data = tomllib.loads((PROFILES / "demo.toml").read_text())
    tag = uuid.uuid4().hex[:8]
    data["rig"]["name"] = f"task-test-{tag}"
    data["streams"]["output"]["name"] = f"rtbci-decoded-{tag}"
    data["streams"]["output"]["source_id"] = f"rtbci-decoded-{tag}"
    data["task"].update(task)
    return profile_from_dict(data, tmp_path / "rig.toml")


def test_the_task_stream_is_named_after_the_rig_at_the_bin_rate(tmp_path):
    profile = _profile(tmp_path)
    spec = task_stream_spec(profile)
    assert spec.name == f"rtbci-task-{profile.rig.name}" and spec.type == "CursorTask"
    assert spec.rate == pytest.approx(50.0) and spec.channels == len(TASK_CHANNELS) == 10
    assert task_markers_name(profile) == f"{spec.name}-markers"


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (["--assist", "2"], "task.assist"),
        (["--gain", "0"], "task.gain"),
        (["--trials", "0"], "--trials"),
        (["--wait", "-1"], "--wait"),
    ],
)
def test_a_bad_override_is_one_error_naming_it(arguments, named, capsys):
    code = main(["task", "--profile", str(PROFILES / "demo.toml"), *arguments])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("rtbci task: error: ") and named in err


def _decoder_outlet(profile):
    from rtbci.lsl import require_pylsl
    from rtbci.lsl.info import make_stream_info

    pylsl = require_pylsl()
    spec = profile.streams.output
    info = make_stream_info(
        spec.name, spec.type, spec.source_id, ["vel_x", "vel_y", "pos_x", "pos_y"], "m/s", 50.0, "float32"
    )
    return pylsl, pylsl.StreamOutlet(info)


def _inlet(pylsl, name):
    (info,) = pylsl.resolve_byprop("name", name, minimum=1, timeout=10.0)
    inlet = pylsl.StreamInlet(info, max_buflen=60)
    inlet.open_stream(timeout=10.0)
    return inlet


def _drain(inlet) -> tuple[list, list]:
    """Everything the inlet holds by now (a chunk pull with a timeout would wait for a full buffer)."""
    samples, stamps = [], []
    time.sleep(0.5)
    while True:
        chunk, chunk_stamps = inlet.pull_chunk(timeout=0.0, max_samples=4096)
        if not chunk_stamps:
            return samples, stamps
        samples.extend(chunk)
        stamps.extend(chunk_stamps)


@pytest.mark.slow
@pytest.mark.parametrize(("assist", "expected_success"), [(1.0, True), (0.0, False)])
def test_the_task_runs_trials_on_the_decoded_velocity_and_publishes_them(
    tmp_path, request, assist, expected_success
):
    # A zero-velocity decoder: with full assist the cursor reaches every target by itself; without, none.
    config = {"assist": assist, "inter_trial_ms": 0.0, "timeout_s": 1.0}
    profile = _profile(tmp_path, **config)
    pylsl, outlet = _decoder_outlet(profile)
    publisher = TaskPublisher(profile)
    request.addfinalizer(publisher.close)
    stop = threading.Event()
    done: dict = {}
    thread = threading.Thread(target=lambda: done.update(run=publisher.run(stop, trials=3)), daemon=True)
    thread.start()
    task_inlet = _inlet(pylsl, task_stream_spec(profile).name)
    marker_inlet = _inlet(pylsl, task_markers_name(profile))
    assert outlet.wait_for_consumers(10.0), "the task did not connect to the decoder's output"
    # Lockstep: the next chunk only once the task has answered every bin (the inlet buffer holds 2 s).
    stamps, samples, got_stamps = [], [], []
    t0 = pylsl.local_clock()
    while thread.is_alive() and len(stamps) < 5000:
        chunk_stamps = list(t0 + 0.02 * np.arange(len(stamps), len(stamps) + 10))
        outlet.push_chunk(np.zeros((10, 4), dtype=np.float32), chunk_stamps)
        stamps.extend(chunk_stamps)
        while thread.is_alive() and len(got_stamps) < len(stamps):
            chunk, chunk_got = task_inlet.pull_chunk(timeout=0.0)
            samples.extend(chunk)
            got_stamps.extend(chunk_got)
            thread.join(timeout=0.002)
    thread.join(timeout=10.0)
    run = done["run"]
    assert len(run.results) == 3
    assert all(result.success is expected_success for result in run.results)
    rest, rest_stamps = _drain(task_inlet)
    samples = np.array(samples + rest)
    assert len(samples) == run.bins
    np.testing.assert_allclose(
        got_stamps + rest_stamps, stamps[: run.bins], atol=1e-6, err_msg="stamped with the decoded bin"
    )
    final = TrialState.SUCCESS if expected_success else TrialState.TIMEOUT
    assert list(samples[:, 4]).count(int(final)) == 3
    assert samples[-1, 5] == 3
    # The labels calibration reads back: the cue points at the target while it is shown; the
    # decoded velocity is the zero this decoder sent.
    reach = samples[:, STATE] == int(TrialState.REACH)
    toward = samples[reach, TARGET] - samples[reach, CURSOR]
    cued = samples[reach, CUED_VELOCITY]
    along = np.sum(cued * toward, axis=1)
    assert np.all(along >= 0) and np.mean(along > 0) > 0.9  # zero on the bin the target appears
    assert not np.any(samples[:, DECODED_VELOCITY])
    markers, _ = _drain(marker_inlet)
    events = [m[0] for m in markers]
    assert events[0] == "target_on trial=1"
    assert events.count(f"{final.label} trial=2") == 1
