"""Transformer backbone: pre-norm RMSNorm blocks, rotary positions over bins, SwiGLU.

Attention is causal in time and limited to a sliding window of ``W`` bins: a token of
bin ``t`` sees every token of bins ``t-W+1 .. t`` (its own bin included). Because
nothing older than ``W`` bins is ever seen, a streaming step with a cache of the last
``W-1`` bins computes exactly what the full forward computes (see ``rtbci.runtime``).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional

__all__ = [
    "Block",
    "RMSNorm",
    "SelfAttention",
    "SwiGLU",
    "apply_rotary",
    "bin_rotary",
    "rotary_frequencies",
    "rotary_tables",
    "window_mask",
]

Rotary = tuple[torch.Tensor, torch.Tensor]


class RMSNorm(nn.Module):
    """Root-mean-square norm with a learned gain (written out so every ONNX opset exports it)."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotary_frequencies(head_dim: int, base: float = 10000.0) -> torch.Tensor:
    """``(head_dim // 2,)`` float64 angular frequencies (radians per position) of the rotary pairs."""
    return base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)


def rotary_tables(positions: torch.Tensor, head_dim: int, base: float = 10000.0) -> Rotary:
    """Cosine and sine tables ``(P, head_dim // 2)`` for rotary embeddings.

    Angles are computed in float64 and only then rounded to float32, so even bin
    positions in the millions keep their phase (float32 ``t * freq`` would not).
    """
    inv_freq = rotary_frequencies(head_dim, base)
    angles = positions.to(torch.float64)[:, None] * inv_freq[None, :]
    return angles.cos().float(), angles.sin().float()


def bin_rotary(
    n_bins: int, tokens_per_bin: int, head_dim: int, device: torch.device, first_bin: int = 0
) -> Rotary:
    """Rotary tables for ``n_bins`` bins of ``tokens_per_bin`` tokens; a bin's tokens share its position.

    Built on the CPU in float64 (not every accelerator has float64) and then moved to ``device``.
    """
    positions = torch.arange(n_bins, dtype=torch.float64).repeat_interleave(tokens_per_bin) + first_bin
    cos, sin = rotary_tables(positions, head_dim)
    return cos.to(device), sin.to(device)


def apply_rotary(x: torch.Tensor, rotary: Rotary) -> torch.Tensor:
    """Rotate ``x (..., P, head_dim)`` pairwise (first half with second half) by the tables."""
    cos, sin = rotary
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


def window_mask(token_bins: torch.Tensor, window_bins: int, keep: torch.Tensor | None = None) -> torch.Tensor:
    """Boolean attention mask (True = may attend) for tokens at the given bins.

    Parameters
    ----------
    token_bins
        ``(L,)`` bin index of every token, or ``(B, L)`` when each sample has its
        own tokens (an encoder that drops hidden tokens).
    window_bins
        ``W``: a query at bin ``t`` sees keys at bins ``t-W+1 .. t``.
    keep
        ``(B, L)``; tokens with False are hidden from every other token (MAE masking).
        Each token still sees itself so that no row of the softmax is empty.

    Returns
    -------
    torch.Tensor
        ``(1 or B, 1, L, L)`` bool.
    """
    lag = token_bins[..., :, None] - token_bins[..., None, :]
    allowed = (lag >= 0) & (lag < window_bins)
    if allowed.dim() == 2:
        allowed = allowed[None]
    if keep is not None:
        eye = torch.eye(token_bins.shape[-1], dtype=torch.bool, device=token_bins.device)
        allowed = (allowed & keep[:, None, :]) | eye
    return allowed[:, None]


class SelfAttention(nn.Module):
    """Multi-head attention with rotary positions; ``project`` and ``combine`` are shared with streaming."""

    def __init__(self, d_model: int, n_heads: int, dropout: float):
        super().__init__()
        if d_model % n_heads or (d_model // n_heads) % 2:
            raise ValueError(f"d_model {d_model} must split into {n_heads} heads of even size")
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.out = nn.Linear(d_model, d_model, bias=False)
        self.dropout = nn.Dropout(dropout)

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(B, L, d)`` -> unrotated ``q, k, v``, each ``(B, H, L, head_dim)``."""
        B, L, _ = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return q, k, v

    def combine(self, y: torch.Tensor) -> torch.Tensor:
        """``(B, H, L, head_dim)`` attention output -> ``(B, L, d)``."""
        B, H, L, hd = y.shape
        return self.dropout(self.out(y.transpose(1, 2).reshape(B, L, H * hd)))

    @staticmethod
    def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Scaled dot-product attention of already rotated queries and keys (``mask`` True = may attend)."""
        return functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)

    def forward(self, x: torch.Tensor, rotary: Rotary, mask: torch.Tensor) -> torch.Tensor:
        q, k, v = self.project(x)
        return self.combine(self.attend(apply_rotary(q, rotary), apply_rotary(k, rotary), v, mask))


class SwiGLU(nn.Module):
    """Gated MLP: ``down(silu(gate(x)) * up(x))`` with a hidden size of about 8/3 d."""

    def __init__(self, d_model: int, dropout: float):
        super().__init__()
        hidden = 16 * math.ceil(8 * d_model / 3 / 16)
        self.gate = nn.Linear(d_model, hidden, bias=False)
        self.up = nn.Linear(d_model, hidden, bias=False)
        self.down = nn.Linear(hidden, d_model, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.down(functional.silu(self.gate(x)) * self.up(x)))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm(x))``, then ``x + mlp(norm(x))``."""

    def __init__(self, d_model: int, n_heads: int, dropout: float):
        super().__init__()
        self.attn_norm = RMSNorm(d_model)
        self.attn = SelfAttention(d_model, n_heads, dropout)
        self.mlp_norm = RMSNorm(d_model)
        self.mlp = SwiGLU(d_model, dropout)

    def forward(self, x: torch.Tensor, rotary: Rotary, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), rotary, mask)
        return x + self.mlp(self.mlp_norm(x))

    def forward_cached(
        self,
        x: torch.Tensor,
        past_k: torch.Tensor,
        past_v: torch.Tensor,
        query_rotary: Rotary,
        key_rotary: Rotary,
        mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One bin's tokens against cached unrotated keys/values of earlier tokens.

        Parameters
        ----------
        x
            ``(1, N, d)`` tokens of the new bin.
        past_k, past_v
            ``(1, H, P, head_dim)`` unrotated keys and values of the cached tokens.
        query_rotary, key_rotary
            Rotary tables for the new bin's queries and for all ``P + N`` keys.
        mask
            ``(1, 1, N, P + N)`` bool.

        Returns
        -------
        tuple
            New tokens ``(1, N, d)`` and this bin's unrotated keys and values ``(1, H, N, head_dim)``.
        """
        q, k, v = self.attn.project(self.attn_norm(x))
        keys = apply_rotary(torch.cat([past_k, k], dim=2), key_rotary)
        values = torch.cat([past_v, v], dim=2)
        y = self.attn.attend(apply_rotary(q, query_rotary), keys, values, mask)
        x = x + self.attn.combine(y)
        return x + self.mlp(self.mlp_norm(x)), k, v
