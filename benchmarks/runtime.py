"""Runtime latency: per-bin decode time of each backend's streaming step vs re-encoding the full window.

Every backend runs the same exported artifact of the default model (LFP, 96 channels x
5 features, patches of 32 channels -> 3 tokens per bin, d=128, 4 layers, 4 heads, a
50-bin window, the LFP convolution), one bin per step after warm-up. Two baselines run in
the same process: ``torch_full_window`` re-encodes the whole 1 s window every bin in eager
torch, as published real-time transformer decoders do, and ``ort_full_window`` does the
same in ONNX Runtime. Each timed step includes everything the engine would wait for:
copying the bin in (and, for the baselines, shifting the window) and reading kinematics out.

The ``onnxruntime`` row runs what the backend runs by default: the graph with its attention
fused at load (:mod:`rtbci.runtime.backends.ort_attention`); ``onnxruntime_ort_fusions``
runs the same artifact with ONNX Runtime's own fusions only (the step before that rewrite).
Backend rows are timed in turns of ``ROUNDS`` rounds, so that the load of a shared machine
falls on every row alike.

The ``onnxruntime_weight_floor`` row runs only the step's weight products, with the same
weights, kernels and session options (:func:`weight_floor_model`): the time a step cannot go
below on this CPU however few its other nodes, since every step reads all its weights.

Also reported: the graph's node count as exported, after ONNX Runtime's own fusions and as
the backend runs it, the nodes and top ops of ONNX Runtime's profiler, the bundled demo
decoder (as shipped and re-exported with today's export), a scale row (step cost against
channels and window length), the goals of issue 29 as computed booleans and the machine's
load average before and after.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper
from tqdm.auto import tqdm

from rtbci.home import SHIPPED_PROFILES
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
from rtbci.runtime import Backend, load_backend, read_manifest
from rtbci.runtime.backends.base import WARMUP_STEPS
from rtbci.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend, create_session, fused_model
from rtbci.runtime.export import export_artifact, export_full_window, parity_inputs
from rtbci.runtime.streaming import FullWindowStep, StreamingStep
from rtbci.timing import latency_summary_ms

# The goals of issue 29, on a 2-core shared machine, in one run.
GOAL_ORT_P99_CPU_MS = 0.2  # default decoder, thread CPU time
GOAL_ORT_MAX_WALL_MS = 2.0
GOAL_SPEEDUP_TORCH = 20.0  # p99 against re-encoding the window in torch
GOAL_SPEEDUP_ORT = 5.0  # p99 against re-encoding the window in ONNX Runtime
GOAL_DEMO_P99_CPU_MS = 0.12
GOAL_FUSED_NODES = 80
DEMO_ARTIFACT = SHIPPED_PROFILES / "models" / "demo"
# Backend rows: name -> (backend, device, TensorRT FP16).
BACKEND_ROWS = {
    "onnxruntime": ("onnxruntime", "cpu", False),
    "onnxruntime_ort_fusions": ("onnxruntime", "cpu", False),
    "torch": ("torch", "cpu", False),
    "onnxruntime_cuda": ("onnxruntime", "cuda", False),
    "tensorrt": ("tensorrt", "cuda", False),
    "tensorrt_fp16": ("tensorrt", "cuda", True),
}
SCALE_CHANNELS = (96, 192, 384)
SCALE_WINDOWS = (25, 50, 100)
ROUNDS = 5
# The row that runs only the step's weight products (:func:`weight_floor_model`).
WEIGHT_FLOOR = "onnxruntime_weight_floor"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=int, default=5000, help="timed steps per backend and baseline")
    parser.add_argument("--warmup", type=int, default=200, help="untimed steps before timing")
    parser.add_argument(
        "--checkpoint",
        type=Path,
        help="decoder checkpoint to export (default: the default model, random weights)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights and inputs")
    parser.add_argument(
        "--backends",
        nargs="+",
        choices=sorted(BACKEND_ROWS),
        default=["onnxruntime", "onnxruntime_ort_fusions", "torch"],
        help="backend rows to time (the GPU ones need CUDA; tensorrt needs rtbci[tensorrt])",
    )
    parser.add_argument(
        "--scale-steps", type=int, default=1000, help="timed steps per scale row (0: no scale rows)"
    )
    parser.add_argument("--no-demo", action="store_true", help="skip the bundled demo decoder rows")


def default_checkpoint(path: Path, seed: int, n_channels: int = 96, window_bins: int = 50) -> Path:
    """The default-size LFP decoder with random weights (latency does not depend on the weights).

    Its LFP convolution is the one a profile's defaults give newly trained encoders.
    """
    torch.manual_seed(seed)
    features = FeatureConfig()
    config = EncoderConfig(
        modality="lfp",
        n_channels=n_channels,
        n_features=5,
        window_bins=window_bins,
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

    def summary(self) -> dict:
        """Percentiles of thread CPU time and of wall time."""
        return {"thread_cpu": latency_summary_ms(self.cpu_s), "wall": latency_summary_ms(self.wall_s)}


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


def time_in_rounds(rows: dict[str, tuple[Callable, np.ndarray]], warmup: int, rounds: int = ROUNDS) -> dict:
    """Time each row's step on its bins, in turns of ``rounds`` rounds, after ``warmup`` untimed steps each.

    Each row streams its own bins in order (a round goes on where the last one stopped),
    so its outputs are those of one stream; the rounds spread the load of a shared machine
    over every row alike.
    """
    parts: dict[str, list[Timing]] = {label: [] for label in rows}
    for step, bins in rows.values():
        for features in bins[:warmup]:
            step(features)
    for index in range(rounds):
        for label, (step, bins) in rows.items():
            chunk = np.array_split(bins[warmup:], rounds)[index]
            parts[label].append(time_steps(f"{label} ({index + 1}/{rounds})", step, chunk, 0))
    return {
        label: Timing(
            np.concatenate([t.wall_s for t in timings]),
            np.concatenate([t.cpu_s for t in timings]),
            np.concatenate([t.outputs for t in timings]),
        )
        for label, timings in parts.items()
    }


def full_window_stepper(run_window: Callable[[np.ndarray], np.ndarray], shape: tuple[int, ...]) -> Callable:
    """Baseline step: shift the new bin into a window of the last ``W`` bins and re-encode all of it."""
    window = np.zeros(shape, dtype=np.float32)

    def step(features: np.ndarray) -> np.ndarray:
        window[:-1] = window[1:]
        window[-1] = features
        return run_window(window)

    return step


def node_counts(artifact: Path) -> dict:
    """Nodes of the graph as exported, after ONNX Runtime's own fusions and as the backend runs it (fused)."""
    manifest = read_manifest(artifact)
    graph_path = artifact / manifest.graph_file
    models = {
        "exported": onnx.load(str(graph_path)),
        "ort_fusions": fused_model(graph_path, None),
        "fused": fused_model(graph_path, manifest.ring),
    }
    counts = {}
    for name, model in models.items():
        ops = collections.Counter(node.op_type for node in model.graph.node)
        counts[name] = sum(ops.values())
        counts[f"{name}_ops"] = dict(ops.most_common())
    return counts


def profile_ops(artifact: Path, bins: np.ndarray, work_dir: Path, top: int = 8) -> dict:
    """ONNX Runtime's profiler over ``bins`` streamed through the backend: nodes run per step, time per op.

    The profiler adds its own cost to every node, so the shares matter here, not the absolute times.
    """
    backend = OnnxRuntimeBackend(artifact, profile_prefix=work_dir / "ort_profile")
    for features in bins:
        backend.step(features)
    events = json.loads(Path(backend.session.end_profiling()).read_text())
    kernel_us, calls, nodes = collections.Counter(), collections.Counter(), set()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            kernel_us[event["args"]["op_name"]] += event["dur"]
            calls[event["args"]["op_name"]] += 1
            nodes.add(event["name"])
    steps = len(bins) + WARMUP_STEPS  # the backend's warm-up runs are profiled too
    total = sum(kernel_us.values())
    return {
        "fusion": backend.fusion,
        "nodes_run_per_step": len(nodes),
        "top_ops": [
            {"op": op, "share": us / total, "us_per_step": us / steps, "nodes": calls[op] // steps}
            for op, us in kernel_us.most_common(top)
        ],
    }


def weight_floor_model(artifact: Path) -> tuple[onnx.ModelProto, int]:
    """A graph of only the fused step's weight products, and the bytes of weights it reads.

    Every node of the step that reads a float32 weight matrix (``MatMul``, or ``Gemm`` with
    its bias left out) becomes one ``MatMul`` of that matrix by a ``(tokens per bin, rows)``
    input. The graph reads the same weights as a step and does nothing else: the time a step
    cannot go below with ONNX Runtime's kernels however few its other nodes.
    """
    manifest = read_manifest(artifact)
    model = fused_model(artifact / manifest.graph_file, manifest.ring)
    weights = {item.name: numpy_helper.to_array(item) for item in model.graph.initializer}
    matrices = [
        weights[node.input[1]]
        for node in model.graph.node
        if node.op_type in ("MatMul", "Gemm")
        and node.input[1] in weights
        and weights[node.input[1]].ndim == 2
        and weights[node.input[1]].dtype == np.float32
    ]
    if not matrices:
        raise ValueError(f"{artifact}: no weight matrix in the fused step")
    tokens = manifest.tokens_per_bin
    inputs = {
        rows: helper.make_tensor_value_info(f"x{rows}", TensorProto.FLOAT, [tokens, rows])
        for rows in sorted({m.shape[0] for m in matrices})
    }
    nodes, outputs, initializers = [], [], []
    for k, matrix in enumerate(matrices):
        initializers.append(numpy_helper.from_array(matrix, f"w{k}"))
        nodes.append(helper.make_node("MatMul", [f"x{matrix.shape[0]}", f"w{k}"], [f"y{k}"]))
        outputs.append(helper.make_tensor_value_info(f"y{k}", TensorProto.FLOAT, [tokens, matrix.shape[1]]))
    graph = helper.make_graph(nodes, "weight_floor", list(inputs.values()), outputs, initializers)
    floor = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return floor, sum(m.nbytes for m in matrices)


def weight_floor_stepper(model: onnx.ModelProto, path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """A step that runs :func:`weight_floor_model`'s graph as the backend runs its step.

    The same session options (:func:`create_session`) and I/O binding into preallocated
    arrays; the bin's features are not read (the products read fixed inputs).
    """
    onnx.save(model, str(path))
    session = create_session(path)
    binding = session.io_binding()
    for item in model.graph.input:
        shape = [d.dim_value for d in item.type.tensor_type.shape.dim]
        binding.bind_ortvalue_input(item.name, ort.OrtValue.ortvalue_from_numpy(np.ones(shape, np.float32)))
    results = []
    for item in model.graph.output:
        shape = [d.dim_value for d in item.type.tensor_type.shape.dim]
        results.append(np.zeros(shape, np.float32))
        binding.bind_ortvalue_output(item.name, ort.OrtValue.ortvalue_from_numpy(results[-1]))

    def step(features: np.ndarray) -> np.ndarray:
        session.run_with_iobinding(binding)
        return results[0][0]

    return step


def load_row(row: str, artifact: Path) -> Backend:
    """The backend of one row of :data:`BACKEND_ROWS`."""
    name, device, fp16 = BACKEND_ROWS[row]
    if name == "tensorrt":
        from rtbci.runtime.backends.tensorrt_backend import TensorRTBackend

        return TensorRTBackend(artifact, device, fp16=fp16)
    if row == "onnxruntime_ort_fusions":
        return OnnxRuntimeBackend(artifact, device, fuse_attention=False)
    return load_backend(name, artifact, device=device)


def demo_rows(args: argparse.Namespace, work_dir: Path) -> dict:
    """The bundled demo decoder as shipped, and its weights exported with today's export, timed in rounds."""
    manifest = read_manifest(DEMO_ARTIFACT)
    reexported = work_dir / "demo"
    export_artifact(DEMO_ARTIFACT / manifest.torch_file, reexported, manifest.session_id, manifest.subject_id)
    artifacts = {"shipped": DEMO_ARTIFACT, "reexported": reexported}
    shape = (args.steps + args.warmup, *manifest.feature_input.shape)  # latency does not depend on the values
    bins = np.random.default_rng(args.seed).standard_normal(shape).astype(np.float32)
    timings = time_in_rounds(
        {f"demo {name}": (load_backend("onnxruntime", a).step, bins) for name, a in artifacts.items()},
        args.warmup,
    )
    return {
        name: {"nodes": node_counts(artifact), **timing.summary()}
        for (name, artifact), timing in zip(artifacts.items(), timings.values(), strict=True)
    }


def scale_rows(args: argparse.Namespace, work_dir: Path) -> list[dict]:
    """Step cost against channels (window 50) and against window length (96 channels), timed in rounds."""
    shapes = [(c, 50) for c in SCALE_CHANNELS] + [(96, w) for w in SCALE_WINDOWS if w != 50]
    rows, steppers = [], {}
    for channels, window in shapes:
        folder = work_dir / f"scale_{channels}ch_{window}bins"
        checkpoint = default_checkpoint(folder.with_suffix(".pt"), args.seed, channels, window)
        manifest = export_artifact(checkpoint, folder, parity_steps=window + 10)
        backend = load_backend("onnxruntime", folder)
        bins = np.random.default_rng(args.seed).standard_normal(
            (args.scale_steps + args.warmup, *backend.feature_shape)
        )
        steppers[f"scale {channels} ch {window} bins"] = (backend.step, bins.astype(np.float32))
        rows.append(
            {
                "channels": channels,
                "window_bins": window,
                "tokens_per_bin": manifest.tokens_per_bin,
                "params": manifest.params,
                "fused_nodes": node_counts(folder)["fused"],
            }
        )
    timings = time_in_rounds(steppers, args.warmup)
    for row, timing in zip(rows, timings.values(), strict=True):
        summary = timing.summary()
        row |= {
            "thread_cpu_p50_ms": summary["thread_cpu"]["p50_ms"],
            "thread_cpu_p99_ms": summary["thread_cpu"]["p99_ms"],
            "wall_p50_ms": summary["wall"]["p50_ms"],
            "wall_p99_ms": summary["wall"]["p99_ms"],
        }
    return rows


def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(1)  # one decode thread per backend, as the engine runs it
    load_before = list(os.getloadavg())
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

        rows = {row: (load_row(row, artifact).step, bins) for row in args.backends}
        backend_names = list(rows)
        full_window = FullWindowStep(decoder, session_index).eval()

        @torch.inference_mode()
        def torch_window(window: np.ndarray) -> np.ndarray:
            return full_window(torch.from_numpy(window)).numpy()

        export_full_window(decoder, session_index, tmp_dir / "full_window.onnx")
        session = create_session(tmp_dir / "full_window.onnx")
        rows["torch_full_window"] = (full_window_stepper(torch_window, window_shape), bins)
        rows["ort_full_window"] = (
            full_window_stepper(lambda w: session.run(None, {"window": w})[0], window_shape),
            bins,
        )
        floor_model, floor_bytes = weight_floor_model(artifact)
        rows[WEIGHT_FLOOR] = (weight_floor_stepper(floor_model, tmp_dir / "weight_floor.onnx"), bins)
        timings = time_in_rounds(rows, args.warmup)

        expected = torch_reference(reference, bins)[args.warmup :]
        parity = {name: float(np.abs(timings[name].outputs - expected).max()) for name in backend_names}
        nodes = node_counts(artifact)
        profile = profile_ops(artifact, bins[: min(len(bins), 2000)], tmp_dir)
        demo = {} if args.no_demo else demo_rows(args, tmp_dir)
        scale = scale_rows(args, tmp_dir) if args.scale_steps > 0 else []

    summaries = {name: timing.summary() for name, timing in timings.items()}

    def ratio(baseline: str, name: str, clock: str) -> float:
        return summaries[baseline][clock]["p99_ms"] / summaries[name][clock]["p99_ms"]

    speedups = {
        name: {
            f"vs_{baseline}_{clock}": ratio(baseline, name, clock)
            for baseline in ("torch_full_window", "ort_full_window")
            for clock in ("thread_cpu", "wall")
        }
        for name in backend_names
    }
    goals = {}
    if "onnxruntime" in summaries:
        ort_row = summaries["onnxruntime"]
        goals |= {
            f"onnxruntime_p99_thread_cpu_le_{GOAL_ORT_P99_CPU_MS}ms": ort_row["thread_cpu"]["p99_ms"]
            <= GOAL_ORT_P99_CPU_MS,
            f"onnxruntime_max_wall_le_{GOAL_ORT_MAX_WALL_MS}ms": ort_row["wall"]["max_ms"]
            <= GOAL_ORT_MAX_WALL_MS,
            f"speedup_p99_vs_torch_full_window_ge_{GOAL_SPEEDUP_TORCH}x": (
                speedups["onnxruntime"]["vs_torch_full_window_thread_cpu"] >= GOAL_SPEEDUP_TORCH
            ),
            f"speedup_p99_vs_ort_full_window_ge_{GOAL_SPEEDUP_ORT}x": (
                speedups["onnxruntime"]["vs_ort_full_window_thread_cpu"] >= GOAL_SPEEDUP_ORT
            ),
            f"fused_nodes_le_{GOAL_FUSED_NODES}": profile["nodes_run_per_step"] <= GOAL_FUSED_NODES,
        }
    if demo:
        goals[f"demo_reexported_p99_thread_cpu_le_{GOAL_DEMO_P99_CPU_MS}ms"] = (
            demo["reexported"]["thread_cpu"]["p99_ms"] <= GOAL_DEMO_P99_CPU_MS
        )
    return {
        "backends": summaries,
        "speedups_p99": speedups,
        "speedup_p99_vs_torch_full_window": speedups[backend_names[0]]["vs_torch_full_window_thread_cpu"],
        "parity_max_abs_err": max(parity.values()),
        "parity_max_abs_err_per_backend_vs_torch_streaming": parity,
        "nodes": nodes | {"run_per_step": profile["nodes_run_per_step"], "fusion": profile["fusion"]},
        "top_ops_onnxruntime_profiler": profile["top_ops"],
        "weight_floor": {
            "row": WEIGHT_FLOOR,
            "weight_matrices": len(floor_model.graph.node),
            "weight_bytes": floor_bytes,
            "share_of_onnxruntime_p50": (
                summaries[WEIGHT_FLOOR]["thread_cpu"]["p50_ms"]
                / summaries["onnxruntime"]["thread_cpu"]["p50_ms"]
                if "onnxruntime" in summaries
                else None
            ),
        },
        "attention_fusion_p50_p99_ratio": _before_after(summaries, "onnxruntime_ort_fusions", "onnxruntime"),
        "demo": demo,
        "scale": scale,
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
        "goals": goals,
        "machine": {
            "cpu_count": os.cpu_count(),
            "load_average_1m_5m_15m_before": load_before,
            "load_average_1m_5m_15m_after": list(os.getloadavg()),
            "torch_threads": torch.get_num_threads(),
            "note": "shared machine: other jobs run at the same time, so tails are noisy",
        },
    }


def _before_after(summaries: dict, before: str, after: str) -> dict:
    """Thread CPU p50 and p99 of ``before`` over ``after`` (rows timed in the same rounds), or {}."""
    if before not in summaries or after not in summaries:
        return {}
    return {
        q: summaries[before]["thread_cpu"][f"{q}_ms"] / summaries[after]["thread_cpu"][f"{q}_ms"]
        for q in ("p50", "p99")
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
