"""The neural encoder: tokenizer + sliding-window causal transformer -> per-token latents."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from rtbci.models.backbone import Block, RMSNorm, Rotary, bin_rotary, window_mask
from rtbci.models.config import EncoderConfig
from rtbci.models.tokenizer import Tokenizer

__all__ = ["Encoder", "EncoderConfig", "StepState"]


class StepState(NamedTuple):
    """What :meth:`Encoder.step` carries from one bin to the next (batch 1).

    The cache is a shift window: every step drops the oldest bin and appends the newest,
    so each cache slot sits at a fixed offset from "now". Keys are cached *unrotated* and
    rotated by their slot's offset each step. Nothing here counts steps, so step 1,440,000
    (8 hours of 20 ms bins) runs the same arithmetic as step 100.

    Attributes
    ----------
    k_cache, v_cache
        ``(L, H, P, head_dim)`` unrotated keys and values of the ``P = (W - 1) * N`` tokens
        of the last ``W - 1`` bins, oldest first.
    valid
        ``(P,)`` 1.0 where a cached token is real (0.0 before the stream filled the window).
    history
        ``(h, C, F)`` normalised features of the last ``h`` bins, read by the LFP
        convolution (zeros, an average bin, before the stream filled it); ``None`` without it.
    """

    k_cache: torch.Tensor
    v_cache: torch.Tensor
    valid: torch.Tensor
    history: torch.Tensor | None


class Encoder(nn.Module):
    """Tokenizer + sliding-window causal transformer.

    ``forward`` maps raw features ``(B, T, C, F)`` to latents ``(B, T, N, d)``; tokens of
    one bin see each other and the ``W - 1`` bins before. Normalization of raw LFP
    features is a pair of buffers (:meth:`set_normalization`), so training, export and
    serving all take raw features.
    """

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        self.tokenizer = Tokenizer(config)
        self.blocks = nn.ModuleList(
            [Block(config.d_model, config.n_heads, config.dropout) for _ in range(config.n_layers)]
        )
        self.norm = RMSNorm(config.d_model)
        # The step's rotary tables, by cache slot (the newest bin last): computed once, not saved.
        cos, sin = bin_rotary(config.window_bins, self.n_tokens, self.head_dim, torch.device("cpu"))
        self.register_buffer("step_cos", cos, persistent=False)
        self.register_buffer("step_sin", sin, persistent=False)

    @property
    def n_tokens(self) -> int:
        """Tokens per bin, ``N``."""
        return self.tokenizer.n_tokens

    @property
    def lookback_bins(self) -> int:
        """Bins before a bin that its latent reads, within one segment.

        The attention window's ``W - 1`` plus the LFP convolution's history
        (``Tokenizer.history_bins``).
        """
        return self.config.window_bins - 1 + self.tokenizer.history_bins

    @property
    def head_dim(self) -> int:
        return self.config.d_model // self.config.n_heads

    def set_normalization(self, mean: np.ndarray | torch.Tensor, std: np.ndarray | torch.Tensor) -> None:
        """Bake the z-scoring of raw LFP features into the model.

        Parameters
        ----------
        mean, std
            Broadcastable to ``(C, F)`` (per feature ``(F,)`` or per channel and feature).
        """
        shape = self.tokenizer.feature_mean.shape
        mean_t = torch.as_tensor(np.asarray(mean, dtype=np.float32)).expand(shape).clone()
        std_t = torch.as_tensor(np.asarray(std, dtype=np.float32)).expand(shape).clone()
        if not torch.all(std_t > 0):
            raise ValueError("normalization std must be positive everywhere")
        self.tokenizer.feature_mean.copy_(mean_t)
        self.tokenizer.feature_std.copy_(std_t)

    def add_sessions(self, n: int) -> list[str]:
        """Grow the session table by ``n`` entries (indices ``n_sessions .. n_sessions + n - 1``).

        Returns
        -------
        list of str
            Names (as in ``self.named_parameters()``) of the new parameters, so that
            calibration can train only them. Existing sessions' outputs are unchanged.
        """
        table_name = "session_context" if self.config.context == "embedding" else "session_stitch"
        local = self.tokenizer.session_table().grow(n)
        self.config.n_sessions += n
        return [f"tokenizer.{table_name}.{local}"]

    def forward(
        self,
        x: torch.Tensor,
        session: torch.Tensor,
        keep: torch.Tensor | None = None,
        subject: torch.Tensor | None = None,
        first_bin: int = 0,
    ) -> torch.Tensor:
        """Latents of every token.

        Parameters
        ----------
        x
            ``(B, T, C, F)`` raw features.
        session
            ``(B,)`` long session indices.
        keep
            ``(B, T, N)`` bool; tokens with False are hidden (MAE): the transformer
            runs on the kept tokens only, and hidden tokens' latents are zeros.
        subject
            ``(B,)`` long subject indices (when the config has subjects).
        first_bin
            Rotary position of the first bin. Outputs do not depend on it (only
            relative offsets matter); it exists to check exactness far into a stream.

        Returns
        -------
        torch.Tensor
            ``(B, T, N, d)`` latents.
        """
        tokens = self.tokenizer(x, session, subject)
        B, T, N, d = tokens.shape
        token_bins = torch.arange(T, device=x.device).repeat_interleave(N)
        rotary = bin_rotary(T, N, self.head_dim, x.device, first_bin)
        tokens = tokens.reshape(B, T * N, d)
        if keep is None:
            latents = self._transform(tokens, rotary, window_mask(token_bins, self.config.window_bins))
        else:
            latents = self._transform_kept(tokens, token_bins, rotary, keep.reshape(B, T * N))
        return latents.reshape(B, T, N, d)

    def _transform(self, h: torch.Tensor, rotary: Rotary, mask: torch.Tensor) -> torch.Tensor:
        """The blocks and the final norm on ``(B, L, d)`` tokens."""
        for block in self.blocks:
            h = block(h, rotary, mask)
        return self.norm(h)

    def _transform_kept(
        self, tokens: torch.Tensor, token_bins: torch.Tensor, rotary: Rotary, keep: torch.Tensor
    ) -> torch.Tensor:
        """The transformer on each sample's kept tokens only (as in NDT2's MAE): ``(B, L, d)`` out.

        Hidden tokens are seen by no other token, so leaving them out computes the
        same latents for the kept ones at about the cost of the kept share.
        """
        B, L, d = tokens.shape
        n_kept = int(keep.sum(dim=1).max())
        # A stable sort puts each sample's kept tokens first, still in time order.
        order = torch.argsort((~keep).to(torch.uint8), dim=1, stable=True)[:, :n_kept]
        # Samples that keep fewer tokens are padded with hidden ones, masked out as keys.
        kept = keep.gather(1, order)
        cos, sin = rotary
        kept_rotary = (cos[order][:, None], sin[order][:, None])
        mask = window_mask(token_bins[order], self.config.window_bins, kept)
        index = order[..., None].expand(B, n_kept, d)
        latents = self._transform(tokens.gather(1, index), kept_rotary, mask) * kept[..., None]
        return tokens.new_zeros(B, L, d).scatter(1, index, latents)

    def initial_step_state(self) -> StepState:
        """The state of :meth:`step` before the first bin: an empty window."""
        config, device = self.config, self.step_cos.device
        cached = (config.window_bins - 1) * self.n_tokens
        shape = (config.n_layers, config.n_heads, cached, self.head_dim)
        history_bins = self.tokenizer.history_bins
        history = (
            torch.zeros(history_bins, config.n_channels, config.n_features, device=device)
            if history_bins
            else None
        )
        return StepState(
            torch.zeros(shape, device=device),
            torch.zeros(shape, device=device),
            torch.zeros(cached, device=device),
            history,
        )

    def step(
        self,
        features: torch.Tensor,
        state: StepState,
        session: torch.Tensor,
        subject: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, StepState]:
        """The pooled latent of one new bin, from the cache of the bins before (batch 1, eval).

        Computes what :meth:`forward` followed by :meth:`pool` computes for the newest bin of
        a window, in one bin's work.

        Parameters
        ----------
        features
            ``(C,)`` spike counts or ``(C, F)`` raw LFP features of the newest bin.
        state
            The state the previous step returned (or :meth:`initial_step_state`).
        session, subject
            ``(1,)`` long indices, as for :meth:`forward`.

        Returns
        -------
        tuple
            The bin's pooled latent ``(1, d)`` and the next :class:`StepState`.
        """
        config, N = self.config, self.n_tokens
        x = features.reshape(1, 1, config.n_channels, config.n_features)
        values = self.tokenizer.channel_values(x)
        past = state.history[None] if state.history is not None else None
        h = self.tokenizer.embed_values(values, session, subject, history=past).reshape(1, N, -1)
        new_valid = torch.ones(N, dtype=state.valid.dtype, device=state.valid.device)
        mask = torch.cat([state.valid, new_valid])[None, None, None, :] > 0.5
        query_rotary = (self.step_cos[-N:], self.step_sin[-N:])
        key_rotary = (self.step_cos, self.step_sin)
        keys, values_cached = [], []
        for layer, block in enumerate(self.blocks):
            h, k, v = block.forward_cached(
                h,
                state.k_cache[layer : layer + 1],
                state.v_cache[layer : layer + 1],
                query_rotary,
                key_rotary,
                mask,
            )
            keys.append(torch.cat([state.k_cache[layer, :, N:], k[0]], dim=1))
            values_cached.append(torch.cat([state.v_cache[layer, :, N:], v[0]], dim=1))
        history = None if state.history is None else torch.cat([state.history[1:], values[0]])
        next_state = StepState(
            torch.stack(keys), torch.stack(values_cached), torch.cat([state.valid[N:], new_valid]), history
        )
        return self.norm(h).mean(dim=1), next_state

    @staticmethod
    def pool(latents: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Per-bin latent: mean over the bin's (kept) tokens, ``(B, T, N, d) -> (B, T, d)``."""
        if keep is None:
            return latents.mean(dim=2)
        weights = keep[..., None].to(latents.dtype)
        return (latents * weights).sum(dim=2) / weights.sum(dim=2).clamp_min(1.0)
