"""The ring step: the exported form of :class:`~rtbci.runtime.streaming.StreamingStep`, small by construction.

:class:`StreamingStep` is the torch reference. It shifts its whole cache every bin, which in
an ONNX graph means slicing and concatenating every cached key and value each step.
:class:`RingStep` computes the same kinematics with a state that the backend keeps as rings:

- each layer's keys and values are inputs of their own, ``(H, S * N, head_dim)`` for
  ``S = W - 1`` cached bins of ``N`` tokens; the graph only reads them and outputs the new
  bin's keys and values ``(H, N, head_dim)``, which the backend writes in place at the ring
  slot ``t mod S`` (see :class:`~rtbci.runtime.manifest.RingSpec`);
- keys are cached rotated by their bin's absolute rotary phase, and queries are rotated by
  the newest bin's phase, so only the ``N`` new tokens are rotated each step. The backend
  passes that phase in as ``rotary`` ``(2, 1, head_dim / 2)`` (cosine, sine), computed in
  float64 from the step count modulo 2π (:class:`~rtbci.runtime.backends.base.RingState`):
  step 1,440,000 is as exact as step 100;
- the LFP convolution reads its history from a ring of normalised bins ``(S, C, F)``
  at the slots of the last ``h`` bins (a table gathered by ``position``);
- everything that does not change per step is folded into constants: the normalisation,
  the attention scale, the session, subject and token embeddings (one bias), the channel
  grouping and stitching (one matrix, or none for plain patches), rotate-half (extra weight
  columns), the output projection per head and the token mean of the head.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional

from rtbci.models.backbone import RMSNorm, rotary_frequencies
from rtbci.models.decoder import Decoder

__all__ = ["RingStep"]

POSITION = "position"
ROTARY = "rotary"
VALID = "valid"
HISTORY = "history"


def _norm(x: torch.Tensor, norm: RMSNorm) -> torch.Tensor:
    """RMSNorm written as ONNX Runtime's SimplifiedLayerNormalization fusion expects it."""
    return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + norm.eps) * norm.weight


class RingStep(nn.Module):
    """One-bin step of a :class:`~rtbci.models.Decoder` over ring-buffer state, for export.

    Parameters
    ----------
    decoder
        The decoder, in eval mode.
    session_index
        Row of the session table this artifact serves.
    subject_index
        Row of the subject table, when the encoder has subject tokens.

    Notes
    -----
    Inputs, in order: ``features``, ``position`` (int64 scalar, the ring slot of this bin;
    only with the LFP convolution), ``rotary``, ``valid`` ``(S * N,)`` (1.0 where a ring
    slot holds a bin), ``k_cache_0 .. k_cache_{L-1}``, ``v_cache_0 .. v_cache_{L-1}`` and
    ``history`` (with the LFP convolution). Outputs: ``kinematics``, ``k_new_0 ..``,
    ``v_new_0 ..`` and ``history_new`` ``(1, C, F)``.
    """

    def __init__(self, decoder: Decoder, session_index: int, subject_index: int | None = None):
        super().__init__()
        if decoder.training:
            raise ValueError("put the decoder in eval() mode before building its ring step")
        encoder = decoder.encoder
        config = encoder.config
        tokenizer = encoder.tokenizer
        self.decoder = decoder
        self.n_tokens = N = encoder.n_tokens
        self.n_heads = config.n_heads
        self.head_dim = hd = encoder.head_dim
        self.slots = config.window_bins - 1
        self.n_channels, self.n_features = config.n_channels, config.n_features
        self.spikes = config.modality == "spikes"
        self.input_shape = (config.n_channels,) if self.spikes else (config.n_channels, config.n_features)
        self.history_bins = tokenizer.history_bins  # <= slots, by check_lfp_conv_bins
        self.inv_freq = rotary_frequencies(hd)
        with torch.no_grad():
            self._fold_tokenizer(decoder, session_index, subject_index)
            self._fold_blocks(decoder)
            head = decoder.head.linear
            self.register_buffer("head_weight", (head.weight.T / N).repeat(N, 1), persistent=False)
            self.register_buffer("head_bias", head.bias.clone(), persistent=False)
        v_rotary = torch.tensor([1.0, 0.0])[:, None, None].expand(2, 1, self.head_dim).clone()
        self.register_buffer("v_rotary", v_rotary, persistent=False)  # values are not rotated
        self.eval()

    def _fold_tokenizer(self, decoder: Decoder, session_index: int, subject_index: int | None) -> None:
        encoder = decoder.encoder
        config, tokenizer = encoder.config, encoder.tokenizer
        if not self.spikes:
            self.register_buffer("feature_mean", tokenizer.feature_mean.clone(), persistent=False)
            scale = tokenizer.channel_live[:, None] / tokenizer.feature_std
            self.register_buffer("feature_scale", scale, persistent=False)
        if tokenizer.temporal is not None:
            conv = tokenizer.temporal.conv  # weight (out, F, bins): input index (bin, feature) -> bin * F + f
            weight = conv.weight.permute(2, 1, 0).reshape(-1, conv.out_channels)
            self.register_buffer("conv_weight", weight.clone(), persistent=False)
            self.register_buffer("conv_bias", conv.bias.clone(), persistent=False)
            h = self.history_bins
            index = [[(p - h + i) % self.slots for i in range(h)] for p in range(self.slots)]
            self.register_buffer("history_index", torch.tensor(index, dtype=torch.long), persistent=False)
        session = torch.tensor([session_index])
        mix = torch.eye(config.n_channels)
        if config.context == "stitching":
            mix = tokenizer.session_stitch(session)[0].T  # values' = stitch^T @ values
        group_index = tokenizer.group_index.reshape(-1)
        contiguous = torch.equal(group_index, torch.arange(config.n_channels))
        if contiguous and config.context != "stitching":
            self.register_buffer("group_matrix", None, persistent=False)
        else:
            padded = torch.cat([mix, torch.zeros(1, config.n_channels)])  # row C: the padding channel
            self.register_buffer("group_matrix", padded[group_index].clone(), persistent=False)
        bias = tokenizer.project.bias + tokenizer.token_embedding
        if config.context == "embedding":
            bias = bias + tokenizer.session_context(session)[0]
        if config.n_subjects > 0:
            if subject_index is None:
                raise ValueError("this encoder has subject tokens: pass a subject index")
            bias = bias + tokenizer.subject_context(torch.tensor([subject_index]))[0]
        self.register_buffer("project_weight", tokenizer.project.weight.T.clone(), persistent=False)
        self.register_buffer("project_bias", bias.clone(), persistent=False)

    def _fold_blocks(self, decoder: Decoder) -> None:
        H, hd = self.n_heads, self.head_dim
        d = decoder.encoder.config.d_model
        projections, outputs, mlp_in, mlp_out = [], [], [], []
        for block in decoder.encoder.blocks:
            q, k, v = block.attn.qkv.weight.T.reshape(d, 3, H, hd).unbind(1)  # each (d, H, hd)
            q = q / math.sqrt(hd)  # the attention scale, folded
            half = hd // 2
            rotated = [torch.cat([-w[..., half:], w[..., :half]], dim=-1) for w in (q, k)]
            plain = torch.cat([q, k, v], dim=-1)  # (d, H, 3hd)
            turned = torch.cat([*rotated, torch.zeros_like(v)], dim=-1)
            projections.append(torch.stack([plain, turned], dim=1).reshape(d, -1).contiguous())
            outputs.append(block.attn.out.weight.T.contiguous())
            mlp = block.mlp
            mlp_in.append(torch.cat([mlp.gate.weight.T, mlp.up.weight.T], dim=1).contiguous())
            mlp_out.append(mlp.down.weight.T.contiguous())
        for name, tensors in [
            ("qkv", projections),
            ("attn_out", outputs),
            ("mlp_in", mlp_in),
            ("mlp_out", mlp_out),
        ]:
            for layer, tensor in enumerate(tensors):
                self.register_buffer(f"{name}_{layer}", tensor, persistent=False)
        self.hidden = decoder.encoder.blocks[0].mlp.down.in_features

    @property
    def n_layers(self) -> int:
        return len(self.decoder.encoder.blocks)

    @property
    def cached_tokens(self) -> int:
        return self.slots * self.n_tokens

    def input_names(self) -> list[str]:
        """Graph input names, in order."""
        names = ["features"] + ([POSITION] if self.history_bins else []) + [ROTARY, VALID]
        names += [f"k_cache_{i}" for i in range(self.n_layers)] + [
            f"v_cache_{i}" for i in range(self.n_layers)
        ]
        return names + ([HISTORY] if self.history_bins else [])

    def ring_outputs(self) -> dict[str, str]:
        """Ring input name -> the graph output holding this bin's slot."""
        pairs = {f"k_cache_{i}": f"k_new_{i}" for i in range(self.n_layers)}
        pairs |= {f"v_cache_{i}": f"v_new_{i}" for i in range(self.n_layers)}
        return pairs | ({HISTORY: f"{HISTORY}_new"} if self.history_bins else {})

    def ring_axes(self) -> dict[str, int]:
        """Ring input name -> the axis its slots lie along."""
        return {name: 0 if name == HISTORY else 1 for name in self.ring_outputs()}

    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        """Inputs of the first step after a reset: empty rings, slot 0, rotary phase 0."""
        inputs: tuple[torch.Tensor, ...] = (torch.zeros(self.input_shape),)
        if self.history_bins:
            inputs += (torch.tensor(0),)
        rotary = torch.stack([torch.ones(self.head_dim // 2), torch.zeros(self.head_dim // 2)])[:, None, :]
        inputs += (rotary, torch.zeros(self.cached_tokens))
        inputs += tuple(
            torch.zeros(self.n_heads, self.cached_tokens, self.head_dim) for _ in range(2 * self.n_layers)
        )
        if self.history_bins:
            inputs += (torch.zeros(self.slots, self.n_channels, self.n_features),)
        return inputs

    def forward(self, features: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Decode one bin; see the class notes for the inputs and outputs."""
        if self.history_bins:
            position, rotary, valid, *caches, history = state
        else:
            rotary, valid, *caches = state
        L, N = self.n_layers, self.n_tokens
        values, history_new = self._values(
            features, position if self.history_bins else None, history if self.history_bins else None
        )
        if self.group_matrix is not None:
            values = self.group_matrix @ values
        h = values.reshape(N, -1) @ self.project_weight + self.project_bias
        turn = torch.cat([rotary, rotary, rotary, rotary, self.v_rotary], dim=-1)  # (2, 1, 3hd)
        bias = torch.log(valid)  # 0 for a filled slot, -inf for an empty one
        new_keys, new_values = [], []
        for layer, block in enumerate(self.decoder.encoder.blocks):
            k_ring, v_ring = caches[layer], caches[L + layer]
            x = _norm(h, block.attn_norm) @ getattr(self, f"qkv_{layer}")  # (N, 2 * H * 3hd)
            qkv = (x.reshape(N, 2, self.n_heads, -1) * turn).sum(1).transpose(0, 1)  # (H, N, 3hd), rotated
            q, k, v = qkv.split(self.head_dim, dim=-1)
            scores = torch.cat([q @ k_ring.transpose(1, 2) + bias, q @ k.transpose(1, 2)], dim=-1)
            p_ring, p_new = torch.softmax(scores, dim=-1).split([self.cached_tokens, N], dim=-1)
            y = (p_ring @ v_ring + p_new @ v).transpose(0, 1).reshape(N, -1)
            h = h + y @ getattr(self, f"attn_out_{layer}")
            gate, up = (_norm(h, block.mlp_norm) @ getattr(self, f"mlp_in_{layer}")).split(
                self.hidden, dim=-1
            )
            h = h + (functional.silu(gate) * up) @ getattr(self, f"mlp_out_{layer}")
            new_keys.append(k)
            new_values.append(v)
        pooled = _norm(h, self.decoder.encoder.norm).reshape(1, -1)
        kinematics = (pooled @ self.head_weight + self.head_bias).reshape(-1)
        outputs = (kinematics, *new_keys, *new_values)
        return outputs + ((history_new,) if self.history_bins else ())

    def _values(
        self, features: torch.Tensor, position: torch.Tensor | None, history: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per-channel values ``(C, E)`` of the bin, and its history slot ``(1, C, F)`` (or None)."""
        tokenizer = self.decoder.encoder.tokenizer
        if self.spikes:
            return tokenizer.channel_values(features.reshape(1, 1, -1, 1))[0, 0], None
        if history is None:
            return (features - self.feature_mean) * self.feature_scale, None
        values = (features[None] - self.feature_mean) * self.feature_scale  # (1, C, F)
        earlier = history.index_select(0, self.history_index[position])  # (h, C, F), oldest first
        window = torch.cat([earlier, values]).transpose(0, 1).reshape(self.n_channels, -1)
        conv = functional.gelu(window @ self.conv_weight + self.conv_bias)
        return torch.cat([values[0], conv], dim=-1), values
