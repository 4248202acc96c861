"""The simulated participant in closed loop through the real engine and LSL, in lockstep."""

import threading
import tomllib
from pathlib import Path

import pytest

from rtbci.cli import main

PROFILES = Path(__file__).resolve().parents[1] / "profiles"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--closed-loop"], "add --lsl --profile PROFILE"),
        (["--lsl", "--lockstep", "--profile", str(PROFILES / "demo.toml")], "add --closed-loop"),
    ],
)
def test_closed_loop_flags_need_their_partners(arguments, message, capsys):
    assert main(["simulate", *arguments]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rtbci simulate: error: ") and message in err


@pytest.mark.slow
def test_a_lockstep_loop_waits_for_every_decoded_bin(tmp_path):
    from rtbci.demo import private_copy, write_profile
    from rtbci.engine import Engine
    from rtbci.profile import load_profile
    from rtbci.sim.closed_loop import ClosedLoopSource
    from rtbci.task.publisher import TaskPublisher

    # The engine decodes a bin late, with stand-ins, once its inputs' clock passes the bin's deadline;
    # in lockstep the next bin only comes after the round trip, so the deadline must outlast it.
    path = private_copy(PROFILES / "demo.toml", tmp_path)
    data = tomllib.loads(path.read_text())
    data["engine"]["late_deadline_ms"] = 5000.0
    profile = load_profile(write_profile(data, path))
    stop = threading.Event()
    done: dict = {}
    # Generous waits: the machine running the tests may be busy.
    source = ClosedLoopSource(profile, session=1, lockstep=True, answer_timeout_s=3.0)
    with TaskPublisher(profile) as publisher:
        loop = threading.Thread(target=lambda: done.update(source=source.run(stop, seconds=10.0)))
        loop.start()
        engine = Engine.from_profile(profile)
        engine.start()
        task = threading.Thread(target=lambda: done.update(task=publisher.run(stop, wait_s=30.0)))
        task.start()
        try:
            loop.join(timeout=180.0)
        finally:
            stop.set()
            loop.join(timeout=10.0)
            task.join(timeout=10.0)
            engine.stop()
    stats, run = done["source"], done["task"]
    assert stats.bins == 500 and stats.stream_seconds == pytest.approx(10.0)
    # Each bin waited for the task frame of the one before; only the engine's first bins may not answer.
    assert stats.stalls <= 3, stats
    assert stats.bins - 3 <= stats.answers <= stats.bins, "one decoded bin for every bin, no late stand-ins"
    assert stats.answers <= run.bins <= stats.answers + 1, (
        "the last bin's answer may come after the source ends"
    )
    assert stats.seconds < 120.0
