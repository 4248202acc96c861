"""A recorder for the kill -9 test: appends deterministic chunks in real time until killed.

Run as ``python io_recording_child.py OUT.h5``; after every appended chunk it prints
how many samples per stream it has appended so far. The test kills it with SIGKILL.
"""

from __future__ import annotations

import sys
import time

import numpy as np

RATE = 1000.0
CHUNK = 10
FLUSH_INTERVAL_S = 1.0
MARKER_EVERY = 10  # chunks


def spikes(index: np.ndarray) -> np.ndarray:
    """Counts for sample numbers ``index``: (n, 4) uint8."""
    return ((index[:, None] * np.arange(1, 5)) % 7 == 0).astype(np.uint8) * (index[:, None] % 3).astype(
        np.uint8
    )


def lfp(index: np.ndarray) -> np.ndarray:
    """Field potential for sample numbers ``index``: (n, 3) float32."""
    return (np.sin(index[:, None] / 37.0 + np.arange(3)) * 50.0).astype(np.float32)


def marker(chunk: int) -> str:
    return f"event {chunk // MARKER_EVERY}"


def record(path: str) -> None:
    from rtbci.io.session import SessionMeta
    from rtbci.io.store import SessionWriter, StreamLayout

    layouts = [
        StreamLayout("spikes", "spikes", 4, RATE, units="count", dtype=np.uint8),
        StreamLayout("lfp", "lfp", 3, RATE, units="uV"),
        StreamLayout("markers", "markers", 1, 0.0, dtype=str),
    ]
    meta = SessionMeta(subject="kill", session_id="kill-1", provenance={"test": "kill -9"})
    writer = SessionWriter(path, meta, layouts, flush_interval_s=FLUSH_INTERVAL_S)
    chunk = 0
    while True:
        index = np.arange(chunk * CHUNK, (chunk + 1) * CHUNK)
        writer.append("spikes", spikes(index), index / RATE)
        writer.append("lfp", lfp(index), index / RATE)
        if chunk % MARKER_EVERY == 0:
            writer.append("markers", np.array([[marker(chunk)]]), np.array([index[0] / RATE]))
        chunk += 1
        print(chunk * CHUNK, flush=True)
        time.sleep(CHUNK / RATE)  # real time: about one second of data per flush


if __name__ == "__main__":
    record(sys.argv[1])
