"""Engine conformance: the engine against LSL sources rtbci did not write, at many chunk sizes and stampings.

Each row starts the engine (the bundled demo decoder on ONNX Runtime, recording
to a Session file) and then outside sources (:mod:`benchmarks.outside_sources`, in a process of their own):
plain pylsl outlets stamping per sample, per chunk or at push, and MNE-LSL's
``PlayerLSL``, with chunk sizes from 1 to 200 samples, LFP at 1 or 2 kHz, and
one source pushing later than the other. The engine is started first and the
sources a moment later, as when a rig begins streaming after the decoder is
launched. A row reports bins expected and decoded, late and overdue,
processing latency (push minus the read of the completing chunk) p50/p99/
p99.9/max and source latency (push minus the bin's last sample stamp)
p50/p99, and whether the features the engine recorded equal ``featurize()``
of the raw streams it recorded.

Goals on a 2-core machine: every row decodes every bin (± 1 at the edges),
none late; processing p99 <= 2 ms and max <= 20 ms where chunks are at most a
bin long, plus one decoder step (p99) per extra bin a chunk completes;
source p50 at most the chunk's duration plus 1.5 ms (not for PlayerLSL,
whose stamps run ahead of the clock: its source latency is negative by design).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tomllib
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from benchmarks.outside_sources import OutsideStream, SourceProcess
from rtbci.engine import Engine, EngineOptions
from rtbci.engine.status import record_latencies
from rtbci.io.session import Stream, StreamKind
from rtbci.io.store import read_session
from rtbci.latency.summary import bin_accounting
from rtbci.profile import Profile, load_profile, profile_from_dict
from rtbci.signal import featurize
from rtbci.timing import latency_summary_ms

DEMO_PROFILE = Path(__file__).resolve().parents[1] / "profiles" / "demo.toml"
SPIKE_RATE = 1000.0
# Lets the engine warm up before the sources start, as a rig that starts after the decoder.
_SOURCE_START_DELAY_S = 1.0
# Seconds the player streams before the engine serves (resolving, loading and warming up the decoder).
_PLAYER_LEAD_S = 5.0
_PROCESSING_P99_GOAL_MS = 2.0
_PROCESSING_MAX_GOAL_MS = 20.0
_SOURCE_P50_MARGIN_MS = 1.5
_FEATURE_TOLERANCE = 1e-5


@dataclass(frozen=True)
class ConformanceCase:
    """One row: which source, how it chunks and stamps, and how fast the LFP is.

    Attributes
    ----------
    source
        ``"pylsl"`` or ``"player"`` (MNE-LSL's PlayerLSL).
    spike_chunk, lfp_chunk
        Samples per chunk of each stream.
    stamping
        Plain pylsl only: ``"sample"``, ``"chunk"`` or ``"push"``.
    lfp_rate
        LFP sampling rate (spikes are at 1 kHz).
    lfp_delay_ms
        The LFP outlet pushes this much later than the spike outlet, for the same samples.
    """

    source: str = "pylsl"
    spike_chunk: int = 10
    lfp_chunk: int = 10
    stamping: str = "sample"
    lfp_rate: float = 1000.0
    lfp_delay_ms: float = 0.0

    @property
    def label(self) -> str:
        """A short name for the row."""
        text = f"{self.source} spikes/{self.spike_chunk} lfp/{self.lfp_chunk}@{self.lfp_rate / 1000:g}kHz"
        if self.source == "pylsl":
            text += f" stamp={self.stamping}"
        if self.lfp_delay_ms:
            text += f" lfp+{self.lfp_delay_ms:g}ms"
        return text


def case_profile(case: ConformanceCase, folder: Path) -> Profile:
    """The demo profile (and its bundled decoder) under unique stream names, with the case's LFP rate."""
    data = tomllib.loads(DEMO_PROFILE.read_text())
    tag = f"conf-{uuid.uuid4().hex[:8]}"
    for role in ("spikes", "lfp", "behavior", "output"):
        spec = data["streams"][role]
        spec["name"] = f"{tag}-{role}"
        spec["source_id"] = f"{tag}-{role}-src"
        if case.source == "player" and role in ("spikes", "lfp"):
            spec["type"] = "misc"  # the player announces MNE's channel type
    data["streams"]["lfp"]["rate"] = case.lfp_rate
    data["model"]["artifact"] = str(load_profile(DEMO_PROFILE).artifact_dir())
    return profile_from_dict(data, folder / "profile.toml")


def case_streams(case: ConformanceCase, profile: Profile) -> list[OutsideStream]:
    """The profile's spike and LFP streams as the case's outside source announces, chunks and stamps them."""
    spikes, lfp = profile.streams.spikes, profile.streams.lfp
    return [
        OutsideStream(
            spikes.name, spikes.type, spikes.source_id, spikes.channels, spikes.rate,
            case.spike_chunk, case.stamping, counts=True,
        ),
        OutsideStream(
            lfp.name, lfp.type, lfp.source_id, lfp.channels, lfp.rate,
            case.lfp_chunk, case.stamping, delay_s=case.lfp_delay_ms / 1000.0,
        ),
    ]  # fmt: skip


def _sources(
    case: ConformanceCase, streams: list[OutsideStream], seconds: float, seed: int, priority: int | None
) -> SourceProcess:
    # The player streams from the moment it starts, before the engine: give it that much more.
    seconds += _PLAYER_LEAD_S if case.source == "player" else 0.0
    return SourceProcess(case.source, streams, seconds, seed, priority)


def _features_match(recording: Path, profile: Profile) -> dict:
    """Compare the features the engine recorded with ``featurize()`` of the raw streams it recorded."""
    session = read_session(recording)
    timing = session.streams["timing"]
    raw = [session.streams[role] for role in ("spikes", "lfp")]
    # featurize() samples kinematics at each bin; the engine records none, so give it a flat stand-in
    # that covers the recording (the kinematics are not what is compared).
    start = min(float(stream.timestamps[0]) for stream in raw)
    stop = max(float(stream.timestamps[-1]) for stream in raw) + 1.0
    kinematics = list(profile.output.kinematics)
    flat = np.zeros((2, len(kinematics)), np.float32)
    session.add(Stream("stand-in", StreamKind.KINEMATICS, flat, np.array([start, stop]), 0.0, kinematics, ""))
    offline = featurize(session, profile, lag_ms=0.0, progress=False)
    index = timing.data[:, timing.channel_labels.index("index")].astype(np.int64)
    late = timing.data[:, timing.channel_labels.index("late_mask")] > 0
    complete = np.flatnonzero(~late)  # a late bin's features were stood in for: not compared
    common, kept_rows, offline_rows = np.intersect1d(index[complete], offline.bin_index, return_indices=True)
    online_rows = complete[kept_rows]
    online = session.streams["features"].data[online_rows].reshape(len(common), *offline.lfp.shape[1:])
    per_bin = np.abs(online - offline.lfp[offline_rows]).reshape(len(common), -1).max(axis=1)
    difference = float(per_bin.max()) if len(common) else float("nan")
    differing = np.flatnonzero(per_bin > _FEATURE_TOLERANCE)
    return {
        "offline_bins": offline.bin_index,
        "bins_compared": len(common),
        "max_abs_feature_difference": difference,
        # (bin number counted from the first offline bin, largest difference) of the first few that differ
        "bins_differing": [(int(common[i] - offline.bin_index[0]), float(per_bin[i])) for i in differing[:5]],
        "bin_epoch": session.meta.bin_epoch,
    }


def run_case(
    case: ConformanceCase, seconds: float, folder: Path, seed: int = 0, realtime_priority: int | None = None
) -> dict:
    """Run the engine against one case's outside sources; returns the row's figures.

    Plain pylsl outlets are announced first, the engine started, and the
    outlets begin pushing a second later (a rig that starts after the
    decoder). The player announces and streams at once, so it starts first
    and the engine meets a source that is already running.

    Parameters
    ----------
    case
        Which source and how it chunks and stamps.
    seconds
        Seconds of data the sources push.
    folder
        Where the recording goes.
    seed
        Seed of the pushed samples.
    realtime_priority
        SCHED_FIFO priority of the decode thread (see ``EngineOptions``) and of the source process;
        None keeps the default policy.
    """
    import pylsl

    profile = case_profile(case, folder)
    streams = case_streams(case, profile)
    recording = folder / f"recording-{uuid.uuid4().hex[:6]}.h5"
    sources = _sources(case, streams, seconds, seed, realtime_priority)
    engine = Engine.from_profile(
        profile, EngineOptions(record=recording, realtime_priority=realtime_priority)
    )
    try:
        if case.source == "player":
            sources.start_at(0.0)
            data_ends = time.monotonic() + seconds + _PLAYER_LEAD_S
        engine.start()
        if case.source == "pylsl":
            sources.start_at(pylsl.local_clock() + _SOURCE_START_DELAY_S)
            data_ends = time.monotonic() + _SOURCE_START_DELAY_S + seconds
        # Serve until the sources' data has ended: the engine decodes every bin of what it recorded.
        while time.monotonic() < data_ends + 0.5:
            time.sleep(0.05)
            engine.check_alive()
    finally:
        # Inlets first: an outlet that vanishes under an open inlet makes liblsl log an error.
        report = engine.stop()
        sources.close()
    # Read after the stop, so that the records cover what the recording covers (a player may still
    # have been streaming).
    records = engine.records.last(engine.records.capacity)
    match = _features_match(recording, profile)
    return _row(case, records, report, match, profile.bin_s)


def _step_p99_ms(records: np.ndarray) -> float:
    return float(np.percentile(record_latencies(records).decoder, 99) * 1e3)


def _row(case: ConformanceCase, records: np.ndarray, report: dict, match: dict, bin_s: float) -> dict:
    offline = match.pop("offline_bins")
    # The bins the sources' data covers (offline featurize of the recording); the engine goes on
    # holding its output after the sources stop, and those bins are not data.
    played = records[(records["index"] >= offline.min()) & (records["index"] <= offline.max())]
    latencies = record_latencies(played)
    processing = latency_summary_ms(latencies.processing)
    source = latency_summary_ms(latencies.source) if latencies.source.size else None
    accounting = bin_accounting(played["index"])
    decoded = set(played["index"].tolist())
    chunk_s = max(case.spike_chunk / SPIKE_RATE, case.lfp_chunk / case.lfp_rate)
    extra_bins = max(0, int(np.ceil(chunk_s / bin_s - 1e-9)) - 1)
    step_p99 = _step_p99_ms(played)
    goals = {
        "every_bin": len(offline) - len(decoded & set(offline.tolist())) <= 1
        and accounting["dropped"] == 0
        and accounting["duplicated"] == 0,
        "none_late": int(np.count_nonzero(played["late_mask"])) == 0,
        "features_equal": match["max_abs_feature_difference"] <= _FEATURE_TOLERANCE,
        "processing_never_negative": float(latencies.processing.min()) >= 0.0,
        "processing_p99": processing["p99_ms"] <= _PROCESSING_P99_GOAL_MS + extra_bins * step_p99,
        "processing_max": processing["max_ms"] <= _PROCESSING_MAX_GOAL_MS + extra_bins * step_p99,
    }
    if case.source == "pylsl" and source is not None:
        goals["source_p50"] = source["p50_ms"] <= chunk_s * 1e3 + case.lfp_delay_ms + _SOURCE_P50_MARGIN_MS
    return {
        "case": case.label,
        **asdict(case),
        "bins_expected": len(offline),
        "bins_decoded": len(decoded),
        "late": int(np.count_nonzero(played["late_mask"])),
        "overdue": int(np.count_nonzero(played["flags"] & 1)),
        **accounting,
        "processing_ms": {key: processing[key] for key in ("p50_ms", "p99_ms", "p999_ms", "max_ms")},
        "source_ms": None if source is None else {key: source[key] for key in ("p50_ms", "p99_ms")},
        "decoder_step_p99_ms": step_p99,
        "bins_per_chunk_beyond_one": extra_bins,
        **match,
        "scheduling": report["scheduling"],
        "skipped_at_start": {role: health["skipped_at_start"] for role, health in report["inputs"].items()},
        "timestamp_warnings": [
            health["last_timestamp_warning"]
            for health in report["inputs"].values()
            if health["last_timestamp_warning"]
        ],
        "goals_met": goals,
        "all_goals_met": all(goals.values()),
    }


CHUNK_SIZES = (1, 5, 7, 10, 20, 32, 64, 100, 200)


def default_cases(quick: bool = False) -> list[ConformanceCase]:
    """The benchmark's rows: every chunk size with per-sample stamps, the other stampings, mixed chunk
    sizes, LFP at 2 kHz, a delayed source, and MNE-LSL's player."""
    sizes = (1, 10, 20, 100) if quick else CHUNK_SIZES
    cases = [ConformanceCase(spike_chunk=n, lfp_chunk=n) for n in sizes]
    cases += [ConformanceCase(spike_chunk=n, lfp_chunk=n, stamping=stamping)
              for stamping in ("chunk", "push") for n in (10, 20, 100)]  # fmt: skip
    cases += [
        ConformanceCase(spike_chunk=7, lfp_chunk=32),
        ConformanceCase(spike_chunk=20, lfp_chunk=40, lfp_rate=2000.0),
        ConformanceCase(spike_chunk=10, lfp_chunk=10, lfp_delay_ms=15.0),
    ]
    cases += [ConformanceCase(source="player", spike_chunk=n, lfp_chunk=n) for n in (10, 20, 64)]
    return cases


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of data per row (default 10)")
    parser.add_argument("--quick", action="store_true", help="fewer chunk sizes (a smoke run)")
    parser.add_argument(
        "--realtime-priority", type=int, metavar="1-99", help="run the decode thread SCHED_FIFO (needs root)"
    )


def run(args: argparse.Namespace) -> dict:
    import os

    rows = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="rtbci-bench-conformance-") as tmp:
        for case in tqdm(default_cases(args.quick), desc="conformance", unit="row"):
            rows.append(run_case(case, args.seconds, Path(tmp), realtime_priority=args.realtime_priority))
    return {
        "seconds_per_row": args.seconds,
        "realtime_priority": args.realtime_priority,
        "rows": rows,
        "all_goals_met": all(row["all_goals_met"] for row in rows),
        "rows_failing": [row["case"] for row in rows if not row["all_goals_met"]],
        "load_average_before": list(load_before),
        "load_average_after": list(os.getloadavg()),
        "cpus": os.cpu_count(),
    }
