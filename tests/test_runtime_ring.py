"""The ring-step artifact in ONNX Runtime against torch, far past ring wrap; its fused-model cache."""

from __future__ import annotations

import collections
import logging
import shutil

import numpy as np
import onnx
import pytest
import torch
from test_runtime_backends import assert_matches_reference_and_resets, reference_step, write_checkpoint

from rtbci.runtime import load_backend, read_manifest
from rtbci.runtime.backends import onnxruntime_backend
from rtbci.runtime.backends.base import RingState
from rtbci.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend, fused_model, fused_model_path
from rtbci.runtime.backends.ort_attention import ATTENTION, FUSION_KEY, FusionError, fuse_attention
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
    assert backend.info()["fusion"] == ATTENTION  # the fused attention, as the engine runs it
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


@pytest.mark.parametrize("fuse_attention", [True, False])
def test_reset_mid_ring_repeats_the_first_steps(conv_artifact, fuse_attention):
    backend = OnnxRuntimeBackend(conv_artifact, fuse_attention=fuse_attention)
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
    fused_graph = onnx.load(str(fused))
    assert "MultiHeadAttention" in {n.op_type for n in fused_graph.graph.node}  # ORT's fused kernels
    assert {p.key: p.value for p in fused_graph.metadata_props}[FUSION_KEY] == ATTENTION


def test_fused_attention_has_few_nodes_and_standard_artifact_has_none(conv_artifact):
    manifest = read_manifest(conv_artifact)
    graph = conv_artifact / "decoder.onnx"
    ops = collections.Counter(n.op_type for n in fused_model(graph, manifest.ring).graph.node)
    assert ops["MultiHeadAttention"] == 4 and ops["Softmax"] == 0
    assert sum(ops.values()) <= 80 < len(fused_model(graph, None).graph.node)
    # The artifact itself stays standard ONNX, for TensorRT.
    assert {n.domain for n in onnx.load(str(graph)).graph.node} == {""}


def test_ort_fusions_alone_match_torch(conv_artifact):
    backend = OnnxRuntimeBackend(conv_artifact, fuse_attention=False)
    assert backend.info()["fusion"] == "onnxruntime"
    assert_matches_reference_and_resets(backend, conv_artifact, n_bins=130, seed=13, atol=1e-4)


def test_unrecognised_graph_is_refused_by_the_rewrite(conv_artifact):
    manifest = read_manifest(conv_artifact)
    model = fused_model(conv_artifact / "decoder.onnx", None)
    log = next(n for n in model.graph.node if n.op_type == "Log")
    log.op_type = "Exp"
    with pytest.raises(FusionError, match="log"):
        fuse_attention(model, manifest.ring)


def test_failed_fusion_runs_ort_fusions_and_says_so(conv_artifact, tmp_path, monkeypatch, caplog):
    artifact = tmp_path / "art"
    shutil.copytree(conv_artifact, artifact, ignore=shutil.ignore_patterns("*.ort-*"))

    def refuse(model, ring):
        raise FusionError("a graph of another shape")

    monkeypatch.setattr(onnxruntime_backend, "fuse_attention", refuse)
    with caplog.at_level(logging.WARNING, logger=onnxruntime_backend.__name__):
        backend = OnnxRuntimeBackend(artifact)
    assert "could not be fused" in caplog.text and "a graph of another shape" in caplog.text
    assert backend.info()["fusion"] == "none (a graph of another shape)"
    assert_matches_reference_and_resets(backend, artifact, n_bins=60, seed=14, atol=1e-4)


def test_rotation_matrix_turns_as_the_rotary_phase(conv_artifact):
    manifest = read_manifest(conv_artifact)
    plain, fused = RingState(manifest), RingState(manifest, rotation_matrix=True)
    for _ in range(1234):  # any step: the phase comes from the float64 step count
        plain.advance(), fused.advance()
    cos, sin = plain.arrays["rotary"][:, 0]
    x = np.random.default_rng(0).standard_normal(2 * len(cos))
    low, high = np.split(x, 2)
    rotation = fused.arrays["rotary"]
    np.testing.assert_allclose(
        x @ rotation[0], np.concatenate([low * cos - high * sin, high * cos + low * sin])
    )
    np.testing.assert_array_equal(rotation[0], rotation[1])  # queries and keys
    np.testing.assert_array_equal(rotation[2], np.eye(len(x)))  # values
    fused.reset()
    np.testing.assert_array_equal(fused.arrays["rotary"], np.stack([np.eye(len(x))] * 3))
