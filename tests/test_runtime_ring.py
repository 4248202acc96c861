"""The ring-step artifact in ONNX Runtime against torch, far past ring wrap; its fused-model cache."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from test_runtime_backends import reference_step, write_checkpoint

from rtbci.runtime import load_backend, read_manifest
from rtbci.runtime.backends.onnxruntime_backend import fused_model_path
from rtbci.runtime.export import export_artifact, parity_inputs

# Past 200 wraps of the 49-slot ring, and far enough that float32 step-count phases would have drifted.
LONG_RUN_STEPS = 10_000


@pytest.fixture(scope="module")
def conv_artifact(tmp_path_factory):
    """The default-size LFP decoder with the LFP convolution (rings for keys, values and history)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # batch-1 steps on a shared 2-core machine
    root = tmp_path_factory.mktemp("ring")
    write_checkpoint(root / "model.pt", conv_bins=10)
    export_artifact(root / "model.pt", root / "art", parity_steps=60)
    yield root / "art"
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_ring_step_matches_torch_over_10000_steps_and_reset_repeats_the_first_step(conv_artifact):
    step = reference_step(conv_artifact)
    backend = load_backend("onnxruntime", conv_artifact)
    bins = parity_inputs(step, LONG_RUN_STEPS, seed=11)
    state = step.initial_state()
    worst, first = 0.0, None
    with torch.no_grad():
        for features in bins:
            expected, *state = step(torch.from_numpy(features), *state)
            decoded = backend.step(features)
            first = decoded if first is None else first
            worst = max(worst, float(np.abs(decoded - expected.numpy()).max()))
    assert worst <= 1e-4
    backend.reset()
    np.testing.assert_array_equal(backend.step(bins[0]), first)


def test_reset_mid_ring_repeats_the_first_steps(conv_artifact):
    backend = load_backend("onnxruntime", conv_artifact)
    bins = parity_inputs(reference_step(conv_artifact), 130, seed=12)
    first = np.stack([backend.step(b) for b in bins[:60]])  # past one wrap of the ring
    for b in bins[60:]:
        backend.step(b)
    backend.reset()
    np.testing.assert_array_equal(np.stack([backend.step(b) for b in bins[:60]]), first)


def test_graph_is_small_by_construction(conv_artifact):
    graph = onnx.load(str(conv_artifact / "decoder.onnx")).graph
    ops = [node.op_type for node in graph.node]
    # The rings are read, never sliced or concatenated: no Slice at all, and Concat only of scores and
    # the tokenizer's few small tensors.
    assert "Slice" not in ops
    ring_inputs = set(read_manifest(conv_artifact).ring.states)
    for node in graph.node:
        if node.op_type == "Concat":
            assert not ring_inputs & set(node.input)


def test_fused_model_is_cached_beside_the_artifact_by_hash_and_version(conv_artifact):
    manifest = read_manifest(conv_artifact)
    fused = fused_model_path(conv_artifact / "decoder.onnx", manifest.sha256)
    assert fused.is_file()  # written when the export's parity check first loaded the graph
    fused.unlink()
    backend = load_backend("onnxruntime", conv_artifact)
    assert fused.is_file()
    written = fused.stat().st_mtime_ns
    again = load_backend("onnxruntime", conv_artifact)
    assert fused.stat().st_mtime_ns == written  # read, not fused again
    zeros = np.zeros((96, 5), dtype=np.float32)
    np.testing.assert_array_equal(backend.step(zeros), again.step(zeros))
    assert {n.domain for n in onnx.load(str(fused)).graph.node} >= {"com.microsoft"}  # ORT's fused kernels
