"""ONNX Runtime backend (the default): one thread, no spinning, I/O binding into preallocated buffers.

At load, ONNX Runtime fuses the graph (RMSNorm, MatMul with transpose and bias, SiLU and
GELU into single kernels), and a ring step's attention is rewritten into one fused node
per layer (:mod:`~rtbci.runtime.backends.ort_attention`). The fused model is saved beside
the artifact, named by the graph's hash, the ONNX Runtime version and the rewrite's
version, and later loads read it instead of fusing again. Shipped and read-only artifacts
are fused in memory at every load. A graph the rewrite does not recognise runs with
ONNX Runtime's own fusions, and says so in the log at every load.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper

from rtbci.errors import UserError
from rtbci.home import is_shipped
from rtbci.runtime.backends.base import Backend, RingState
from rtbci.runtime.backends.ort_attention import (
    ATTENTION,
    FUSION_KEY,
    FUSION_VERSION,
    FusionError,
    fuse_attention,
)
from rtbci.runtime.manifest import RingSpec

__all__ = ["OnnxRuntimeBackend", "create_session", "fused_model_path"]

logger = logging.getLogger(__name__)


def fused_model_path(graph_path: Path, graph_sha256: str, attention: bool = True) -> Path:
    """Where the load-time fused model of this graph and ONNX Runtime version is kept.

    ``attention`` False: the model with ONNX Runtime's own fusions only.
    """
    fusion = f"-attention{FUSION_VERSION}" if attention else ""
    return graph_path.with_name(f"{graph_path.stem}.ort-{ort.__version__}{fusion}-{graph_sha256[:16]}.onnx")


def fused_model(graph_path: Path, ring: RingSpec | None) -> onnx.ModelProto:
    """The graph after ONNX Runtime's fusions and, with ``ring``, the attention rewrite.

    The fusions are those of the extended level: the layout transformations of the highest
    level are specific to this CPU, and they are applied again when the model loads. The
    model's metadata records the rewrite (:data:`FUSION_KEY`), or why there was none.
    """
    with tempfile.TemporaryDirectory(prefix="rtbci-ort-") as tmp:
        saving = ort.SessionOptions()
        saving.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        saving.optimized_model_filepath = str(Path(tmp) / "fused.onnx")
        ort.InferenceSession(str(graph_path), saving, providers=["CPUExecutionProvider"])
        model = onnx.load(saving.optimized_model_filepath)
    if ring is None:
        return model
    try:
        return fuse_attention(model, ring)
    except FusionError as error:
        helper.set_model_props(model, {FUSION_KEY: f"none ({error})"})
        return model


def create_session(
    graph_path: str | Path,
    device: str = "cpu",
    graph_sha256: str | None = None,
    profile_prefix: str | Path | None = None,
    ring: RingSpec | None = None,
) -> ort.InferenceSession:
    """An inference session tuned for batch-1 latency.

    One intra-op and one inter-op thread, spinning off (a spinning pool burns the core
    that the LSL reader and featurizer need), sequential execution, all graph
    optimisations. ``device`` ``cuda[:N]`` uses the CUDA execution provider.

    With ``graph_sha256`` (CPU only) the graph is fused (:func:`fused_model`, with the
    attention rewrite when ``ring`` is given) and the fused model is cached beside the
    graph, see :func:`fused_model_path`; shipped or read-only folders are fused in memory.
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
    if graph_sha256 is None or device != "cpu":
        return ort.InferenceSession(str(graph_path), options, providers=providers)
    if is_shipped(graph_path) or not os.access(graph_path.parent, os.W_OK):
        model = fused_model(graph_path, ring).SerializeToString()
        return ort.InferenceSession(model, options, providers=providers)
    fused = fused_model_path(graph_path, graph_sha256, attention=ring is not None)
    if not fused.is_file():
        tmp = fused.with_name(f"{fused.name}.{os.getpid()}.tmp")
        onnx.save(fused_model(graph_path, ring), str(tmp))
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

    Parameters
    ----------
    artifact_dir, device, expected_sha256
        As for every backend.
    fuse_attention
        Rewrite a ring step's attention into fused nodes on CPU (see the module notes);
        False runs ONNX Runtime's own fusions only.
    profile_prefix
        Record every node run with ONNX Runtime's profiler (``session.end_profiling()``
        writes the JSON).
    """

    name = "onnxruntime"

    def __init__(
        self,
        artifact_dir: str | Path,
        device: str = "cpu",
        expected_sha256: str | None = None,
        fuse_attention: bool = True,
        profile_prefix: str | Path | None = None,
    ):
        super().__init__(artifact_dir, device, expected_sha256)
        manifest = self.manifest
        attention = manifest.ring if fuse_attention else None
        self.session = create_session(self.graph_path, device, manifest.sha256, profile_prefix, attention)
        self.fusion = self.session.get_modelmeta().custom_metadata_map.get(FUSION_KEY, "onnxruntime")
        if attention is not None and device == "cpu" and self.fusion != ATTENTION:
            logger.warning(
                "%s: the attention of this ring step could not be fused, so it runs with ONNX Runtime's "
                "own fusions only (slower): %s",
                self.graph_path,
                self.fusion,
            )
        self._on_cpu = device == "cpu"
        self._features, self._features_value = self._allocate(manifest.feature_input.shape)
        self._kinematics, self._kinematics_value = self._allocate(manifest.kinematics_output.shape)
        self._ring = None
        if manifest.ring is not None:
            fused = self.fusion == ATTENTION
            self._ring = RingState(manifest, tokens_first=fused, rotation_matrix=fused)
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
        # The fused graph reads the rings with a batch axis: bound as views of the same memory.
        shapes = {
            value.name: value.shape for value in [*self.session.get_inputs(), *self.session.get_outputs()]
        }
        binding = self._new_binding()
        for name, array in ring.arrays.items():
            binding.bind_ortvalue_input(name, self._wrap(array.reshape(shapes[name]), on_device=False))
        for name, output in spec.states.items():
            binding.bind_ortvalue_output(
                output, self._wrap(ring.slots[name].reshape(shapes[output]), on_device=False)
            )
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
            "fusion": self.fusion,
        }
