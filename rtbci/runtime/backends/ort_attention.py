"""Load-time rewrite of a ring step for ONNX Runtime: one fused attention node per layer.

The artifact stays a graph of standard ONNX ops (TensorRT builds from it). For ONNX Runtime
on CPU, :func:`fuse_attention` takes the graph as ONNX Runtime's own fusions leave it
(``ORT_ENABLE_EXTENDED``) and rewrites each layer of :class:`~rtbci.runtime.ring.RingStep`:

- the attention between the projection and the output projection (split, scores against
  the ring and against the new tokens, their concatenation, softmax, two value products,
  transposes and reshapes) becomes one ``com.microsoft.MultiHeadAttention`` that reads the
  ring as its past keys and values, with ``valid`` as its key mask (a masked slot's score
  is lowered by 10,000, so its weight is exactly 0 in float32, as with the export's log(0));
- the projection keeps only the plain half of the exported weights (the other half is its
  rotate-half copy, which the export weights by the step's sine): the step's rotation is
  one ``(3, head_dim, head_dim)`` matrix (queries, keys, values) applied per head, so every
  step reads a fifth fewer weights;
- the residual stream is ``(1, N, d)``: each output projection and MLP ends in a MatMul
  whose residual add is fused into the next norm (``SkipSimplifiedLayerNormalization``).

The rewritten graph reads each key and value ring as ``(1, H, S * N, head_dim)`` and
``valid`` as ``(1, S * N)`` (views of the backend's arrays), ``rotary`` as that rotation
matrix, and returns the new bin's keys and values tokens first, ``(1, N, H * head_dim)``,
which the backend writes into the rings (see ``tokens_first`` and ``rotation_matrix`` of
:class:`~rtbci.runtime.backends.base.RingState`). The graph records this in its metadata
(:data:`FUSION_KEY` is :data:`ATTENTION`). A graph of any other shape raises
:class:`FusionError`; the backend then runs ONNX Runtime's own fusions alone.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import onnx
from onnx import helper, numpy_helper

from rtbci.runtime.manifest import RingSpec

__all__ = ["ATTENTION", "FUSION_KEY", "FUSION_VERSION", "FusionError", "fuse_attention"]

# Part of the cache key of a fused model: a new rewrite never reads an older one's output.
FUSION_VERSION = 4
# Model metadata: which fusion the model had (ATTENTION, or why it had none).
FUSION_KEY = "rtbci.fusion"
ATTENTION = "attention"
MS_DOMAIN = "com.microsoft"
# What ONNX Runtime makes of the ring step's attention (between the query and the output projection).
ATTENTION_OPS = sorted(
    "FusedMatMul FusedMatMul Add Add Concat Softmax Split MatMul MatMul Transpose Reshape".split()
)


class FusionError(ValueError):
    """The graph is not a ring step as :mod:`rtbci.runtime.ring` exports it."""


class _Graph:
    """Producer, consumer and constant lookups over a graph's nodes."""

    def __init__(self, graph: onnx.GraphProto):
        self.graph = graph
        self.constants = {t.name: t for t in graph.initializer}
        self.producer = {out: node for node in graph.node for out in node.output if out}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)

    def produced(self, name: str, op_type: str) -> onnx.NodeProto:
        node = self.producer.get(name)
        if node is None or node.op_type != op_type:
            found = node.op_type if node is not None else "a graph input or constant"
            raise FusionError(f"{name!r} comes from {found}, not {op_type}")
        return node

    def consumer(self, name: str, op_type: str, input_index: int | None = None) -> onnx.NodeProto:
        nodes = [
            n
            for n in self.consumers.get(name, [])
            if n.op_type == op_type and (input_index is None or list(n.input).index(name) == input_index)
        ]
        if len(nodes) != 1:
            raise FusionError(f"{name!r} feeds {len(nodes)} {op_type} nodes, not one")
        return nodes[0]

    def constant(self, name: str) -> np.ndarray:
        if name not in self.constants:
            raise FusionError(f"{name!r} is not a constant")
        return numpy_helper.to_array(self.constants[name])

    def between(self, outputs: Iterable[str], stops: set[str]) -> list[onnx.NodeProto]:
        """Every node an output depends on, walking back no further than the names in ``stops``."""
        found: dict[int, onnx.NodeProto] = {}
        todo = [name for name in outputs if name not in stops]
        while todo:
            node = self.producer.get(todo.pop())
            if node is None or id(node) in found:
                continue
            found[id(node)] = node
            todo += [name for name in node.input if name and name not in stops and name not in self.constants]
        return list(found.values())


def _attribute(node: onnx.NodeProto, name: str, default: object = None) -> object:
    for attribute in node.attribute:
        if attribute.name == name:
            return helper.get_attribute_value(attribute)
    return default


def _gemm_weight(g: _Graph, gemm: onnx.NodeProto) -> np.ndarray:
    """The weight ``B`` of a residual Gemm ``A @ B + C`` as ``(in, out)``."""
    if (
        _attribute(gemm, "transA", 0)
        or _attribute(gemm, "alpha", 1.0) != 1.0
        or _attribute(gemm, "beta", 1.0) != 1.0
    ):
        raise FusionError(f"Gemm {gemm.name!r} is not A @ B + C")
    weight = g.constant(gemm.input[1])
    return weight.T if _attribute(gemm, "transB", 0) else weight


class _Projection:
    """One layer's exported query/key/value projection and rotary turn, walked back from its keys."""

    def __init__(self, g: _Graph, layer: int):
        self.split = g.produced(f"k_new_{layer}", "Split")
        if list(self.split.output[1:]) != [f"k_new_{layer}", f"v_new_{layer}"]:
            raise FusionError(f"layer {layer}: keys and values do not come from one split")
        self.transpose = g.produced(self.split.input[0], "Transpose")
        self.reduce = g.produced(self.transpose.input[0], "ReduceSum")
        self.mul = g.produced(self.reduce.input[0], "Mul")
        self.reshape = g.produced(self.mul.input[0], "Reshape")
        self.matmul = g.produced(self.reshape.input[0], "MatMul")
        self.norm = g.produced(self.matmul.input[0], "SimplifiedLayerNormalization")
        self.query = self.split.output[0]

    @property
    def nodes(self) -> tuple[onnx.NodeProto, ...]:
        return self.split, self.transpose, self.reduce, self.mul, self.reshape, self.matmul


class _Rewrite:
    """The nodes and constants that replace the attention and residual ops of each layer."""

    def __init__(self, model: onnx.ModelProto, ring: RingSpec):
        self.g = _Graph(model.graph)
        self.ring = ring
        self.removed: dict[int, onnx.NodeProto] = {}
        self.added: list[onnx.NodeProto] = []
        self.constants: list[onnx.TensorProto] = []
        shapes = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
        self.n_layers = sum(name.startswith("k_cache_") for name in ring.states)
        if self.n_layers == 0 or "k_cache_0" not in shapes:
            raise FusionError("no key rings")
        self.heads, cached, self.head_dim = shapes["k_cache_0"]
        self.n_tokens = ring.n_tokens
        if cached != ring.slots * ring.n_tokens:
            raise FusionError(f"key ring of {cached} tokens, expected {ring.slots} x {ring.n_tokens}")
        self.width = self.heads * self.head_dim
        self.projections = [_Projection(self.g, i) for i in range(self.n_layers)]

    def remove(self, *nodes: onnx.NodeProto) -> None:
        for node in nodes:
            self.removed[id(node)] = node

    def constant(self, name: str, value: np.ndarray) -> str:
        self.constants.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op_type: str, inputs: list[str], outputs: list[str], **kwargs: object) -> None:
        self.added.append(helper.make_node(op_type, inputs, outputs, name=f"rtbci/{outputs[0]}", **kwargs))

    def run(self) -> None:
        rotation, mask, log = self.shared()
        residual = self.projections[0].norm.input[0]
        for i, projection in enumerate(self.projections):
            down, added, skip = self.layer(i, projection, residual, rotation, mask, log)
            # The norm that reads this layer's output: the next layer's attention norm, or the final norm.
            norm = self.g.consumer(down.output[0], "SimplifiedLayerNormalization")
            if i + 1 < self.n_layers and norm is not self.projections[i + 1].norm:
                raise FusionError(f"layer {i + 1} does not read layer {i}'s output")
            residual = down.output[0]
            self.skip_norm(norm, added, skip, residual)

    def shared(self) -> tuple[str, str, str]:
        """The rotation of every layer's queries, keys and values, and the attention's key mask.

        The exported step turns its queries and keys with doubled weights (plain and
        rotated-half columns, weighted by the phase's cosine and sine). Here the plain
        weights are kept and the step's rotation is one ``(3, hd, hd)`` matrix for the
        queries, keys (rotary) and values (identity), which the backend feeds as ``rotary``.
        """
        g, hd, N = self.g, self.head_dim, self.n_tokens
        turn = g.produced(self.projections[0].mul.input[1], "Concat")
        rotary, *rest = turn.input
        if rotary != self.ring.rotary_input or list(rest[:-1]) != [rotary] * 3:
            raise FusionError("the rotary turn is not the ring step's")
        if not np.array_equal(g.constant(rest[-1]), np.array([[[1.0] * hd], [[0.0] * hd]])):
            raise FusionError("the values' turn is not the identity")
        logs = [n for n in g.graph.node if n.op_type == "Log"]
        if len(logs) != 1 or logs[0].input[0] != self.ring.valid_input:
            raise FusionError("the attention mask is not log(valid)")
        self.remove(turn, logs[0])
        self.node("Cast", [self.ring.valid_input], ["rtbci/ring_mask"], to=onnx.TensorProto.INT32)
        new = self.constant("rtbci/bin_mask", np.ones((1, N), dtype=np.int32))
        self.node("Concat", ["rtbci/ring_mask", new], ["rtbci/key_mask"], axis=1)
        return rotary, "rtbci/key_mask", logs[0].output[0]

    def layer(
        self, i: int, projection: _Projection, residual: str, rotation: str, mask: str, log: str
    ) -> tuple[onnx.NodeProto, str, str]:
        """Rewrite layer ``i``; returns its residual Gemm after the MLP, its MLP output and its residual."""
        g, H, hd, N, D = self.g, self.heads, self.head_dim, self.n_tokens, self.width
        weight = g.constant(projection.matmul.input[1])
        d = weight.shape[0]
        if weight.shape != (d, 2 * H * 3 * hd):
            raise FusionError(f"layer {i}: projection of shape {weight.shape}")
        plain, turned = weight.reshape(d, 2, H, 3, hd).transpose(1, 0, 3, 2, 4)  # each (d, q|k|v, head, hd)
        half = hd // 2
        rotated = np.concatenate([-plain[:, :2, :, half:], plain[:, :2, :, :half]], axis=-1)
        if not (np.array_equal(turned[:, :2], rotated) and not turned[:, 2].any()):
            raise FusionError(f"layer {i}: the projection's second half is not its rotated half")
        out = g.consumer(residual, "Gemm", input_index=2)
        ends = {projection.query, f"k_new_{i}", f"v_new_{i}", f"k_cache_{i}", f"v_cache_{i}", log}
        attention = g.between([out.input[0]], ends)
        ops = sorted(n.op_type for n in attention)
        if ops != ATTENTION_OPS:
            raise FusionError(f"layer {i}: attention ops {ops}, expected {ATTENTION_OPS}")
        if any(_attribute(n, "alpha", 1.0) != 1.0 for n in attention if n.op_type == "FusedMatMul"):
            raise FusionError(f"layer {i}: scaled scores (the ring step folds the scale into the queries)")
        self.remove(*projection.nodes, out, *attention)
        p = f"rtbci/layer_{i}"
        weight = self.constant(f"{p}/qkv_weight", plain.reshape(d, 3 * D))
        self.node("MatMul", [projection.matmul.input[0], weight], [f"{p}/plain"])
        shape = self.constant(f"{p}/heads_shape", np.array([1, N, 3, H, hd], dtype=np.int64))
        self.node("Reshape", [f"{p}/plain", shape], [f"{p}/heads"])
        self.node("MatMul", [f"{p}/heads", rotation], [f"{p}/rotated"])
        shape = self.constant(f"{p}/qkv_shape", np.array([1, N, 3 * D], dtype=np.int64))
        self.node("Reshape", [f"{p}/rotated", shape], [f"{p}/qkv"])
        self.node("Split", [f"{p}/qkv"], [f"{p}/query", f"k_new_{i}", f"v_new_{i}"], axis=-1)
        self.node(
            "MultiHeadAttention",
            [f"{p}/query", f"k_new_{i}", f"v_new_{i}", "", mask, "", f"k_cache_{i}", f"v_cache_{i}"],
            # Present keys and values unused, but asked for: without them the CPU kernel does not attend
            # to the past (microsoft/onnxruntime#28027); ONNX Runtime 1.32 returned wrong outputs here.
            [f"{p}/attention", f"{p}/keys", f"{p}/values"],
            domain=MS_DOMAIN,
            num_heads=H,
            scale=1.0,  # the exported query weights carry the attention scale
        )
        self.node(
            "MatMul", [f"{p}/attention", self.constant(f"{p}/out_weight", _gemm_weight(g, out))], [f"{p}/out"]
        )
        down = g.consumer(out.output[0], "Gemm", input_index=2)
        self.skip_norm(
            g.consumer(out.output[0], "SimplifiedLayerNormalization"), f"{p}/out", residual, f"{p}/residual"
        )
        self.remove(down)
        self.node(
            "MatMul", [down.input[0], self.constant(f"{p}/down_weight", _gemm_weight(g, down))], [f"{p}/down"]
        )
        return down, f"{p}/down", f"{p}/residual"

    def skip_norm(self, norm: onnx.NodeProto, added: str, skip: str, total: str) -> None:
        """Replace ``norm(skip + added)`` by one fused node that also outputs the sum as ``total``."""
        self.remove(norm)
        self.node(
            "SkipSimplifiedLayerNormalization",
            [added, skip, norm.input[1]],
            [norm.output[0], "", "", total],
            domain=MS_DOMAIN,
            epsilon=_attribute(norm, "epsilon", 1e-5),
        )


def fuse_attention(model: onnx.ModelProto, ring: RingSpec) -> onnx.ModelProto:
    """The ring step with one ``MultiHeadAttention`` per layer (see the module notes).

    Parameters
    ----------
    model
        The artifact's graph after ONNX Runtime's extended-level fusions.
    ring
        The artifact's ring.

    Raises
    ------
    FusionError
        If the graph is not shaped as the ring step exports it.
    """
    rewrite = _Rewrite(model, ring)
    rewrite.run()
    fused = onnx.ModelProto()
    fused.CopyFrom(model)
    graph = fused.graph
    kept = [n for n in model.graph.node if id(n) not in rewrite.removed]
    del graph.node[:]
    graph.node.extend(
        _topological(
            kept + rewrite.added,
            {i.name for i in graph.input}
            | {t.name for t in graph.initializer}
            | {t.name for t in rewrite.constants},
        )
    )
    graph.initializer.extend(rewrite.constants)
    used = {name for node in graph.node for name in node.input}
    unused = [t for t in graph.initializer if t.name not in used]
    for tensor in unused:
        graph.initializer.remove(tensor)
    del graph.value_info[:]
    H, hd, N = rewrite.heads, rewrite.head_dim, rewrite.n_tokens
    for value in graph.input:
        if value.name.startswith(("k_cache_", "v_cache_")):
            _set_shape(value, [1, H, ring.slots * N, hd])
        elif value.name == ring.rotary_input:
            _set_shape(value, [3, hd, hd])
        elif value.name == ring.valid_input:
            _set_shape(value, [1, ring.slots * N])
    for value in graph.output:
        if value.name.startswith(("k_new_", "v_new_")):
            _set_shape(value, [1, N, H * hd])
    if not any(o.domain == MS_DOMAIN for o in fused.opset_import):
        fused.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
    helper.set_model_props(fused, {FUSION_KEY: ATTENTION})
    return fused


def _set_shape(value: onnx.ValueInfoProto, shape: list[int]) -> None:
    dims = value.type.tensor_type.shape.dim
    del dims[:]
    for size in shape:
        dims.add().dim_value = size


def _topological(nodes: list[onnx.NodeProto], available: set[str]) -> list[onnx.NodeProto]:
    """``nodes`` ordered so that each comes after the producers of its inputs."""
    ready, ordered, waiting = set(available) | {""}, [], list(nodes)
    while waiting:
        still = []
        for node in waiting:
            if set(node.input) <= ready:
                ordered.append(node)
                ready.update(node.output)
            else:
                still.append(node)
        if len(still) == len(waiting):
            raise FusionError("the rewritten graph has a cycle or a missing input")
        waiting = still
    return ordered
