"""A recorder killed with SIGKILL leaves a file that opens and holds everything up to its last flush."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rtbci.io.store import read_session
from rtbci.io.summary import summarize_session

CHILD = Path(__file__).with_name("io_recording_child.py")
sys.path.insert(0, str(CHILD.parent))
import io_recording_child as child  # noqa: E402

KILL_AFTER_SAMPLES = 2500  # 2.5 s of recording: at least two flushes


def _complete_counts(text: str) -> list[int]:
    """Sample counts from the child's lines; a line cut off by the kill is ignored."""
    return [int(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]


@pytest.mark.slow
def test_kill_9_keeps_everything_up_to_the_last_flush(tmp_path):
    path = tmp_path / "recording.h5"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, str(CHILD), str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    appended = 0
    try:
        for line in process.stdout:
            appended = int(line)
            if appended >= KILL_AFTER_SAMPLES:
                break
        else:
            pytest.fail(f"recorder exited early: {process.wait()} {process.stderr.read()}")
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL
    # Lines written before the kill that we had not read yet.
    appended = max([appended, *_complete_counts(process.stdout.read())])
    process.stdout.close()
    process.stderr.close()

    session = read_session(path)
    summary = summarize_session(path)  # what `rtbci info` shows of a recovered recording
    assert {s["name"]: s["samples"] for s in summary["streams"]} == {
        name: stream.n_samples for name, stream in session.streams.items()
    }

    assert session.meta.provenance["test"] == "kill -9"
    assert "recovered" in session.meta.provenance
    for name, expected in (("spikes", child.spikes), ("lfp", child.lfp)):
        stream = session.streams[name]
        n = stream.n_samples
        # Flushes come at least once a second: at most ~1 s (plus the chunk being written) is lost,
        # and nothing beyond what was appended (plus the chunk appended as the kill came) appears.
        lost = appended - n
        assert -child.CHUNK <= lost <= child.RATE * child.FLUSH_INTERVAL_S + 2 * child.CHUNK, (
            name,
            n,
            appended,
        )
        assert n > 0
        index = np.arange(n)
        assert stream.data.dtype == expected(index).dtype
        np.testing.assert_array_equal(stream.data, expected(index))
        np.testing.assert_array_equal(stream.timestamps, index / child.RATE)
        if stream.chunk_sizes is not None:
            assert set(stream.chunk_sizes.tolist()) == {child.CHUNK}
    markers = session.streams["markers"]
    chunks = np.arange(0, appended // child.CHUNK + 1, child.MARKER_EVERY)
    assert 0 < markers.n_samples <= len(chunks)
    assert markers.data[:, 0].tolist() == [child.marker(c) for c in chunks[: markers.n_samples]]
    np.testing.assert_array_equal(markers.timestamps, chunks[: markers.n_samples] * child.CHUNK / child.RATE)
