"""GUI A/B: decoder and processing latency with the dashboard off and on (offscreen Qt), and its frame rate.

The engine always runs in its own process, started as the dashboard starts it (with
the decoder's priority and, where there are cores to spare, a core of its own:
:mod:`apps.decoder.priority`; ``placement`` says what applied). In "off" blocks nothing
reads it but this benchmark, every 200 ms; in "on" blocks the full dashboard runs on
it, redrawing at ~30 Hz. Blocks alternate (off, on, off, on, ...) on one simulated
rig, so slow drifts in the machine's load fall on both conditions alike. Latency
comes from every bin's own timestamps (words as in :mod:`rtbci.glossary`):

- decoder p99 (``p99_gui_off_ms``, ``p99_gui_on_ms``): backend step and
  post-processing. Goal: on minus off <= 0.3 ms.
- processing p99 (``processing_p99_gui_*_ms``): push minus the read of the chunk
  that completed the bin. Goal: on <= 1.5 x off.

``goal_met`` is both goals in the same run. The machine's load average (before and
after) and its usable cores are in the JSON, because other programs' work shows in
both figures.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from apps.decoder.priority import EngineLauncher
from rtbci.demo import DEMO_PROFILE, best_backend, compact_timing, private_copy
from rtbci.engine.engine import EngineOptions
from rtbci.engine.process import EngineProcess
from rtbci.engine.shared_ring import SharedRecordReader
from rtbci.engine.status import record_latencies
from rtbci.profile import load_profile
from rtbci.sim.rig_process import SimulatedRig
from rtbci.timing import latency_summary_ms

_READ_EVERY_S = 0.2
# Goals: decoder p99 with the GUI at most this much above without; processing p99 at most this ratio.
_DECODER_GOAL_MS = 0.3
_PROCESSING_GOAL_RATIO = 1.5
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
    parser.add_argument(
        "--tab",
        choices=["latency", "signals"],
        default="latency",
        help="the tab shown below the kinematics in 'on' blocks (default latency; signals: the channel "
        "map and traces, which are redrawn only while shown)",
    )


def _block_off(
    profile: Path, options: EngineOptions, seconds: float, launcher: EngineLauncher
) -> tuple[np.ndarray, str]:
    engine = EngineProcess(profile, options)
    launcher.launch(engine)  # with the priority and core the dashboard gives its engines
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
        scheduling = engine.status()["scheduling"]
    finally:
        engine.stop()
    return np.concatenate(kept), scheduling


def _block_on(profile: Path, backend: str, seconds: float, tab: str) -> tuple[np.ndarray, float, float, str]:
    """Per-bin timing with the dashboard on; its redraws and the signal views' redraws a second."""
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
        window.lower_tabs.setCurrentWidget(window.signals if tab == "signals" else window.latency)
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
        frames, signal_frames = window.frames, window.signals.frames
        started = time.monotonic()
        wait.start(int(seconds * 1000))
        loop.exec()
        poll.stop()
        kept.append(compact_timing(reader.read_new()))
        elapsed = time.monotonic() - started
        fps = (window.frames - frames) / elapsed
        signal_fps = (window.signals.frames - signal_frames) / elapsed
        scheduling = window.engine.status()["scheduling"]
        reader.close(unlink=False)  # the engine's owner (the window) removes the segment
    finally:
        window.close()
    return np.concatenate(kept), fps, signal_fps, scheduling


def _summaries(timing: np.ndarray) -> tuple[dict, dict]:
    """(processing, decoder) latency summaries: the GUI's cost shows in what rtbci controls."""
    latencies = record_latencies(timing)
    return latency_summary_ms(latencies.processing), latency_summary_ms(latencies.decoder)


def run(args: argparse.Namespace) -> dict:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    backend = args.backend or best_backend()
    launcher = EngineLauncher()  # as the dashboard makes its own
    load_before = os.getloadavg()
    options = EngineOptions(backend=backend, realtime_priority=launcher.placement.realtime_priority)
    blocks: dict[str, list[np.ndarray]] = {"off": [], "on": []}
    fps, signal_fps = [], []
    scheduling = set()
    with tempfile.TemporaryDirectory(prefix="rtbci-bench-gui-") as folder:
        profile = private_copy(args.profile, Path(folder))
        with SimulatedRig(load_profile(profile)):
            for _ in range(args.pairs):
                timing, off_scheduling = _block_off(profile, options, args.seconds, launcher)
                blocks["off"].append(timing)
                timing, block_fps, block_signal_fps, on_scheduling = _block_on(
                    profile, backend, args.seconds, args.tab
                )
                blocks["on"].append(timing)
                fps.append(block_fps)
                signal_fps.append(block_signal_fps)
                scheduling |= {off_scheduling, on_scheduling}
    load_after = os.getloadavg()
    off_processing, off_decoder = _summaries(np.concatenate(blocks["off"]))
    on_processing, on_decoder = _summaries(np.concatenate(blocks["on"]))
    difference = on_decoder["p99_ms"] - off_decoder["p99_ms"]
    ratio = on_processing["p99_ms"] / off_processing["p99_ms"]
    decoder_met = bool(difference <= _DECODER_GOAL_MS)
    processing_met = bool(ratio <= _PROCESSING_GOAL_RATIO)
    return {
        "p99_gui_off_ms": off_decoder["p99_ms"],
        "p99_gui_on_ms": on_decoder["p99_ms"],
        "p99_difference_ms": difference,
        "decoder_goal_ms": _DECODER_GOAL_MS,
        "decoder_goal_met": decoder_met,
        "processing_p99_gui_off_ms": off_processing["p99_ms"],
        "processing_p99_gui_on_ms": on_processing["p99_ms"],
        "processing_p99_ratio": ratio,
        "processing_goal_ratio": _PROCESSING_GOAL_RATIO,
        "processing_goal_met": processing_met,
        "goal_met": decoder_met and processing_met,
        "gui_fps": float(np.mean(fps)),
        "gui_fps_per_block": fps,
        "signals_fps_per_block": signal_fps,
        "placement": launcher.placement.describe(),
        "decode_thread_scheduling": sorted(scheduling),
        "usable_cores": len(os.sched_getaffinity(0)),
        "load_average_before": list(load_before),
        "load_average_after": list(load_after),
        "decoder_gui_off": off_decoder,
        "decoder_gui_on": on_decoder,
        "processing_gui_off": off_processing,
        "processing_gui_on": on_processing,
        "blocks": {"pairs": args.pairs, "seconds_each": args.seconds, "order": "off, on, off, on, ..."},
        "tab_shown": args.tab,
        "backend": backend,
        "profile": str(args.profile),
        "note": "p99_gui_*_ms: decoder latency (backend step + post-processing, per bin, from the records); "
        "processing_*: push minus the read of the chunk that completed the bin, which also carries "
        "every other process's load on this machine",
    }
