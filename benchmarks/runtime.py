"""Runtime latency: per-bin decode time of each backend's streaming step vs re-encoding the full window.

Every backend runs the same exported artifact of the default model (LFP, 96 channels x
5 features, patches of 32 channels -> 3 tokens per bin, d=128, 4 layers, 4 heads, a
50-bin window), one bin per step after warm-up. Two baselines run in the same process:
``torch_full_window`` re-encodes the whole 1 s window every bin in eager torch, as
published real-time transformer decoders do, and ``ort_full_window`` does the same in
ONNX Runtime. Each timed step includes everything the engine would wait for: copying
the bin in (and, for the baselines, shifting the window) and reading kinematics out.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from rtbci.models import (
    Checkpoint,
    Decoder,
    Encoder,
    EncoderConfig,
    RidgeHead,
    build_decoder,
    load_checkpoint,
)
from rtbci.models.checkpoint import save_checkpoint
from rtbci.profile import FeatureConfig
from rtbci.runtime import load_backend, read_manifest
from rtbci.runtime.backends.onnxruntime_backend import create_session
from rtbci.runtime.export import export_artifact, export_full_window, parity_inputs
from rtbci.runtime.streaming import FullWindowStep, StreamingStep
from rtbci.timing import latency_summary_ms

GOAL_ORT_P99_MS = 0.5
GOAL_ORT_MAX_MS = 5.0
GOAL_SPEEDUP = 5.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=int, default=5000, help="timed steps per backend and baseline")
    parser.add_argument("--warmup", type=int, default=200, help="untimed steps before timing")
    parser.add_argument(
        "--checkpoint",
        type=Path,
        help="decoder checkpoint to export (default: the default model, random weights)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights and inputs")


def default_checkpoint(path: Path, seed: int) -> Path:
    """The default-size LFP decoder with random weights (latency does not depend on the weights).

    Its LFP convolution is the one a profile's defaults give newly trained encoders.
    """
    torch.manual_seed(seed)
    features = FeatureConfig()
    config = EncoderConfig(
        modality="lfp",
        n_channels=96,
        n_features=5,
        lfp_conv_bins=features.lfp_conv_bins,
        lfp_conv_channels=features.lfp_conv_channels,
    )
    decoder = Decoder(Encoder(config), RidgeHead(config.d_model, 2)).eval()
    checkpoint = Checkpoint(
        encoder_config=config,
        state_dict=decoder.state_dict(),
        session_ids=["benchmark"],
        kinematics_names=["vel_x", "vel_y"],
        kinematics_units="m/s",
        features={"bin_ms": 20.0},
    )
    return save_checkpoint(path, checkpoint)


@dataclass
class Timing:
    """Per-step wall time (what the loop waits for) and this thread's CPU time (the compute alone)."""

    wall_s: np.ndarray
    cpu_s: np.ndarray
    outputs: np.ndarray


def time_steps(label: str, step: Callable[[np.ndarray], np.ndarray], bins: np.ndarray, warmup: int) -> Timing:
    """Time ``step`` on each of ``bins`` after ``warmup`` untimed steps.

    On a shared machine the wall-time tail is mostly the scheduler giving the core to
    another process; thread CPU time excludes that and shows what the step itself costs.
    """
    for features in bins[:warmup]:
        step(features)
    timed = bins[warmup:]
    wall, cpu = np.empty(len(timed)), np.empty(len(timed))
    outputs = []
    wall_clock, cpu_clock = time.perf_counter, time.thread_time
    for i, features in enumerate(tqdm(timed, desc=label, unit="step", mininterval=0.5)):
        wall_start, cpu_start = wall_clock(), cpu_clock()
        outputs.append(step(features))
        cpu[i] = cpu_clock() - cpu_start
        wall[i] = wall_clock() - wall_start
    return Timing(wall, cpu, np.stack(outputs))


def full_window_stepper(run_window: Callable[[np.ndarray], np.ndarray], shape: tuple[int, ...]) -> Callable:
    """Baseline step: shift the new bin into a window of the last ``W`` bins and re-encode all of it."""
    window = np.zeros(shape, dtype=np.float32)

    def step(features: np.ndarray) -> np.ndarray:
        window[:-1] = window[1:]
        window[-1] = features
        return run_window(window)

    return step


def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(1)  # one decode thread per backend, as the engine runs it
    with tempfile.TemporaryDirectory(prefix="rtbci-bench-runtime-") as tmp:
        tmp_dir = Path(tmp)
        checkpoint_path = args.checkpoint or default_checkpoint(tmp_dir / "model.pt", args.seed)
        artifact = tmp_dir / "artifact"
        export_artifact(checkpoint_path, artifact)
        manifest = read_manifest(artifact)
        checkpoint = load_checkpoint(checkpoint_path)
        decoder = build_decoder(checkpoint)
        session_index = checkpoint.session_index(manifest.session_id)
        reference = StreamingStep(decoder, session_index)
        bins = parity_inputs(reference, args.warmup + args.steps, args.seed)
        window_shape = (manifest.window_bins, manifest.n_channels, manifest.n_features)

        timings: dict[str, Timing] = {}
        for name in available_backends():
            backend = load_backend(name, artifact, device="cuda" if name == "tensorrt" else "cpu")
            timings[name] = time_steps(name, backend.step, bins, args.warmup)
        backend_names = list(timings)

        full_window = FullWindowStep(decoder, session_index).eval()

        @torch.inference_mode()
        def torch_window(window: np.ndarray) -> np.ndarray:
            return full_window(torch.from_numpy(window)).numpy()

        timings["torch_full_window"] = time_steps(
            "torch_full_window", full_window_stepper(torch_window, window_shape), bins, args.warmup
        )
        export_full_window(decoder, session_index, tmp_dir / "full_window.onnx")
        session = create_session(tmp_dir / "full_window.onnx")
        timings["ort_full_window"] = time_steps(
            "ort_full_window",
            full_window_stepper(lambda w: session.run(None, {"window": w})[0], window_shape),
            bins,
            args.warmup,
        )

        expected = torch_reference(reference, bins)[args.warmup :]
        parity = {name: float(np.abs(timings[name].outputs - expected).max()) for name in backend_names}

    summaries = {name: latency_summary_ms(timing.wall_s) for name, timing in timings.items()}
    cpu_summaries = {name: latency_summary_ms(timing.cpu_s) for name, timing in timings.items()}
    baseline = summaries["torch_full_window"]
    speedups = {name: baseline["p99_ms"] / summaries[name]["p99_ms"] for name in backend_names}
    ort = summaries["onnxruntime"]
    return {
        "backends": summaries,
        "backends_thread_cpu_time": cpu_summaries,
        "speedup_p99_vs_torch_full_window": speedups["onnxruntime"],
        "speedups_p99_vs_torch_full_window": speedups,
        "speedup_p50_vs_torch_full_window": baseline["p50_ms"] / ort["p50_ms"],
        "speedup_p99_thread_cpu_time_vs_torch_full_window": (
            cpu_summaries["torch_full_window"]["p99_ms"] / cpu_summaries["onnxruntime"]["p99_ms"]
        ),
        "parity_max_abs_err": max(parity.values()),
        "parity_max_abs_err_per_backend_vs_torch_streaming": parity,
        "model": {
            "params": manifest.params,
            "tokens_per_bin": manifest.tokens_per_bin,
            **{
                k: v
                for k, v in dataclasses.asdict(checkpoint.encoder_config).items()
                if k != "channel_regions"
            },
        },
        "steps": args.steps,
        "warmup": args.warmup,
        "goals": {
            f"onnxruntime_p99_le_{GOAL_ORT_P99_MS}ms": ort["p99_ms"] <= GOAL_ORT_P99_MS,
            f"onnxruntime_max_le_{GOAL_ORT_MAX_MS}ms": ort["max_ms"] <= GOAL_ORT_MAX_MS,
            f"speedup_p99_ge_{GOAL_SPEEDUP}x": speedups["onnxruntime"] >= GOAL_SPEEDUP,
        },
        "machine": {
            "cpu_count": os.cpu_count(),
            "load_average_1m_5m_15m": list(os.getloadavg()),
            "torch_threads": torch.get_num_threads(),
            "note": "shared machine: other jobs run at the same time, so tails are noisy",
        },
    }


@torch.inference_mode()
def torch_reference(step: StreamingStep, bins: np.ndarray) -> np.ndarray:
    """Kinematics of the torch streaming step (the reference every backend is checked against)."""
    state = step.initial_state()
    outputs = []
    for features in bins:
        kinematics, *state = step(torch.from_numpy(features), *state)
        outputs.append(kinematics.numpy())
    return np.stack(outputs)


def available_backends() -> list[str]:
    """onnxruntime and torch always; tensorrt when it and a CUDA GPU are present."""
    names = ["onnxruntime", "torch"]
    if importlib.util.find_spec("tensorrt") is not None and torch.cuda.is_available():
        names.append("tensorrt")
    return names
