"""Features: streaming featurizer speed and per-chunk latency, against scipy sosfilt per chunk.

A synthetic rig (by default 256 LFP channels at 2 kHz and 256 spike channels
at 1 kHz) is fed in 20 ms chunks, one thread, through :class:`LfpFeaturizer`
and :class:`SpikeBinner`, timing every chunk. The baseline in the same process
computes the same features the straightforward way: ``scipy.signal.sosfilt``
with carried ``zi`` per chunk, then numpy means. Reported:

- ``realtime_factor``: seconds of signal per second of processing;
- ``scipy_ratio``: our realtime factor over the baseline's;
- ``realtime_factor_at_p50`` and ``scipy_ratio_at_p50``: the same from median
  chunk times, and ``realtime_factor_cpu`` from this thread's CPU time: both
  are disturbed less by other processes on a shared machine;
- ``per_chunk_p50_us`` .. ``per_chunk_max_us``: time to process one chunk of both streams,
  fed back to back; ``paced_per_chunk`` the same with chunks fed at the rig's
  pace (one per 20 ms), as the engine sees them;
- ``chunk_invariance_max_abs_err``: largest difference between the chunked
  passes (20 ms chunks, and random chunks of 1..500 samples) and a one-shot pass;
- ``scipy_max_abs_diff``: largest difference between our features and the baseline's.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import signal
from tqdm.auto import tqdm

from rtbci.profile import FeatureConfig
from rtbci.signal import Bins, LfpFeaturizer, SpikeBinner, design_filter_bank
from rtbci.signal.kernels import POWER_FLOOR
from rtbci.timing import latency_summary_ms

GOALS = {"realtime_factor": 500.0, "per_chunk_p99_us": 150.0, "scipy_ratio": 5.0}
START_TIME = 1000.0  # LSL time of the first sample; bins are aligned to it


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=30.0, help="signal fed to our featurizers")
    parser.add_argument(
        "--baseline-seconds", type=float, default=10.0, help="signal fed to the scipy baseline"
    )
    parser.add_argument("--lfp-channels", type=int, default=256)
    parser.add_argument("--lfp-rate", type=float, default=2000.0)
    parser.add_argument("--spike-channels", type=int, default=256)
    parser.add_argument("--spike-rate", type=float, default=1000.0)
    parser.add_argument("--chunk-ms", type=float, default=20.0, help="chunk length (also the bin width)")
    parser.add_argument(
        "--paced-seconds",
        type=float,
        default=10.0,
        help="signal fed again at the rig's pace (one chunk per chunk-ms) for per-chunk latency; 0 skips",
    )
    parser.add_argument("--precision", choices=["float32", "float64"], default="float32")
    parser.add_argument("--seed", type=int, default=0)


class ScipyBaseline:
    """The same features, computed per chunk with scipy.signal.sosfilt and numpy (one chunk = one bin)."""

    def __init__(self, n_channels: int, rate: float, features: FeatureConfig) -> None:
        bank = design_filter_bank(rate, features)
        self.filters = [bank.notch, bank.lmp, *bank.bands]
        self.states = [np.zeros((len(sos), 2, n_channels)) for sos in self.filters]

    def lfp(self, chunk: np.ndarray) -> np.ndarray:
        notch, lmp, *bands = self.filters
        notched, self.states[0] = signal.sosfilt(notch, chunk, axis=0, zi=self.states[0])
        low, self.states[1] = signal.sosfilt(lmp, notched, axis=0, zi=self.states[1])
        features = [low.mean(axis=0)]
        for k, band in enumerate(bands):
            out, self.states[2 + k] = signal.sosfilt(band, notched, axis=0, zi=self.states[2 + k])
            features.append(np.log((out**2).mean(axis=0) + POWER_FLOOR))
        return np.stack(features, axis=-1).astype(np.float32)

    @staticmethod
    def spikes(chunk: np.ndarray) -> np.ndarray:
        return chunk.sum(axis=0, dtype=np.float32)


def make_signals(args: argparse.Namespace, seconds: float) -> dict[str, np.ndarray]:
    """Float32 LFP (noise, mains hum, beta bursts) and uint8 spike counts with their timestamps."""
    rng = np.random.default_rng(args.seed)
    n_lfp = round(seconds * args.lfp_rate)
    n_spikes = round(seconds * args.spike_rate)
    t = np.arange(n_lfp) / args.lfp_rate
    bursts = (np.sin(2 * np.pi * 0.7 * t) > 0.3) * np.sin(2 * np.pi * 20.0 * t)
    lfp = rng.standard_normal((n_lfp, args.lfp_channels), dtype=np.float32) * 30.0
    lfp += (80.0 * np.sin(2 * np.pi * 60.0 * t) + 60.0 * bursts).astype(np.float32)[:, None]
    return {
        "lfp": lfp,
        "lfp_times": START_TIME + t,
        "spikes": rng.poisson(0.03, (n_spikes, args.spike_channels)).astype(np.uint8),
        "spikes_times": START_TIME + np.arange(n_spikes) / args.spike_rate,
    }


def make_featurizers(args: argparse.Namespace) -> tuple[LfpFeaturizer, SpikeBinner]:
    bin_s = args.chunk_ms / 1000.0
    lfp = LfpFeaturizer(
        args.lfp_channels, args.lfp_rate, bin_s, FeatureConfig(), epoch=START_TIME, precision=args.precision
    )
    return lfp, SpikeBinner(args.spike_channels, args.spike_rate, bin_s, epoch=START_TIME)


def chunk_bounds(n_samples: int, size: int) -> list[tuple[int, int]]:
    return [(start, min(start + size, n_samples)) for start in range(0, n_samples, size)]


def time_chunks(process, n_chunks: int, desc: str, pace_s: float = 0.0) -> tuple[np.ndarray, float]:
    """Call ``process(i)`` for every chunk; return each call's wall seconds, and the loop's CPU seconds.

    CPU time of this thread leaves out the time other processes held the core.
    With ``pace_s`` > 0, chunk ``i`` is processed no earlier than ``i * pace_s``
    after the first, as chunks arrive from a rig.
    """
    seconds = np.zeros(n_chunks)
    cpu_start = time.thread_time()
    first = time.perf_counter()
    for i in tqdm(range(n_chunks), desc=desc, unit="chunk", mininterval=1.0, leave=False):
        wait = first + i * pace_s - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        start = time.perf_counter()
        process(i)
        seconds[i] = time.perf_counter() - start
    return seconds, time.thread_time() - cpu_start


def run_ours(
    args: argparse.Namespace, data: dict[str, np.ndarray], pace_s: float = 0.0
) -> tuple[np.ndarray, float, Bins, Bins]:
    lfp, spikes = make_featurizers(args)
    lfp_chunks = chunk_bounds(len(data["lfp"]), round(args.chunk_ms * args.lfp_rate / 1000))
    spike_chunks = chunk_bounds(len(data["spikes"]), round(args.chunk_ms * args.spike_rate / 1000))
    lfp_out: list[Bins] = []
    spike_out: list[Bins] = []

    def process(i: int) -> None:
        a, b = lfp_chunks[i]
        lfp_out.append(lfp.push(data["lfp"][a:b], data["lfp_times"][a:b]))
        a, b = spike_chunks[i]
        spike_out.append(spikes.push(data["spikes"][a:b], data["spikes_times"][a:b]))

    desc = "featurizers, paced" if pace_s else "featurizers"
    seconds, cpu_seconds = time_chunks(process, len(lfp_chunks), desc, pace_s)
    return (
        seconds,
        cpu_seconds,
        Bins.concatenate(lfp_out, lfp.value_shape),
        Bins.concatenate(spike_out, spikes.value_shape),
    )


def run_baseline(
    args: argparse.Namespace, data: dict[str, np.ndarray]
) -> tuple[np.ndarray, float, np.ndarray]:
    baseline = ScipyBaseline(args.lfp_channels, args.lfp_rate, FeatureConfig())
    lfp_chunks = chunk_bounds(len(data["lfp"]), round(args.chunk_ms * args.lfp_rate / 1000))
    spike_chunks = chunk_bounds(len(data["spikes"]), round(args.chunk_ms * args.spike_rate / 1000))
    features = []

    def process(i: int) -> None:
        a, b = lfp_chunks[i]
        features.append(baseline.lfp(data["lfp"][a:b]))
        a, b = spike_chunks[i]
        baseline.spikes(data["spikes"][a:b])

    seconds, cpu_seconds = time_chunks(process, len(lfp_chunks), "scipy baseline")
    return seconds, cpu_seconds, np.stack(features)


def invariance_error(
    args: argparse.Namespace, data: dict[str, np.ndarray], chunked: tuple[Bins, Bins]
) -> float:
    """Largest difference from a one-shot pass, for the 20 ms chunking and a random one (1..500)."""
    rng = np.random.default_rng(args.seed + 1)
    worst = 0.0
    for key, index in (("lfp", 0), ("spikes", 1)):
        one_shot = make_featurizers(args)[index].push(data[key], data[f"{key}_times"])
        random_pass = make_featurizers(args)[index]
        parts, start = [], 0
        while start < len(data[key]):
            stop = start + int(rng.integers(1, 501))
            parts.append(random_pass.push(data[key][start:stop], data[f"{key}_times"][start:stop]))
            start = stop
        randomly = Bins.concatenate(parts, random_pass.value_shape)
        for other in (chunked[index], randomly):
            if not np.array_equal(other.index, one_shot.index):
                return float("inf")
            worst = max(worst, float(np.abs(other.values - one_shot.values).max()))
    return worst


def run(args: argparse.Namespace) -> dict:
    # Warm-up: compile (or load) the numba kernels outside the timed passes.
    warm = make_signals(args, 0.2)
    run_ours(args, warm)
    run_baseline(args, warm)

    data = make_signals(args, args.seconds)
    seconds, cpu_seconds, lfp_bins, spike_bins = run_ours(args, data)
    baseline_data = make_signals(args, args.baseline_seconds)
    baseline_seconds, baseline_cpu_seconds, baseline_features = run_baseline(args, baseline_data)

    # Same features as the baseline on the baseline's signal (our float32 vs scipy's float64).
    reference_lfp = run_ours(args, baseline_data)[2].values
    k = min(len(reference_lfp), len(baseline_features))
    scipy_diff = float(np.abs(reference_lfp[:k] - baseline_features[:k]).max())

    realtime = float(args.seconds / seconds.sum())
    baseline_realtime = float(args.baseline_seconds / baseline_seconds.sum())
    summary = latency_summary_ms(seconds)
    paced = None
    if args.paced_seconds > 0:
        paced_seconds = run_ours(args, make_signals(args, args.paced_seconds), args.chunk_ms / 1e3)[0]
        paced = latency_summary_ms(paced_seconds)
    baseline_summary = latency_summary_ms(baseline_seconds)
    result = {
        "realtime_factor": realtime,
        "scipy_realtime_factor": baseline_realtime,
        "scipy_ratio": realtime / baseline_realtime,
        # The same at the median chunk: robust to other processes preempting this one.
        "realtime_factor_at_p50": args.chunk_ms / summary["p50_ms"],
        "realtime_factor_cpu": args.seconds / cpu_seconds,
        "scipy_realtime_factor_cpu": args.baseline_seconds / baseline_cpu_seconds,
        "scipy_ratio_at_p50": baseline_summary["p50_ms"] / summary["p50_ms"],
        "per_chunk_p50_us": summary["p50_ms"] * 1e3,
        "per_chunk_p99_us": summary["p99_ms"] * 1e3,
        "per_chunk_p999_us": summary["p999_ms"] * 1e3,
        "per_chunk_max_us": summary["max_ms"] * 1e3,
        "per_chunk": summary,
        "scipy_per_chunk": baseline_summary,
        "paced_per_chunk_p99_us": paced["p99_ms"] * 1e3 if paced else None,
        "paced_per_chunk": paced,
        "chunk_invariance_max_abs_err": invariance_error(args, data, (lfp_bins, spike_bins)),
        "scipy_max_abs_diff": scipy_diff,
        "bins": len(lfp_bins),
        "setup": {
            "seconds": args.seconds,
            "baseline_seconds": args.baseline_seconds,
            "lfp_channels": args.lfp_channels,
            "lfp_rate": args.lfp_rate,
            "spike_channels": args.spike_channels,
            "spike_rate": args.spike_rate,
            "chunk_ms": args.chunk_ms,
            "precision": args.precision,
            "features": lfp_bins.values.shape[2],
            "biquads_per_sample": make_featurizers(args)[0].filter_bank.n_sections,
            "threads": 1,
        },
    }
    result["goals_met"] = {
        "realtime_factor>=500": bool(realtime >= GOALS["realtime_factor"]),
        "per_chunk_p99_us<150": bool(result["per_chunk_p99_us"] < GOALS["per_chunk_p99_us"]),
        "scipy_ratio>=5": bool(result["scipy_ratio"] >= GOALS["scipy_ratio"]),
    }
    return result
