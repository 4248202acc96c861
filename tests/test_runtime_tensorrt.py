"""TensorRT backend logic against a stand-in for TensorRT and cuda-python.

There is no GPU or TensorRT here, so this stands in for exactly those two libraries:
"device memory" is a dict of numpy buffers, and the "engine" runs the same ONNX graph
in ONNX Runtime. What is tested is rtbci's own code: engine caching by key, buffer
allocation, the rings on the device and their slot copies, copies in and out, reset and
the errors. The real libraries are exercised by ``test_tensorrt_equals_torch`` in
test_runtime_backends.py, which runs where TensorRT and a GPU exist.
"""

# The stand-in mirrors cuda-python's CUDA names (cudaMalloc, cudaMemcpyKind, ...) exactly.
# ruff: noqa: N802, N815

from __future__ import annotations

import ctypes
import sys
import types
from types import SimpleNamespace

import numpy as np
import onnxruntime as ort
import pytest
import torch
from test_runtime_backends import assert_matches_reference_and_resets, write_checkpoint

from rtbci.runtime import load_backend
from rtbci.runtime.backends.tensorrt_backend import TensorRTUnavailableError
from rtbci.runtime.export import export_artifact


class FakeCudaRuntime(types.ModuleType):
    """Just the cuda-python runtime calls the backend makes, on host memory."""

    cudaMemcpyKind = SimpleNamespace(
        cudaMemcpyHostToDevice=1, cudaMemcpyDeviceToHost=2, cudaMemcpyDeviceToDevice=3
    )

    def __init__(self, n_devices: int = 1):
        super().__init__("cuda.bindings.runtime")
        self.n_devices = n_devices
        self.memory: dict[int, np.ndarray] = {}
        self._next = 4096

    def cudaGetDeviceCount(self):
        return (0, self.n_devices)

    def cudaSetDevice(self, device):
        return (0,)

    def cudaGetDeviceProperties(self, device):
        return (0, SimpleNamespace(name=b"Stand-in GPU\x00\x00"))

    def cudaStreamCreate(self):
        return (0, 1)

    def cudaStreamSynchronize(self, stream):
        return (0,)

    def cudaMalloc(self, nbytes):
        pointer = self._next
        self._next += nbytes + 4096
        self.memory[pointer] = np.full(nbytes, 0xAB, dtype=np.uint8)  # garbage, like real cudaMalloc
        return (0, pointer)

    def cudaMemsetAsync(self, pointer, value, nbytes, stream):
        self.memory[pointer][:nbytes] = value
        return (0,)

    def cudaMemcpyAsync(self, dst, src, nbytes, kind, stream):
        if kind == self.cudaMemcpyKind.cudaMemcpyHostToDevice:
            self.memory[dst][:nbytes] = np.frombuffer((ctypes.c_uint8 * nbytes).from_address(src), np.uint8)
        else:
            ctypes.memmove(dst, self.memory[src].ctypes.data, nbytes)
        return (0,)

    def cudaMemcpy2DAsync(self, dst, dpitch, src, spitch, width, height, kind, stream):
        assert kind == self.cudaMemcpyKind.cudaMemcpyDeviceToDevice
        base = max(p for p in self.memory if p <= dst)  # a slot inside a ring allocation
        target, source = self.memory[base], self.memory[src]
        for row in range(height):
            start = dst - base + row * dpitch
            target[start : start + width] = source[row * spitch : row * spitch + width]
        return (0,)


def fake_tensorrt(cudart: FakeCudaRuntime) -> types.ModuleType:
    """TensorRT 10's build and run calls; the 'engine' is the ONNX graph run by ONNX Runtime."""
    trt = types.ModuleType("tensorrt")
    trt.__version__ = "10.99-standin"
    trt.builds = []
    trt.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda self, level: None})
    trt.MemoryPoolType = SimpleNamespace(WORKSPACE="workspace")
    trt.BuilderFlag = SimpleNamespace(FP16="fp16")

    class Network:
        model = b""

    class Parser:
        num_errors = 0

        def __init__(self, network, logger):
            self.network = network

        def parse(self, data):
            self.network.model = data
            return True

    class Config:
        def __init__(self):
            self.flags = set()

        def set_memory_pool_limit(self, pool, size):
            assert pool == "workspace" and size > 0

        def set_flag(self, flag):
            self.flags.add(flag)

    class Builder:
        def __init__(self, logger):
            pass

        def create_network(self, flags):
            assert flags == 0
            return Network()

        def create_builder_config(self):
            return Config()

        def build_serialized_network(self, network, config):
            trt.builds.append(config.flags)
            return network.model

    class Context:
        def __init__(self, model):
            self.session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
            self.addresses = {}

        def set_tensor_address(self, name, pointer):
            self.addresses[name] = pointer

        def execute_async_v3(self, stream):
            def view(meta):
                dtype = np.int64 if meta.type == "tensor(int64)" else np.float32
                return cudart.memory[self.addresses[meta.name]].view(dtype).reshape(meta.shape)

            feeds = {meta.name: view(meta).copy() for meta in self.session.get_inputs()}
            for meta, value in zip(self.session.get_outputs(), self.session.run(None, feeds), strict=True):
                view(meta)[...] = value
            return True

    class Engine:
        def __init__(self, model):
            self.model = model

        def create_execution_context(self):
            return Context(self.model)

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, data):
            return Engine(bytes(data))

    trt.OnnxParser, trt.Builder, trt.Runtime = Parser, Builder, Runtime
    return trt


def install(monkeypatch, n_devices: int = 1):
    cudart = FakeCudaRuntime(n_devices)
    trt = fake_tensorrt(cudart)
    cuda = types.ModuleType("cuda")
    bindings = types.ModuleType("cuda.bindings")
    bindings.runtime = cudart
    cuda.bindings = bindings
    for name, module in {
        "tensorrt": trt,
        "cuda": cuda,
        "cuda.bindings": bindings,
        "cuda.bindings.runtime": cudart,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)
    return trt


@pytest.fixture
def artifact(tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # batch-1 steps: extra threads only wait on each other on 2 shared cores
    write_checkpoint(tmp_path / "model.pt")
    export_artifact(tmp_path / "model.pt", tmp_path / "art", parity_steps=20)
    yield tmp_path / "art"
    torch.set_num_threads(threads)


def test_tensorrt_backend_steps_like_torch_and_caches_its_engine(artifact, monkeypatch):
    trt = install(monkeypatch)
    backend = load_backend("tensorrt", artifact, device="cuda")
    assert len(trt.builds) == 1 and backend.engine_path.is_file()
    assert backend.info()["gpu"] == "Stand-in GPU" and backend.info()["tensorrt"] == "10.99-standin"
    assert_matches_reference_and_resets(backend, artifact, 120, seed=2, atol=1e-4)
    load_backend("tensorrt", artifact, device="cuda")
    assert len(trt.builds) == 1  # same graph, TensorRT version and GPU: the cached engine is reused
    fp16 = type(backend)(artifact, device="cuda", fp16=True)
    assert trt.builds[-1] == {"fp16"} and fp16.engine_path != backend.engine_path


def test_tensorrt_without_a_gpu_says_so(artifact, monkeypatch):
    install(monkeypatch, n_devices=0)
    with pytest.raises(TensorRTUnavailableError, match="no CUDA GPU"):
        load_backend("tensorrt", artifact, device="cuda")
