"""The streaming step: one bin's raw features + KV-cache state in -> kinematics + next state out.

The encoder attends over a sliding window of ``W`` bins, so a cache of the last
``W - 1`` bins' keys and values makes one step per bin compute exactly what the
full forward computes for the newest bin.

The cache is a shift window: every step drops the oldest bin and appends the newest.
In an ONNX graph the next state is a new tensor either way, so shifting costs the same
as writing one ring slot, and it pins every cache slot to a fixed offset from "now".
Keys are cached *unrotated* and rotated each step by their slot's offset, with tables
computed once. Nothing in the state counts steps, so step 1,440,000 (8 hours of 20 ms
bins) runs the same arithmetic as step 100: there is no position to lose precision.

This module is the torch reference (the torch backend runs it, and every artifact is
checked against it). The exported graph is :class:`~rtbci.runtime.ring.RingStep`, which
computes the same kinematics over ring-buffer state without shifting anything.
"""

from __future__ import annotations

import torch
from torch import nn

from rtbci.models.backbone import bin_rotary
from rtbci.models.decoder import Decoder

__all__ = ["HISTORY_STATE_NAMES", "STATE_NAMES", "FullWindowStep", "StreamingStep"]

# Input state name -> output state name, in graph order.
STATE_NAMES = {"k_cache": "k_cache_out", "v_cache": "v_cache_out", "valid": "valid_out"}
# The LFP convolution's extra state (tokenizers with ``history_bins > 0`` only).
HISTORY_STATE_NAMES = {"history": "history_out"}


class StreamingStep(nn.Module):
    """One-bin step of a :class:`~rtbci.models.Decoder` for one session (batch 1, static shapes).

    Parameters
    ----------
    decoder
        The decoder (in eval mode; dropout must be off).
    session_index
        Row of the session table this artifact serves.
    subject_index
        Row of the subject table, when the encoder has subject tokens.

    Notes
    -----
    State tensors (``P = (W - 1) * N`` cached tokens, ``H`` heads, ``L`` layers):
    ``k_cache`` and ``v_cache`` ``(L, H, P, head_dim)`` unrotated keys and values,
    ``valid`` ``(P,)`` 1.0 where a cached token is real (0.0 before the stream filled the window);
    with the LFP convolution also ``history`` ``(h, C, F)``, the normalised features of the
    last ``h`` bins (zeros, an average bin, before the stream filled it).
    """

    def __init__(self, decoder: Decoder, session_index: int, subject_index: int | None = None):
        super().__init__()
        encoder = decoder.encoder
        config = encoder.config
        if decoder.training:
            raise ValueError("put the decoder in eval() mode before building its streaming step")
        self.decoder = decoder
        self.n_tokens = encoder.n_tokens
        self.window_bins = config.window_bins
        channels, features = config.n_channels, config.n_features
        self.input_shape = (channels,) if config.modality == "spikes" else (channels, features)
        self.register_buffer("session", torch.tensor([session_index]), persistent=False)
        subject = torch.tensor([subject_index]) if subject_index is not None else None
        self.register_buffer("subject", subject, persistent=False)
        # Slot order is bin order: cached bins at positions 0 .. W-2, the new bin at W-1.
        key_cos, key_sin = bin_rotary(self.window_bins, self.n_tokens, encoder.head_dim, torch.device("cpu"))
        query_cos, query_sin = key_cos[-self.n_tokens :], key_sin[-self.n_tokens :]
        for name, table in [
            ("key_cos", key_cos),
            ("key_sin", key_sin),
            ("query_cos", query_cos),
            ("query_sin", query_sin),
        ]:
            self.register_buffer(name, table, persistent=False)
        self.eval()  # a serving module; dropout stays off

    @property
    def cached_tokens(self) -> int:
        return (self.window_bins - 1) * self.n_tokens

    @property
    def state_names(self) -> dict[str, str]:
        """Input state name -> output state name, in graph order."""
        history = HISTORY_STATE_NAMES if self.decoder.encoder.tokenizer.history_bins else {}
        return {**STATE_NAMES, **history}

    def initial_state(self) -> tuple[torch.Tensor, ...]:
        """Fresh ``(k_cache, v_cache, valid[, history])``: an empty window."""
        encoder = self.decoder.encoder
        config = encoder.config
        shape = (config.n_layers, config.n_heads, self.cached_tokens, encoder.head_dim)
        device = self.key_cos.device
        state = (
            torch.zeros(shape, device=device),
            torch.zeros(shape, device=device),
            torch.zeros(self.cached_tokens, device=device),
        )
        history_bins = encoder.tokenizer.history_bins
        if history_bins:
            state += (torch.zeros(history_bins, config.n_channels, config.n_features, device=device),)
        return state

    def forward(
        self,
        features: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
        valid: torch.Tensor,
        *history: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        """Decode one bin.

        Parameters
        ----------
        features
            ``(C,)`` spike counts or ``(C, F)`` raw LFP features of the newest bin.
        k_cache, v_cache, valid, history
            The state returned by the previous step (or :meth:`initial_state`);
            ``history`` only with the LFP convolution.

        Returns
        -------
        tuple
            ``kinematics (K,)`` and the next ``k_cache, v_cache, valid[, history]``.
        """
        encoder = self.decoder.encoder
        tokenizer = encoder.tokenizer
        N = self.n_tokens
        x = features.reshape(1, 1, encoder.config.n_channels, encoder.config.n_features)
        values = tokenizer.channel_values(x)
        past = history[0][None] if history else None
        h = tokenizer.embed_values(values, self.session, self.subject, history=past).reshape(1, N, -1)
        key_valid = torch.cat([valid > 0.5, torch.ones(N, dtype=torch.bool, device=valid.device)])
        mask = key_valid[None, None, None, :]
        query_rotary, key_rotary = (self.query_cos, self.query_sin), (self.key_cos, self.key_sin)
        new_keys, new_values = [], []
        for layer, block in enumerate(encoder.blocks):
            h, k, v = block.forward_cached(
                h, k_cache[layer : layer + 1], v_cache[layer : layer + 1], query_rotary, key_rotary, mask
            )
            new_keys.append(torch.cat([k_cache[layer, :, N:], k[0]], dim=1))
            new_values.append(torch.cat([v_cache[layer, :, N:], v[0]], dim=1))
        pooled = encoder.norm(h).mean(dim=1)
        kinematics = self.decoder.head(pooled)[0]
        next_valid = torch.cat([valid[N:], torch.ones(N, dtype=valid.dtype, device=valid.device)])
        next_state = (torch.stack(new_keys), torch.stack(new_values), next_valid)
        if history:
            next_state += (torch.cat([history[0][1:], values[0]]),)
        return (kinematics, *next_state)


class FullWindowStep(nn.Module):
    """Baseline: re-encode the whole window of ``W`` bins every bin and read out the newest.

    This is what published real-time transformer decoders do; the benchmark compares
    it with :class:`StreamingStep`.
    """

    def __init__(self, decoder: Decoder, session_index: int, subject_index: int | None = None):
        super().__init__()
        self.decoder = decoder
        self.register_buffer("session", torch.tensor([session_index]), persistent=False)
        subject = torch.tensor([subject_index]) if subject_index is not None else None
        self.register_buffer("subject", subject, persistent=False)
        self.eval()

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        """``(W, C, F)`` raw features, oldest first -> ``(K,)`` kinematics of the newest bin."""
        return self.decoder(window[None], self.session, self.subject)[0, -1]
