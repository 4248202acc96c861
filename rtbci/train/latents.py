"""Per-bin latents of a whole block of bins, exactly as the streaming decoder sees them.

The encoder's attention reaches back ``window_bins - 1`` bins, its LFP
convolution a few more (``Encoder.lookback_bins``), and no further. So a block is
cut into segments of ``hop`` output bins, each preceded by the bins of context
it needs: every latent then equals the one the online decoder computes for that
bin, at a cost that stays linear in the block length.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Literal

import numpy as np
import torch

from rtbci.models.encoder import Encoder

__all__ = ["Pooling", "encode_bins"]

# How a bin's N token latents become one vector: their mean (what the exported
# decoder's head reads) or their concatenation (N x d, keeps which token said what).
Pooling = Literal["mean", "concat"]


@torch.no_grad()
def encode_bins(
    encoder: Encoder,
    inputs: np.ndarray,
    context_row: int,
    hop: int | None = None,
    batch_segments: int = 32,
    pool: Pooling = "mean",
) -> np.ndarray:
    """Pooled latent of every bin of one session block.

    Parameters
    ----------
    encoder
        The encoder; it runs in eval mode and is left in the mode it was in.
    inputs
        ``(T, C, F)`` raw model inputs of one session (spike counts with F=1,
        or raw LFP features).
    context_row
        The session's row in the encoder's context table.
    hop
        Output bins per segment; the encoder's window length by default.
    batch_segments
        Segments per forward pass.
    pool
        ``mean`` (:meth:`Encoder.pool`) or ``concat`` of the bin's tokens.

    Returns
    -------
    np.ndarray
        ``(T, d)`` float32 latents, or ``(T, N * d)`` with ``pool="concat"``.
    """
    if pool not in ("mean", "concat"):
        raise ValueError(f"pool must be mean or concat, not {pool!r}")
    n_bins = inputs.shape[0]
    if n_bins == 0:
        raise ValueError("cannot encode an empty block")
    window = encoder.config.window_bins
    hop = hop or window
    # Segments of equal length share a forward pass; only the first few (short
    # of history) and the last one differ.
    by_length: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for out_start in range(0, n_bins, hop):
        start, stop = max(0, out_start - encoder.lookback_bins), min(n_bins, out_start + hop)
        by_length[stop - start].append((start, out_start))
    device = next(encoder.parameters()).device
    was_training = encoder.training
    encoder.eval()
    width = encoder.config.d_model * (encoder.n_tokens if pool == "concat" else 1)
    latents = np.empty((n_bins, width), dtype=np.float32)
    for length, segments in by_length.items():
        for first in range(0, len(segments), batch_segments):
            group = segments[first : first + batch_segments]
            x = np.stack([inputs[start : start + length] for start, _ in group])
            x_t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)
            session = torch.full((len(group),), context_row, dtype=torch.int64, device=device)
            tokens = encoder(x_t, session)
            pooled = encoder.pool(tokens) if pool == "mean" else tokens.flatten(start_dim=2)
            pooled = pooled.cpu().numpy()
            for values, (start, out_start) in zip(pooled, group, strict=True):
                latents[out_start : start + length] = values[out_start - start :]
    encoder.train(was_training)
    return latents
