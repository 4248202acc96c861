"""ONNX Runtime backend (the default): one thread, no spinning, I/O binding into preallocated buffers.

At load, ONNX Runtime fuses the graph (RMSNorm, MatMul with transpose and bias, SiLU and
GELU into single kernels); the fused model is saved beside the artifact, named by the
graph's hash and the ONNX Runtime version, and later loads read it instead of fusing again.
Shipped and read-only artifacts are fused in memory at every load.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from rtbci.errors import UserError
from rtbci.home import is_shipped
from rtbci.runtime.backends.base import Backend, RingState

__all__ = ["OnnxRuntimeBackend", "create_session", "fused_model_path"]


def fused_model_path(graph_path: Path, graph_sha256: str) -> Path:
    """Where the load-time fused model of this graph and ONNX Runtime version is kept."""
    return graph_path.with_name(f"{graph_path.stem}.ort-{ort.__version__}-{graph_sha256[:16]}.onnx")


def create_session(
    graph_path: str | Path,
    device: str = "cpu",
    graph_sha256: str | None = None,
    profile_prefix: str | Path | None = None,
) -> ort.InferenceSession:
    """An inference session tuned for batch-1 latency.

    One intra-op and one inter-op thread, spinning off (a spinning pool burns the core
    that the LSL reader and featurizer need), sequential execution, all graph
    optimisations. ``device`` ``cuda[:N]`` uses the CUDA execution provider.

    With ``graph_sha256`` (CPU only) the fused model is cached beside the graph, see
    :func:`fused_model_path`; the cache is skipped for shipped or read-only folders.
    With ``profile_prefix`` ONNX Runtime's profiler records every node run (JSON written by
    ``session.end_profiling()``).

    Raises
    ------
    UserError
        If CUDA is asked for but onnxruntime has no CUDA execution provider.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = str(profile_prefix)
    if device == "cpu":
        providers: list[Any] = ["CPUExecutionProvider"]
    elif device.startswith("cuda"):
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise UserError(
                f"device {device!r} needs ONNX Runtime's CUDA execution provider: "
                "pip install onnxruntime-gpu (in place of onnxruntime) on a machine with an NVIDIA GPU"
            )
        providers = [("CUDAExecutionProvider", {"device_id": _device_id(device)}), "CPUExecutionProvider"]
    else:
        raise UserError(f"unknown device {device!r}: use cpu or cuda[:N]")
    graph_path = Path(graph_path)
    if (
        graph_sha256 is None
        or device != "cpu"
        or is_shipped(graph_path)
        or not os.access(graph_path.parent, os.W_OK)
    ):
        return ort.InferenceSession(str(graph_path), options, providers=providers)
    fused = fused_model_path(graph_path, graph_sha256)
    if not fused.is_file():
        # Saved at the extended level: the layout transformations of the highest level are specific to
        # this CPU, and they are applied again when the saved model loads.
        saving = ort.SessionOptions()
        saving.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        tmp = fused.with_name(f"{fused.name}.{os.getpid()}.tmp")
        saving.optimized_model_filepath = str(tmp)
        ort.InferenceSession(str(graph_path), saving, providers=providers)
        tmp.replace(fused)
    return ort.InferenceSession(str(fused), options, providers=providers)


def _device_id(device: str) -> int:
    return int(device.split(":", 1)[1]) if ":" in device else 0


class OnnxRuntimeBackend(Backend):
    """Runs ``decoder.onnx`` with ONNX Runtime.

    Every tensor of the step is preallocated and bound once: the bin's features, the state
    and the outputs. On CPU the OrtValues wrap numpy arrays, so a step copies the bin in,
    runs, and reads the kinematics without any tensor allocation.

    A ring artifact (``manifest.ring``) keeps its state once, in :class:`RingState`: the
    graph reads the rings and returns this bin's slot, which is copied into the rings in
    place. A version 1 artifact returns its whole next state: two copies of the state
    alternate as input and output, with two prepared I/O bindings.
    """

    name = "onnxruntime"

    def __init__(self, artifact_dir: str | Path, device: str = "cpu", expected_sha256: str | None = None):
        super().__init__(artifact_dir, device, expected_sha256)
        self.session = create_session(self.graph_path, device, self.manifest.sha256)
        self._on_cpu = device == "cpu"
        manifest = self.manifest
        self._features, self._features_value = self._allocate(manifest.feature_input.shape)
        self._kinematics, self._kinematics_value = self._allocate(manifest.kinematics_output.shape)
        self._ring = RingState(manifest) if manifest.ring is not None else None
        if self._ring is not None:
            self._bind_ring()
        else:
            self._bind_alternating()
        self.warm_up()

    def _allocate(self, shape: list[int], on_device: bool = True) -> tuple[np.ndarray, ort.OrtValue]:
        host = np.zeros(shape, dtype=np.float32)
        return host, self._wrap(host, on_device)

    def _wrap(self, host: np.ndarray, on_device: bool = True) -> ort.OrtValue:
        if self._on_cpu or not on_device:
            return ort.OrtValue.ortvalue_from_numpy(host)
        return ort.OrtValue.ortvalue_from_numpy(host, "cuda", _device_id(self.device))

    def _new_binding(self) -> ort.IOBinding:
        binding = self.session.io_binding()
        binding.bind_ortvalue_input(self.manifest.feature_input.name, self._features_value)
        binding.bind_ortvalue_output(self.manifest.kinematics_output.name, self._kinematics_value)
        return binding

    def _bind_ring(self) -> None:
        """Bind the ring state and slot outputs in host memory (on CUDA, ONNX Runtime copies them)."""
        ring, spec = self._ring, self.manifest.ring
        binding = self._new_binding()
        for name, array in ring.arrays.items():
            binding.bind_ortvalue_input(name, self._wrap(array, on_device=False))
        for name, output in spec.states.items():
            binding.bind_ortvalue_output(output, self._wrap(ring.slots[name], on_device=False))
        self._bindings = [binding]

    def _bind_alternating(self) -> None:
        manifest = self.manifest
        state_specs = manifest.inputs[1:]
        self._states = [[self._allocate(spec.shape) for spec in state_specs] for _ in range(2)]
        self._bindings = []
        for read, write in ((0, 1), (1, 0)):
            binding = self._new_binding()
            for spec, (_, value) in zip(state_specs, self._states[read], strict=True):
                binding.bind_ortvalue_input(spec.name, value)
            for spec, (_, value) in zip(manifest.outputs[1:], self._states[write], strict=True):
                binding.bind_ortvalue_output(spec.name, value)
            self._bindings.append(binding)
        self._current = 0

    def reset(self) -> None:
        if self._ring is not None:
            self._ring.reset()
            return
        for states in self._states:
            for host, value in states:
                host.fill(0.0)
                if not self._on_cpu:
                    value.update_inplace(host)
        self._current = 0

    def step(self, features: np.ndarray) -> np.ndarray:
        self.check_features(features)
        np.copyto(self._features, features, casting="same_kind")
        if not self._on_cpu:
            self._features_value.update_inplace(self._features)
        if self._ring is not None:
            self.session.run_with_iobinding(self._bindings[0])
            self._ring.advance()
        else:
            self.session.run_with_iobinding(self._bindings[self._current])
            self._current ^= 1
        if self._on_cpu:
            return self._kinematics.copy()
        return self._kinematics_value.numpy()

    def info(self) -> dict[str, Any]:
        return {
            **super().info(),
            "providers": self.session.get_providers(),
            "onnxruntime": ort.__version__,
            "intra_op_threads": 1,
            "state": "ring" if self._ring is not None else "whole",
        }
