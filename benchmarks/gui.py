"""GUI A/B: decoder latency with the dashboard off and on (offscreen Qt), and the dashboard's frame rate.

The engine always runs in its own process. In "off" blocks nothing reads it but this
benchmark, every 200 ms; in "on" blocks the full dashboard runs on it, redrawing at
~30 Hz. Blocks alternate (off, on, off, on, ...) on one simulated rig, so slow drifts
in the machine's load fall on both conditions alike. Latency comes from every bin's
own timestamps. The headline keys (``p99_gui_off_ms``, ``p99_gui_on_ms``) are the
decoder's p99 (backend step and post-processing); end-to-end p99s (push minus the
LSL time of the bin's last input sample) are reported beside them.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from rtbci.demo import DEMO_PROFILE, SimulatedRig, best_backend, compact_timing, private_copy
from rtbci.engine.engine import EngineOptions
from rtbci.engine.process import EngineProcess
from rtbci.engine.shared_ring import SharedRecordReader
from rtbci.engine.status import record_latencies
from rtbci.profile import load_profile
from rtbci.timing import latency_summary_ms

_READ_EVERY_S = 0.2
_GOAL_MS = 0.5
# Bins decoded while a block settles in (right after the engine starts) are left out.
_SETTLE_S = 2.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile", type=Path, default=DEMO_PROFILE, help="simulated-rig profile with a model"
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds measured per block (default 20)")
    parser.add_argument("--pairs", type=int, default=2, help="off/on block pairs (default 2)")
    parser.add_argument(
        "--backend", choices=["onnxruntime", "torch", "tensorrt"], help="default: best available"
    )


def _block_off(profile: Path, options: EngineOptions, seconds: float, launcher) -> np.ndarray:
    engine = EngineProcess(profile, options)
    launcher.launch(engine)  # at normal priority, as the dashboard launches its engines
    if engine.poll_started(timeout=120.0) is None:
        raise RuntimeError("the engine did not start within 120 s")
    try:
        time.sleep(_SETTLE_S)
        engine.records.read_new()
        kept = []
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            time.sleep(_READ_EVERY_S)
            kept.append(compact_timing(engine.records.read_new()))
    finally:
        engine.stop()
    return np.concatenate(kept)


def _block_on(profile: Path, backend: str, seconds: float) -> tuple[np.ndarray, float]:
    from PySide6 import QtCore

    from apps.decoder.launch import application
    from apps.decoder.main_window import DecoderWindow, EngineState

    app = application()
    window = DecoderWindow([profile], backend=backend)
    window.show()
    window.connect_engine()
    loop = QtCore.QEventLoop()
    wait = QtCore.QTimer(singleShot=True)
    try:
        while window.state is not EngineState.RUNNING:
            if window.errors:
                raise RuntimeError(window.errors[0])
            app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
            time.sleep(0.01)
        wait.timeout.connect(loop.quit)
        wait.start(int(_SETTLE_S * 1000))
        loop.exec()
        description = window.feed.description
        # A second, independent reader of the same ring: the dashboard's own reader is untouched.
        reader = SharedRecordReader(description.ring_name, description.ring_dtype, description.ring_capacity)
        reader.cursor = reader.written
        kept = []
        poll = QtCore.QTimer()
        poll.timeout.connect(lambda: kept.append(compact_timing(reader.read_new())))
        poll.start(int(_READ_EVERY_S * 1000))
        frames = window.frames
        started = time.monotonic()
        wait.start(int(seconds * 1000))
        loop.exec()
        poll.stop()
        kept.append(compact_timing(reader.read_new()))
        fps = (window.frames - frames) / (time.monotonic() - started)
        reader.close(unlink=False)  # the engine's owner (the window) removes the segment
    finally:
        window.close()
    return np.concatenate(kept), fps


def _summaries(timing: np.ndarray) -> tuple[dict, dict]:
    """(processing, decoder) latency summaries: the GUI's cost shows in what rtbci controls."""
    latencies = record_latencies(timing)
    return latency_summary_ms(latencies.processing), latency_summary_ms(latencies.decoder)


def run(args: argparse.Namespace) -> dict:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from apps.decoder.priority import EngineLauncher

    backend = args.backend or best_backend()
    launcher = EngineLauncher()  # made before any dashboard lowers this thread's priority
    options = EngineOptions(backend=backend)
    blocks: dict[str, list[np.ndarray]] = {"off": [], "on": []}
    fps = []
    with tempfile.TemporaryDirectory(prefix="rtbci-bench-gui-") as folder:
        profile = private_copy(args.profile, Path(folder))
        with SimulatedRig(load_profile(profile)):
            for _ in range(args.pairs):
                blocks["off"].append(_block_off(profile, options, args.seconds, launcher))
                timing, block_fps = _block_on(profile, backend, args.seconds)
                blocks["on"].append(timing)
                fps.append(block_fps)
    off_processing, off_decoder = _summaries(np.concatenate(blocks["off"]))
    on_processing, on_decoder = _summaries(np.concatenate(blocks["on"]))
    difference = on_decoder["p99_ms"] - off_decoder["p99_ms"]
    processing_difference = on_processing["p99_ms"] - off_processing["p99_ms"]
    return {
        "p99_gui_off_ms": off_decoder["p99_ms"],
        "p99_gui_on_ms": on_decoder["p99_ms"],
        "p99_difference_ms": difference,
        "goal_ms": _GOAL_MS,
        "goal_met": bool(abs(difference) <= _GOAL_MS),
        "gui_fps": float(np.mean(fps)),
        "gui_fps_per_block": fps,
        "processing_p99_gui_off_ms": off_processing["p99_ms"],
        "processing_p99_gui_on_ms": on_processing["p99_ms"],
        "processing_p99_difference_ms": processing_difference,
        "processing_goal_met": bool(abs(processing_difference) <= _GOAL_MS),
        "decoder_gui_off": off_decoder,
        "decoder_gui_on": on_decoder,
        "processing_gui_off": off_processing,
        "processing_gui_on": on_processing,
        "blocks": {"pairs": args.pairs, "seconds_each": args.seconds, "order": "off, on, off, on, ..."},
        "backend": backend,
        "profile": str(args.profile),
        "note": "p99_gui_*_ms: decoder latency (backend step + post-processing, per bin, from the records); "
        "processing_*: push minus the read of the chunk that completed the bin, which also carries "
        "every other process's load on this machine",
    }
