"""TensorRT backend: builds an engine from ``decoder.onnx`` once, caches it, runs it on the GPU.

Written against NVIDIA's documented TensorRT 10 Python API (name-based tensors,
``build_serialized_network``, ``execute_async_v3``) and cuda-python's runtime bindings.
Install with ``pip install 'rtbci[tensorrt]'`` on a machine with an NVIDIA GPU.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from rtbci.errors import UserError
from rtbci.runtime.backends.base import Backend, RingState

__all__ = ["TensorRTBackend", "TensorRTUnavailableError", "engine_cache_path"]

INSTALL_HINT = (
    "pip install 'rtbci[tensorrt]' (tensorrt>=10 and cuda-python) on a machine with an NVIDIA GPU and driver"
)
WORKSPACE_BYTES = 1 << 28


class TensorRTUnavailableError(UserError):
    """TensorRT, cuda-python or a CUDA GPU is missing."""


def _import_tensorrt() -> tuple[Any, Any]:
    try:
        import tensorrt as trt
    except ImportError as error:
        raise TensorRTUnavailableError(
            f"the tensorrt backend needs TensorRT, which is not installed: {INSTALL_HINT}"
        ) from error
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart  # cuda-python < 12.6
        except ImportError as error:
            raise TensorRTUnavailableError(
                f"the tensorrt backend needs cuda-python, which is not installed: {INSTALL_HINT}"
            ) from error
    return trt, cudart


def _cuda(result: tuple) -> Any:
    """Unwrap a cuda-python ``(error, *values)`` tuple, raising on error."""
    error, *values = result
    if int(error) != 0:
        raise RuntimeError(f"CUDA runtime call failed: {error}")
    return values[0] if len(values) == 1 else tuple(values) if values else None


def engine_cache_path(
    artifact_dir: Path, graph_sha256: str, trt_version: str, gpu_name: str, fp16: bool
) -> Path:
    """Where the engine for this graph, TensorRT version, GPU and precision is cached."""
    key = hashlib.sha256(
        f"{graph_sha256}|{trt_version}|{gpu_name}|{'fp16' if fp16 else 'fp32'}".encode()
    ).hexdigest()
    return artifact_dir / f"decoder.{key[:16]}.engine"


class TensorRTBackend(Backend):
    """Runs the artifact's graph as a TensorRT engine with preallocated device buffers.

    A ring artifact keeps its rings on the device: after each step the slot outputs are
    copied into the rings on the device (one strided copy each), and only the features,
    ``position``, ``rotary`` and ``valid`` go up from the host. A version 1 artifact has
    two copies of its state on the device, alternating as input and output.

    Parameters
    ----------
    artifact_dir, device, expected_sha256
        As for every backend; ``device`` must be ``cuda`` or ``cuda:N``.
    fp16
        Let TensorRT use FP16 kernels (inputs and outputs stay float32).
    """

    name = "tensorrt"

    def __init__(
        self,
        artifact_dir: str | Path,
        device: str = "cuda",
        expected_sha256: str | None = None,
        fp16: bool = False,
    ):
        trt, cudart = _import_tensorrt()
        super().__init__(artifact_dir, device, expected_sha256)
        self._cudart = cudart
        if not device.startswith("cuda"):
            raise UserError(f"the tensorrt backend runs on a GPU: use device cuda[:N], not {device!r}")
        device_id = int(device.split(":", 1)[1]) if ":" in device else 0
        try:
            n_devices = _cuda(cudart.cudaGetDeviceCount())
        except RuntimeError:
            n_devices = 0
        if n_devices <= device_id:
            raise TensorRTUnavailableError(
                f"no CUDA GPU {device_id} found for the tensorrt backend: {INSTALL_HINT}"
            )
        _cuda(cudart.cudaSetDevice(device_id))
        gpu_name = (
            _cuda(cudart.cudaGetDeviceProperties(device_id)).name.decode(errors="replace").strip("\x00")
        )
        self.fp16 = fp16
        self._logger = trt.Logger(trt.Logger.WARNING)
        self.engine_path = engine_cache_path(
            self.artifact_dir, self.manifest.sha256, trt.__version__, gpu_name, fp16
        )
        if not self.engine_path.is_file():
            self._build_engine(trt)
        self._runtime = trt.Runtime(self._logger)  # kept: the engine must not outlive its runtime
        self.engine = self._runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
        if self.engine is None:
            raise RuntimeError(f"TensorRT could not load the cached engine {self.engine_path}")
        self.context = self.engine.create_execution_context()
        self.stream = _cuda(cudart.cudaStreamCreate())
        self._allocate_buffers()
        self._info = {
            "tensorrt": trt.__version__,
            "gpu": gpu_name,
            "fp16": fp16,
            "engine": str(self.engine_path),
        }
        self.warm_up()

    def _build_engine(self, trt: Any) -> None:
        """Parse the ONNX graph, build a serialized engine and write it to the cache path."""
        builder = trt.Builder(self._logger)
        network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
        parser = trt.OnnxParser(network, self._logger)
        if not parser.parse(self.graph_path.read_bytes()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise RuntimeError(f"TensorRT could not parse {self.graph_path}: {errors}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
        if self.fp16:
            config.set_flag(trt.BuilderFlag.FP16)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise RuntimeError(f"TensorRT failed to build an engine from {self.graph_path}")
        tmp = self.engine_path.with_suffix(".tmp")
        tmp.write_bytes(bytes(serialized))
        tmp.replace(self.engine_path)

    def _allocate_buffers(self) -> None:
        """Device buffers for every tensor of the step."""
        cudart = self._cudart
        manifest = self.manifest
        self._features = np.zeros(manifest.feature_input.shape, dtype=np.float32)
        self._kinematics = np.zeros(manifest.kinematics_output.shape, dtype=np.float32)
        self._device_features = _cuda(cudart.cudaMalloc(self._features.nbytes))
        self._device_kinematics = _cuda(cudart.cudaMalloc(self._kinematics.nbytes))
        self.context.set_tensor_address(manifest.feature_input.name, self._device_features)
        self.context.set_tensor_address(manifest.kinematics_output.name, self._device_kinematics)
        self._ring = RingState(manifest) if manifest.ring is not None else None
        if self._ring is not None:
            self._allocate_ring()
        else:
            self._state_nbytes = [int(np.prod(spec.shape)) * 4 for spec in manifest.inputs[1:]]
            self._device_states = [
                [_cuda(cudart.cudaMalloc(n)) for n in self._state_nbytes] for _ in range(2)
            ]
            self._current = 0
        self.reset()

    def _allocate_ring(self) -> None:
        """Rings and slot outputs on the device; the host feeds the small per-step inputs."""
        cudart, ring = self._cudart, self._ring
        spec = ring.spec
        self._device_inputs: dict[str, tuple[int, int]] = {}  # name -> (pointer, nbytes)
        for name, array in ring.arrays.items():
            pointer = _cuda(cudart.cudaMalloc(array.nbytes))
            self._device_inputs[name] = (pointer, array.nbytes)
            self.context.set_tensor_address(name, pointer)
        self._host_inputs = [n for n in ring.arrays if n not in spec.states]
        self._slot_copies = []  # (ring pointer, slot output pointer, ring row bytes, slot bytes, rows)
        for name, output in spec.states.items():
            shape = ring.arrays[name].shape
            axis = spec.slot_axes[name]
            inner = int(np.prod(shape[axis + 1 :])) * ring.arrays[name].itemsize
            slot_bytes = self.manifest.spec(output).shape[axis] * inner
            pointer = _cuda(cudart.cudaMalloc(slot_bytes * int(np.prod(shape[:axis]))))
            self.context.set_tensor_address(output, pointer)
            ring_pointer, ring_bytes = self._device_inputs[name]
            row_bytes = shape[axis] * inner
            self._slot_copies.append((ring_pointer, pointer, row_bytes, slot_bytes, ring_bytes // row_bytes))

    def _bind_state(self, read: int) -> None:
        manifest = self.manifest
        for spec, pointer in zip(manifest.inputs[1:], self._device_states[read], strict=True):
            self.context.set_tensor_address(spec.name, pointer)
        for spec, pointer in zip(manifest.outputs[1:], self._device_states[1 - read], strict=True):
            self.context.set_tensor_address(spec.name, pointer)

    def reset(self) -> None:
        if self._ring is not None:
            self._ring.reset()
            buffers = list(self._device_inputs.values())
        else:
            buffers = [
                (pointer, nbytes)
                for states in self._device_states
                for pointer, nbytes in zip(states, self._state_nbytes, strict=True)
            ]
            self._current = 0
        for pointer, nbytes in buffers:
            _cuda(self._cudart.cudaMemsetAsync(pointer, 0, nbytes, self.stream))
        _cuda(self._cudart.cudaStreamSynchronize(self.stream))

    def _upload(self, pointer: int, host: np.ndarray) -> None:
        _cuda(
            self._cudart.cudaMemcpyAsync(
                pointer,
                host.ctypes.data,
                host.nbytes,
                self._cudart.cudaMemcpyKind.cudaMemcpyHostToDevice,
                self.stream,
            )
        )

    def step(self, features: np.ndarray) -> np.ndarray:
        cudart = self._cudart
        self.check_features(features)
        np.copyto(self._features, features, casting="same_kind")
        self._upload(self._device_features, self._features)
        if self._ring is not None:
            for name in self._host_inputs:
                self._upload(self._device_inputs[name][0], self._ring.arrays[name])
        else:
            self._bind_state(self._current)
        if not self.context.execute_async_v3(self.stream):
            raise RuntimeError("TensorRT execute_async_v3 failed")
        if self._ring is not None:
            self._write_slots()
        _cuda(
            cudart.cudaMemcpyAsync(
                self._kinematics.ctypes.data,
                self._device_kinematics,
                self._kinematics.nbytes,
                cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost,
                self.stream,
            )
        )
        _cuda(cudart.cudaStreamSynchronize(self.stream))
        if self._ring is not None:
            self._ring.advance(write_rings=False)
        else:
            self._current ^= 1
        return self._kinematics.copy()

    def _write_slots(self) -> None:
        """Copy each slot output into its ring at this step's slot, on the device (one 2D copy per ring)."""
        cudart = self._cudart
        slot = self._ring.slot
        for ring_pointer, slot_pointer, row_bytes, slot_bytes, rows in self._slot_copies:
            _cuda(
                cudart.cudaMemcpy2DAsync(
                    ring_pointer + slot * slot_bytes,
                    row_bytes,
                    slot_pointer,
                    slot_bytes,
                    slot_bytes,
                    rows,
                    cudart.cudaMemcpyKind.cudaMemcpyDeviceToDevice,
                    self.stream,
                )
            )

    def info(self) -> dict[str, Any]:
        return {**super().info(), **self._info}
