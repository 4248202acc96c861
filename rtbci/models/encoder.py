"""The neural encoder: tokenizer + sliding-window causal transformer -> per-token latents."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from rtbci.models.backbone import Block, RMSNorm, Rotary, bin_rotary, window_mask
from rtbci.models.tokenizer import Tokenizer

__all__ = ["Encoder", "EncoderConfig"]


@dataclass
class EncoderConfig:
    """Everything needed to rebuild an :class:`Encoder` (saved in every checkpoint).

    Parameters
    ----------
    modality
        ``spikes`` (counts, ``n_features = 1``) or ``lfp`` (per-channel LFP features).
    n_channels, n_features
        Electrodes per bin and features per electrode.
    spatial_scale, patch_channels, channel_regions
        Token grouping, see :func:`rtbci.models.tokenizer.token_groups`.
    d_model, n_layers, n_heads
        Transformer size.
    window_bins
        Attention window ``W`` in bins (50 bins of 20 ms = 1 s).
    dropout
        Dropout of the residual branches (modules: off in ``eval()``).
    max_count
        Spike counts are clamped to ``0..max_count``.
    context
        ``embedding`` (per-session vector) or ``stitching`` (per-session linear read-in).
    n_sessions, n_subjects
        Rows of the session and subject tables; ``n_subjects = 0`` means no subject token.
    lfp_conv_bins, lfp_conv_channels
        LFP only: a causal convolution over each channel's features in the last
        ``lfp_conv_bins`` bins, with ``lfp_conv_channels`` outputs, is read beside the
        features themselves (:class:`rtbci.models.tokenizer.CausalChannelConvolution`).
        0 bins: the features alone, linearly embedded (checkpoints from before this
        setting load as such).
    """

    modality: Literal["spikes", "lfp"]
    n_channels: int
    n_features: int = 1
    spatial_scale: Literal["channel", "patch", "region"] = "patch"
    patch_channels: int = 32
    channel_regions: tuple[int, ...] | None = None
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    window_bins: int = 50
    dropout: float = 0.1
    max_count: int = 20
    context: Literal["embedding", "stitching"] = "embedding"
    n_sessions: int = 1
    n_subjects: int = 0
    lfp_conv_bins: int = 0
    lfp_conv_channels: int = 8

    def __post_init__(self) -> None:
        if self.modality not in ("spikes", "lfp"):
            raise ValueError(f"modality must be spikes or lfp, not {self.modality!r}")
        if self.modality == "spikes" and self.n_features != 1:
            raise ValueError(f"spike encoders take one feature per channel, not n_features={self.n_features}")
        if self.context not in ("embedding", "stitching"):
            raise ValueError(f"context must be embedding or stitching, not {self.context!r}")
        sizes = {
            "n_channels": self.n_channels,
            "n_features": self.n_features,
            "patch_channels": self.patch_channels,
            "d_model": self.d_model,
            "n_layers": self.n_layers,
            "n_heads": self.n_heads,
        }
        for name, value in sizes.items():
            if value < 1:
                raise ValueError(f"{name} must be positive, not {value}")
        if self.window_bins < 2:
            raise ValueError(f"window_bins must be at least 2, not {self.window_bins}")
        if self.n_sessions < 1 or self.n_subjects < 0:
            raise ValueError("n_sessions must be >= 1 and n_subjects >= 0")
        if self.lfp_conv_bins != 0:
            if self.modality != "lfp":
                raise ValueError(f"lfp_conv_bins is for LFP encoders; a {self.modality} encoder needs 0")
            if not 2 <= self.lfp_conv_bins <= self.window_bins or self.lfp_conv_channels < 1:
                raise ValueError(
                    f"lfp_conv_bins must be 0 or 2..window_bins ({self.window_bins}),"
                    f" not {self.lfp_conv_bins}, with lfp_conv_channels >= 1 (got {self.lfp_conv_channels})"
                )
        if self.channel_regions is not None:
            self.channel_regions = tuple(int(r) for r in self.channel_regions)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (JSON-safe)."""
        out = dataclasses.asdict(self)
        out["channel_regions"] = list(self.channel_regions) if self.channel_regions is not None else None
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EncoderConfig:
        """Inverse of :meth:`to_dict`."""
        regions = data.get("channel_regions")
        return cls(**{**data, "channel_regions": tuple(regions) if regions is not None else None})


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

    @staticmethod
    def pool(latents: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Per-bin latent: mean over the bin's (kept) tokens, ``(B, T, N, d) -> (B, T, d)``."""
        if keep is None:
            return latents.mean(dim=2)
        weights = keep[..., None].to(latents.dtype)
        return (latents * weights).sum(dim=2) / weights.sum(dim=2).clamp_min(1.0)
