"""ONNX Runtime backend (the default): one thread, no spinning, I/O binding into preallocated buffers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from rtbci.errors import UserError
from rtbci.runtime.backends.base import Backend

__all__ = ["OnnxRuntimeBackend", "create_session"]


def create_session(graph_path: str | Path, device: str = "cpu") -> ort.InferenceSession:
    """An inference session tuned for batch-1 latency.

    One intra-op and one inter-op thread, spinning off (a spinning pool burns the core
    that the LSL reader and featurizer need), sequential execution, all graph
    optimisations. ``device`` ``cuda[:N]`` uses the CUDA execution provider.

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
    return ort.InferenceSession(str(graph_path), options, providers=providers)


def _device_id(device: str) -> int:
    return int(device.split(":", 1)[1]) if ":" in device else 0


class OnnxRuntimeBackend(Backend):
    """Runs ``decoder.onnx`` with ONNX Runtime.

    Every tensor of the step is preallocated: the bin's features, two copies of the state
    (each step reads one and writes the other; two prepared I/O bindings alternate) and
    the kinematics. On CPU the OrtValues wrap numpy arrays, so a step copies the bin in,
    runs, and reads the kinematics without any tensor allocation.
    """

    name = "onnxruntime"

    def __init__(self, artifact_dir: str | Path, device: str = "cpu", expected_sha256: str | None = None):
        super().__init__(artifact_dir, device, expected_sha256)
        self.session = create_session(self.graph_path, device)
        self._on_cpu = device == "cpu"
        device_type, device_id = ("cpu", 0) if self._on_cpu else ("cuda", _device_id(device))
        manifest = self.manifest

        def allocate(shape: list[int]) -> tuple[np.ndarray, ort.OrtValue]:
            host = np.zeros(shape, dtype=np.float32)
            return host, ort.OrtValue.ortvalue_from_numpy(host, device_type, device_id)

        self._features, self._features_value = allocate(manifest.feature_input.shape)
        self._kinematics, self._kinematics_value = allocate(manifest.kinematics_output.shape)
        state_specs = manifest.inputs[1:]
        self._states = [[allocate(spec.shape) for spec in state_specs] for _ in range(2)]
        self._bindings = []
        for read, write in ((0, 1), (1, 0)):
            binding = self.session.io_binding()
            binding.bind_ortvalue_input(manifest.feature_input.name, self._features_value)
            binding.bind_ortvalue_output(manifest.kinematics_output.name, self._kinematics_value)
            for spec, (_, value) in zip(state_specs, self._states[read], strict=True):
                binding.bind_ortvalue_input(spec.name, value)
            for spec, (_, value) in zip(manifest.outputs[1:], self._states[write], strict=True):
                binding.bind_ortvalue_output(spec.name, value)
            self._bindings.append(binding)
        self._current = 0
        self.warm_up()

    def reset(self) -> None:
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
        }
