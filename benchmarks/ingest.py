"""Per-chunk ingest cost: the engine's preallocated pull into a ring vs pylsl's pull plus an np.roll buffer.

Both read the same real LSL stream (96-channel float32 at 1 kHz, 10-sample
chunks) queued in an inlet, one chunk per call. The baseline is the pattern of
MNE-LSL's stream buffer: pylsl's ``pull_chunk`` (a fresh timestamp array per
call) followed by ``np.roll`` of a 5 s buffer and a copy of the new samples at
its end. The engine calls liblsl with pointers made once and copies the chunk
into a ring with at most two slice assignments. Allocations per chunk are
counted with tracemalloc.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
import uuid

import numpy as np

from rtbci.engine.ring import ChunkRing
from rtbci.lsl import require_pylsl
from rtbci.lsl.inlet import LslInput
from rtbci.profile import StreamSpec
from rtbci.timing import latency_summary_ms

_CHANNELS = 96
_CHUNK = 10
_BUFFER_S = 5.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--chunks", type=int, default=2000, help="chunks timed per method")


def _outlet(pylsl, name: str):
    info = pylsl.StreamInfo(name, "LFP", _CHANNELS, 1000.0, "float32", f"{name}-src")
    return pylsl.StreamOutlet(info)


def _queue_chunks(outlet, n_chunks: int) -> None:
    rng = np.random.default_rng(0)
    for _ in range(n_chunks):
        outlet.push_chunk(rng.standard_normal((_CHUNK, _CHANNELS)).astype(np.float32))


def _wait_queued(inlet, n_samples: int) -> None:
    deadline = time.monotonic() + 30.0
    while inlet.samples_available() < n_samples and time.monotonic() < deadline:
        time.sleep(0.05)


def run(args: argparse.Namespace) -> dict:
    pylsl = require_pylsl()
    name = f"ingest-{uuid.uuid4().hex[:8]}"
    outlet = _outlet(pylsl, name)
    spec = StreamSpec(channels=_CHANNELS, rate=1000.0, name=name)
    info = pylsl.resolve_byprop("name", name, timeout=10.0)[0]
    buffer_rows = int(_BUFFER_S * 1000)

    # The engine: preallocated pull, ring copy.
    engine_input = LslInput(spec, "lfp", info, max_buflen_s=int(args.chunks * _CHUNK / 1000) + 10)
    ring = ChunkRing(buffer_rows, _CHANNELS, engine_input.dtype, max_chunks=args.chunks + 1)
    _queue_chunks(outlet, args.chunks)
    _wait_queued(engine_input.inlet, args.chunks * _CHUNK)
    # The same number of samples per call as the baseline: a pull sized to one chunk.
    engine_input._all_samples.value = _CHUNK
    engine_input._all_values.value = _CHUNK * _CHANNELS
    engine_times = np.empty(args.chunks)
    tracemalloc.start()
    start_bytes = tracemalloc.get_traced_memory()[0]
    for k in range(args.chunks):
        t0 = time.perf_counter()
        n = engine_input.pull(0.0)
        ring.write(engine_input.data[:n], engine_input.timestamps[:n])
        engine_times[k] = time.perf_counter() - t0
        if ring.written_chunks - ring.read_chunks >= args.chunks:
            ring.read_chunks, ring.read_samples = ring.written_chunks, ring.written_samples
    engine_peak = tracemalloc.get_traced_memory()[1] - start_bytes
    tracemalloc.stop()

    # The baseline: pylsl pull_chunk + np.roll buffer.
    inlet = pylsl.StreamInlet(info, max_buflen=int(args.chunks * _CHUNK / 1000) + 10)
    inlet.open_stream(10.0)
    _queue_chunks(outlet, args.chunks)
    _wait_queued(inlet, args.chunks * _CHUNK)
    buffer = np.zeros((buffer_rows, _CHANNELS), np.float32)
    stamps = np.zeros(buffer_rows)
    roll_times = np.empty(args.chunks)
    tracemalloc.start()
    start_bytes = tracemalloc.get_traced_memory()[0]
    for k in range(args.chunks):
        t0 = time.perf_counter()
        data, times = inlet.pull_chunk(timeout=0.0, max_samples=_CHUNK, as_numpy=True)
        n = len(times)
        buffer = np.roll(buffer, -n, axis=0)
        stamps = np.roll(stamps, -n)
        buffer[-n:] = data
        stamps[-n:] = times
        roll_times[k] = time.perf_counter() - t0
    roll_peak = tracemalloc.get_traced_memory()[1] - start_bytes
    tracemalloc.stop()

    engine_summary = latency_summary_ms(engine_times)
    roll_summary = latency_summary_ms(roll_times)
    return {
        "chunks": args.chunks,
        "chunk_samples": _CHUNK,
        "channels": _CHANNELS,
        "buffer_s": _BUFFER_S,
        "engine_pull_ring": engine_summary,
        "pylsl_pull_np_roll": roll_summary,
        "speedup_p50": roll_summary["p50_ms"] / engine_summary["p50_ms"],
        "speedup_p99": roll_summary["p99_ms"] / engine_summary["p99_ms"],
        "engine_peak_traced_bytes": int(engine_peak),
        "baseline_peak_traced_bytes": int(roll_peak),
    }
