"""The end-to-end latency test: a Session replayed in real time into the engine, in separate processes.

Two child processes talk only through real LSL on loopback: one replays the
file at speed 1, the other runs the engine with the profile's decoder. The
engine process follows its per-bin records and sends their timing back when
it stops. Two latencies are reported apart (see :mod:`rtbci.engine.status`):
processing (``t_push - t_read``: push minus the read of the chunk that
completed the bin) and source (``t_push - t_last_sample``: push minus the LSL
timestamp of the bin's newest input sample, the moment the replay made that
sample due). The figures come from :mod:`rtbci.latency.summary`.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil

from rtbci.engine.records import TIMESTAMP_FIELDS
from rtbci.errors import UserError
from rtbci.latency.summary import summarize
from rtbci.profile import load_profile
from rtbci.timing import latency_summary_ms

__all__ = ["LatencyRun", "run_latency_test"]

# Fields of the per-bin records the engine process sends back.
_KEPT_FIELDS = ("seq", "index", "end_time", *TIMESTAMP_FIELDS, "late_mask", "flags", "gap_bins")
_TAP_POLL_S = 0.2
# How long the engine may take to decode its first bin of live data before the replay speeds up anyway.
_FIRST_BIN_TIMEOUT_S = 30.0
# Often enough that a max-speed soak (an hour of data in about 30 s) still gets a series.
_RSS_EVERY_S = 1.0


@dataclass(frozen=True)
class LatencyRun:
    """One latency test.

    Attributes
    ----------
    session_file
        Session to replay.
    profile_file
        Rig profile (streams, bins, decoder).
    seconds
        Seconds of replay to measure.
    backend
        Backend name; None takes the profile's.
    backend_factory
        Instead of the profile's artifact, build the backend with this importable
        function of no arguments (tests use it before a trained model exists).
    model_input
        With ``backend_factory``: ``"lfp"`` or ``"spikes"``.
    speed
        Replay speed (None: as fast as possible). Latency only means something at 1.
    seconds_are_media
        ``seconds`` counts recorded time (a soak at high speed) instead of wall time.
    realtime_priority
        Real-time FIFO priority of the engine's decode thread (see ``EngineOptions``) and of the
        replay process.
    record
        Have the engine record to this Session file while it is measured.
    """

    session_file: Path
    profile_file: Path
    seconds: float
    backend: str | None = None
    backend_factory: Callable[[], object] | None = None
    model_input: str = "lfp"
    speed: float | None = 1.0
    seconds_are_media: bool = False
    realtime_priority: int | None = None
    record: Path | None = None


def _replay_process(run: LatencyRun, ready, engine_serving, engine_closed, done_queue) -> None:
    from rtbci.io.store import read_session
    from rtbci.replay import ReplayOptions, SessionPlayer, outlet_identities
    from rtbci.replay_follow import OutputFollower, ReplayStalledError

    scheduling = "default"
    if run.realtime_priority is not None:
        # The replay stands in for the rig, whose clock does not wait for other processes either.
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(run.realtime_priority))
            scheduling = f"SCHED_FIFO {run.realtime_priority}"
        except (OSError, AttributeError) as error:
            scheduling = f"default (real-time priority refused: {error})"
    profile = load_profile(run.profile_file)
    session = read_session(run.session_file)
    identities = outlet_identities(session, profile)
    player = SessionPlayer(session, identities)
    inputs = [stream.name for stream in session.streams.values() if stream.kind in ("spikes", "lfp")]
    ready.set()
    if not player.wait_for_consumers(60.0, inputs):
        done_queue.put({"error": "the engine never connected to the replayed streams"})
        return
    if run.seconds_are_media:
        options = ReplayOptions(speed=run.speed, loop=True, media_seconds=run.seconds, progress=False)
    else:
        options = ReplayOptions(speed=run.speed, loop=True, seconds=run.seconds, progress=False)
    # The engine needs live data to start (it places its bin grid on the samples); faster than
    # real time the whole file could be gone before it serves. Play in real time until it serves.
    realtime_until = engine_serving if run.speed != 1.0 else None
    # As fast as possible means as fast as the engine decodes: unpaced, the replay would outrun
    # the engine's small inlet buffer and most samples would be dropped before they were decoded.
    follow = OutputFollower(profile.streams.output) if run.speed is None else None
    try:
        report = player.run(options, follow=follow, realtime_until=realtime_until)
    except ReplayStalledError as error:
        done_queue.put({"error": str(error)})
        return
    done_queue.put(
        {
            "last_push": float(report.push_times[-1]) if report.push_times.size else 0.0,
            "first_push": float(report.push_times[0]) if report.push_times.size else 0.0,
            "lateness": latency_summary_ms(report.lateness_s) if report.push_times.size else None,
            "drift_ms": report.drift_s() * 1e3,
            "chunks": report.chunks,
            "scheduling": scheduling,
            "last_timestamp": report.last_timestamp,
            "follow_waits": None if follow is None else follow.waits,
            "follow_waited_s": None if follow is None else follow.waited_s,
        }
    )
    # Keep the outlets until the engine has closed its inlets: an outlet that vanishes under an open
    # inlet makes liblsl log a broken transmission at the end of a run that went well.
    engine_closed.wait(60.0)


def _engine_process(run: LatencyRun, stop, serving, closed, result_queue) -> None:
    from rtbci.engine.engine import Engine, EngineOptions

    try:
        profile = load_profile(run.profile_file)
        options = EngineOptions(
            backend=run.backend, realtime_priority=run.realtime_priority, record=run.record
        )
        if run.backend_factory is not None:
            engine = Engine(profile, run.backend_factory(), run.model_input, options)
        else:
            engine = Engine.from_profile(profile, options)
        engine.start()
        # Serving means a bin was decoded: only then is the bin grid placed on the live data, so a
        # replay that now speeds up is followed from where the engine is.
        first_bin_by = time.monotonic() + _FIRST_BIN_TIMEOUT_S
        while engine.loop.counters.decoded == 0 and time.monotonic() < first_bin_by:
            time.sleep(0.01)
        serving.set()
    except Exception as error:  # sent to the parent, which reports it
        result_queue.put({"error": f"{type(error).__name__}: {error}"})
        closed.set()
        return
    process = psutil.Process()
    # Every bin's timing, in an array sized up front, so that following the run does not grow
    # the process it measures. Filled from this (non-decode) thread; the ring holds a minute.
    capacity = (
        int(run.seconds / profile.bin_s * 1.1 / (1.0 if run.speed is None else min(run.speed, 1.0))) + 3000
    )
    record_fields = engine.records.records.dtype.fields
    kept = np.empty(capacity, dtype=[(name, record_fields[name][0]) for name in _KEPT_FIELDS])
    kept[...] = 0  # touch every page now, so that filling it later does not show as growth
    rss = [(time.monotonic(), process.memory_info().rss)]
    filled = 0
    cursor = 0
    missed_total = 0
    last_rss = time.monotonic()
    while True:
        stopping = stop.wait(_TAP_POLL_S)
        records, cursor, missed = engine.records.read_since(cursor)
        missed_total += missed
        take = min(len(records), capacity - filled)
        kept[filled : filled + take] = records[list(_KEPT_FIELDS)][:take]
        filled += take
        if time.monotonic() - last_rss >= _RSS_EVERY_S:
            last_rss = time.monotonic()
            rss.append((last_rss, process.memory_info().rss))
        if stopping:
            break
    rss.append((time.monotonic(), process.memory_info().rss))
    report = engine.stop()
    closed.set()
    for name in ("source", "processing", "decoder"):
        report.pop(f"{name}_latency_recent", None)
    result_queue.put(
        {
            "records": kept[:filled].copy(),
            "report": report,
            "backend": engine.backend.info(),
            "rss": np.array(rss),
            "tap_missed": missed_total,
        }
    )


def run_latency_test(run: LatencyRun, progress: bool = True) -> tuple[dict, np.ndarray]:
    """Replay and engine in separate processes over LSL; returns (summary JSON, per-bin records).

    Raises
    ------
    UserError
        If either process fails (the message says which and why).
    """
    from tqdm import tqdm

    context = mp.get_context("spawn")
    replay_ready = context.Event()
    stop_engine = context.Event()
    replay_done = context.Queue()
    engine_result = context.Queue()
    engine_serving = context.Event()
    engine_closed = context.Event()
    replay = context.Process(
        target=_replay_process,
        args=(run, replay_ready, engine_serving, engine_closed, replay_done),
        daemon=True,
    )
    engine = context.Process(
        target=_engine_process,
        args=(run, stop_engine, engine_serving, engine_closed, engine_result),
        daemon=True,
    )
    load_before = os.getloadavg()
    replay.start()
    if not replay_ready.wait(120.0):
        replay.terminate()
        raise UserError(f"{run.session_file}: the replay process did not start")
    engine.start()
    started = time.monotonic()
    outcome: dict = {}
    collector = threading.Thread(target=lambda: outcome.update(replay_done.get()), daemon=True)
    collector.start()
    with tqdm(
        total=None if run.seconds_are_media else round(run.seconds),
        unit="s",
        desc="replay into engine",
        disable=not progress,
        mininterval=1.0,
    ) as bar:
        while collector.is_alive() and engine.is_alive():
            collector.join(1.0)
            bar.n = round(time.monotonic() - started)
            bar.refresh()
    stop_engine.set()
    result = engine_result.get(timeout=60.0) if engine.is_alive() or not engine_result.empty() else {}
    engine.join(10.0)
    replay.join(10.0)
    for process in (engine, replay):
        if process.is_alive():
            process.terminate()
    if "error" in result:
        raise UserError(f"engine process failed: {result['error']}")
    if "error" in outcome:
        raise UserError(f"replay process failed: {outcome['error']}")
    if "records" not in result:
        raise UserError(f"engine process exited (code {engine.exitcode}) without results")
    records = result["records"]
    bin_s = load_profile(run.profile_file).bin_s
    summary = summarize(records, outcome["first_push"], outcome["last_push"], realtime=run.speed == 1.0)
    rss = result["rss"]
    summary.update(
        speed="max" if run.speed is None else run.speed,
        engine_rss_mb={
            "start": float(rss[0, 1] / 2**20),
            "end": float(rss[-1, 1] / 2**20),
            "max": float(rss[:, 1].max() / 2**20),
            "samples": len(rss),
            # (seconds since start, MB), at most 20 points, to tell a step from a slope.
            "series": [
                (round(float(t - rss[0, 0]), 1), round(float(v / 2**20), 1))
                for t, v in rss[:: max(1, len(rss) // 20)]
            ],
        },
        tap_missed_records=result["tap_missed"],
        # Whole bins of the played data after the last decoded one: none when the engine kept up
        # (the last decoded bin may end just after the last sample, which it holds).
        bins_undecoded_at_end=max(0, int((outcome["last_timestamp"] - records["end_time"][-1]) // bin_s)),
        replay={key: value for key, value in outcome.items() if key not in ("first_push", "last_push")},
        engine=result["report"],
        backend=result["backend"],
        load_average_before=list(load_before),
        load_average_after=list(os.getloadavg()),
        cpus=os.cpu_count(),
    )
    return summary, records
